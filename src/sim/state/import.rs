//! `ImportKeyPair` on each simulated cloud: the name's rules (`key_name` in `mappings/limits.toml`:
//! Tencent, letters, digits and `_`, at most 25 characters; ECS, 2 to 128 characters starting with a
//! letter, then letters, digits, `:`, `_`, `.` and `-`; protocols.md section 2), an OpenSSH public key
//! ([`crate::sshkey`]), a name not taken, and on Tencent a public key not imported already under another
//! name. The new key pair gets a fresh id (`skey-`/`lhkp-` and 8 characters) on Tencent; ECS reports the
//! key's MD5 fingerprint, Tencent none.

use sha2::{Digest as _, Sha256};

use super::*;
use crate::sshkey::PublicKey;

impl Cloud {
    pub(super) fn import_key(&mut self, op: &Operation) -> Result<KeyPairInfo, Fault> {
        let [name] = op.keys.as_slice() else {
            return Err(fault(Code::MissingParameter, "ImportKeyPair takes exactly one key name."));
        };
        let public_key = op.public_key.as_deref().unwrap_or_default();
        self.check_name(name)?;
        let key = PublicKey::parse(public_key).map_err(|why| fault(Code::InvalidPublicKey, format!("{why}.")))?;
        if self.keys.iter().any(|k| k.name == *name) {
            return Err(fault(Code::KeyNameTaken, format!("A key pair named `{name}` exists already.")));
        }
        if self.provider.key_kind() == KeyKind::Id {
            let taken = self
                .keys
                .iter()
                .find(|k| k.public_key.as_deref().and_then(|p| PublicKey::parse(p).ok()).is_some_and(|p| p == key));
            if let Some(other) = taken {
                return Err(fault(
                    Code::PublicKeyTaken,
                    format!("This public key was imported already, as `{}` ({}).", other.name, other.id),
                ));
            }
        }
        let id = match self.provider.key_kind() {
            KeyKind::Name => name.clone(),
            KeyKind::Id => self.fresh_key_id(name),
        };
        let pair = KeyPair { id, name: name.clone(), public_key: Some(public_key.trim().to_owned()) };
        let mut info = self.key_info(&pair);
        info.fingerprint = (self.provider == Provider::AliyunEcs).then(|| key.md5_fingerprint());
        self.keys.push(pair);
        Ok(info)
    }

    fn check_name(&self, name: &str) -> Result<(), Fault> {
        if self.rules.key_name.matches(name) {
            return Ok(());
        }
        // Tencent answers a bad name as a bad value; ECS, whose names are ids, as a malformed one.
        let code = match self.provider.key_kind() {
            KeyKind::Id => Code::InvalidParameterValue,
            KeyKind::Name => Code::MalformedKeyId,
        };
        Err(fault(code, format!("The key pair name `{name}`: {}.", describe_format(&self.rules.key_name))))
    }

    /// An id in the cloud's format that no key has: the prefix of the existing ids' format and 8
    /// characters drawn from a hash of the name and the count of keys.
    fn fresh_key_id(&self, name: &str) -> String {
        let prefix = if self.provider == Provider::TencentLighthouse { "lhkp-" } else { "skey-" };
        let mut round = self.keys.len() as u64;
        loop {
            let digest = Sha256::digest(format!("{name}/{round}").as_bytes());
            let tail: String = digest
                .iter()
                .take(8)
                .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
                .collect();
            let id = format!("{prefix}{tail}");
            if !self.keys.iter().any(|k| k.id == id) {
                return id;
            }
            round += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::seed;
    use crate::sshkey::PublicKey;

    const NEW_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMjg+YLuiY2ONYD54tAXQXnBZzl7C31h6rb41HhIM7VX k5@crossgate-demo";

    fn import(name: &str, public_key: &str) -> Operation {
        Operation {
            keys: Keys::Names(vec![name.to_owned()]),
            public_key: Some(public_key.to_owned()),
            ..Operation::new(Action::ImportKey)
        }
    }

    fn code(result: Result<Outcome, Fault>) -> Code {
        result.expect_err("refused").code()
    }

    #[test]
    fn tencent_imports_get_a_fresh_id_and_show_their_public_key() {
        let mut cloud = seed::demo();
        for (provider, prefix) in [(Provider::TencentCvm, "skey-"), (Provider::TencentLighthouse, "lhkp-")] {
            let out = cloud.apply(provider, &import("migrated_key", NEW_KEY), "R", 0).unwrap();
            let Answer::Imported(info) = out.answer else { panic!("{out:?}") };
            assert!(info.id.starts_with(prefix) && info.id.len() == prefix.len() + 8, "{}", info.id);
            assert_eq!((info.name.as_str(), info.fingerprint.as_deref()), ("migrated_key", None));
            let look = Operation { keys: Keys::Ids(vec![info.id.clone()]), ..Operation::new(Action::DescribeKeys) };
            let Answer::KeyPairs(found) = cloud.apply(provider, &look, "R", 0).unwrap().answer else { panic!() };
            assert_eq!(found[0].public_key.as_deref(), Some(NEW_KEY));
            assert_eq!(code(cloud.apply(provider, &import("migrated_key", NEW_KEY), "R", 0)), Code::KeyNameTaken);
            assert_eq!(code(cloud.apply(provider, &import("other_name", NEW_KEY), "R", 0)), Code::PublicKeyTaken);
            assert_eq!(code(cloud.apply(provider, &import("bad-name", NEW_KEY), "R", 0)), Code::InvalidParameterValue);
            assert_eq!(code(cloud.apply(provider, &import("x", "ssh-ed25519 AAAA"), "R", 0)), Code::InvalidPublicKey);
        }
    }

    #[test]
    fn ecs_imports_report_the_md5_fingerprint() {
        let mut cloud = seed::demo();
        let out = cloud.apply(Provider::AliyunEcs, &import("DeployBot", NEW_KEY), "R", 0).unwrap();
        let Answer::Imported(info) = out.answer else { panic!("{out:?}") };
        let expected = PublicKey::parse(NEW_KEY).unwrap().md5_fingerprint();
        assert_eq!((info.id.as_str(), info.fingerprint.as_deref()), ("DeployBot", Some(expected.as_str())));
        let look = Operation { keys: Keys::Names(vec!["DeployBot".into()]), ..Operation::new(Action::DescribeKeys) };
        let Answer::KeyPairs(found) = cloud.apply(Provider::AliyunEcs, &look, "R", 0).unwrap().answer else { panic!() };
        assert_eq!((found[0].fingerprint.as_deref(), found[0].public_key.as_deref()), (Some(expected.as_str()), None));
        assert_eq!(code(cloud.apply(Provider::AliyunEcs, &import("DeployBot", NEW_KEY), "R", 0)), Code::KeyNameTaken);
        assert_eq!(code(cloud.apply(Provider::AliyunEcs, &import("1bad", NEW_KEY), "R", 0)), Code::MalformedKeyId);
    }

    #[test]
    fn power_actions_are_all_or_nothing() {
        let mut cloud = seed::demo();
        let power = |action, ids: &[&str]| Operation {
            instances: ids.iter().map(|s| (*s).to_owned()).collect(),
            ..Operation::new(action)
        };
        let cvm = Provider::TencentCvm;
        // ins-w34e5rl9 runs; ins-1e4r6y8i is stopped: stopping both fails and changes neither.
        let both = power(Action::StopInstances, &["ins-w34e5rl9", "ins-1e4r6y8i"]);
        assert_eq!(code(cloud.apply(cvm, &both, "R", 0)), Code::InvalidInstanceState);
        assert_eq!(cloud.instance(cvm, "ins-w34e5rl9").unwrap().state, "RUNNING");
        cloud.apply(cvm, &power(Action::StopInstances, &["ins-w34e5rl9"]), "R", 0).unwrap();
        assert_eq!(cloud.instance(cvm, "ins-w34e5rl9").unwrap().state, "STOPPED");
        cloud.apply(cvm, &power(Action::StartInstances, &["ins-w34e5rl9", "ins-1e4r6y8i"]), "R", 0).unwrap();
        assert_eq!(cloud.instance(cvm, "ins-1e4r6y8i").unwrap().state, "RUNNING");
        cloud.apply(cvm, &power(Action::RebootInstances, &["ins-1e4r6y8i"]), "R", 0).unwrap();
        assert_eq!(
            code(cloud.apply(cvm, &power(Action::StartInstances, &["ins-00000000"]), "R", 0)),
            Code::InstanceNotFound
        );
    }
}
