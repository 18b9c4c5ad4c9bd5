//! Look-ups: key pairs by id or by name (fuzzy for Tencent, exact or `*` wildcards for ECS) and instances
//! by id, as protocols.md 4.6 and 5.4 describe them.

use super::*;

// === impl Cloud: look-ups ===

impl Cloud {
    pub(super) fn describe_keys(&self, wanted: &Keys) -> Result<Vec<KeyPairInfo>, Fault> {
        let asked = wanted.as_slice();
        within(asked.len(), self.rules.max_lookup_keys, "key pairs")?;
        let found: Vec<&KeyPair> = match (wanted, self.provider.key_kind()) {
            _ if asked.is_empty() => self.keys.iter().collect(),
            (Keys::Ids(ids), KeyKind::Id) => {
                well_formed(ids, &self.rules.key_id, Code::MalformedKeyId, "key pair id")?;
                dedup(ids).filter_map(|id| self.keys.iter().find(|k| &k.id == id)).collect()
            }
            (Keys::Names(names), KeyKind::Id) => {
                self.keys.iter().filter(|k| names.iter().any(|n| k.name.contains(n.as_str()))).collect()
            }
            (_, KeyKind::Name) => {
                self.keys.iter().filter(|k| asked.iter().any(|p| wildcard_match(p, &k.name))).collect()
            }
        };
        Ok(found.into_iter().map(|k| self.key_info(k)).collect())
    }

    pub(super) fn key_info(&self, key: &KeyPair) -> KeyPairInfo {
        // ECS's DescribeKeyPairs does not list the instances a key is attached to.
        let instances = match self.provider.key_kind() {
            KeyKind::Id => self.instances.iter().filter(|i| i.keys.contains(&key.id)).map(|i| i.id.clone()).collect(),
            KeyKind::Name => Vec::new(),
        };
        // Tencent reports the public key; ECS reports the fingerprint (and the key only when asked).
        let tencent = self.provider.key_kind() == KeyKind::Id;
        let parsed = key.public_key.as_deref().and_then(|k| crate::sshkey::PublicKey::parse(k).ok());
        KeyPairInfo {
            id: key.id.clone(),
            name: key.name.clone(),
            instances,
            public_key: key.public_key.clone().filter(|_| tencent),
            fingerprint: parsed.filter(|_| !tencent).map(|k| k.md5_fingerprint()),
        }
    }

    pub(super) fn describe_instances(&self, op: &Operation) -> Result<Vec<InstanceInfo>, Fault> {
        within(op.instances.len(), self.rules.max_lookup_instances, "instances")?;
        well_formed(&op.instances, &self.rules.instance_id, Code::MalformedInstanceId, "instance id")?;
        let chosen: Vec<&Instance> = if op.instances.is_empty() {
            self.instances.iter().collect()
        } else {
            dedup(&op.instances).filter_map(|id| self.find(id).map(|i| &self.instances[i])).collect()
        };
        let keys = op.keys.as_slice();
        Ok(chosen
            .into_iter()
            .filter(|vm| keys.is_empty() || vm.keys.iter().any(|k| keys.contains(k)))
            .map(|vm| self.instance_info(vm))
            .collect())
    }

    fn instance_info(&self, vm: &Instance) -> InstanceInfo {
        // ECS reports no latest operation; Tencent does.
        let latest = vm.latest_operation.as_ref().filter(|_| self.provider != Provider::AliyunEcs);
        InstanceInfo {
            id: vm.id.clone(),
            os: vm.os,
            os_name: vm.os_name.clone(),
            state: vm.state.clone(),
            keys: vm.keys.clone(),
            latest_operation: latest.map(|l| self.rules.operation_name(l.action).to_owned()),
            latest_operation_state: latest.map(|l| l.state),
            latest_operation_request_id: latest.map(|l| l.request_id.clone()),
        }
    }
}

/// ECS `KeyPairName` matching: exact, or `*` standing for any run of characters.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::model::Source;
    use crate::sim::seed;

    // === look-ups ===

    #[test]
    fn tencent_key_names_match_fuzzily() {
        let mut cloud = seed::demo();
        for provider in [CVM, LH] {
            let found = key_infos(&mut cloud, provider, names(&["joshua"])).unwrap();
            assert_eq!(found.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["finance_joshua"], "{provider}");
            let found = key_infos(&mut cloud, provider, names(&["_"])).unwrap();
            assert_eq!(found.len(), 2, "{provider}");
            assert!(key_infos(&mut cloud, provider, names(&["JOSHUA"])).unwrap().is_empty(), "{provider}");
        }
    }

    #[test]
    fn ecs_key_names_match_exactly_or_by_wildcard() {
        let mut cloud = seed::demo();
        let found = |cloud: &mut CloudState, pattern: &str| -> Vec<String> {
            key_infos(cloud, ECS, names(&[pattern])).unwrap().into_iter().map(|k| k.name).collect()
        };
        assert_eq!(found(&mut cloud, "FinanceJoshuaV25"), ["FinanceJoshuaV25"]);
        assert!(found(&mut cloud, "Joshua").is_empty(), "no substring match without wildcards");
        assert_eq!(found(&mut cloud, "*Joshua*"), ["FinanceJoshuaV25"]);
        assert_eq!(found(&mut cloud, "Finance*"), ["FinanceJoshuaV25"]);
        assert_eq!(found(&mut cloud, "*Name"), ["testKeyPairName"]);
        assert_eq!(found(&mut cloud, "*"), ["FinanceJoshuaV25", "testKeyPairName"]);
        let info = &key_infos(&mut cloud, ECS, names(&["testKeyPairName"])).unwrap()[0];
        assert_eq!((info.id.as_str(), info.instances.len()), ("testKeyPairName", 0));
    }

    #[test]
    fn wildcards() {
        for (pattern, name, expected) in [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("*", "", true),
            ("a*", "a", true),
            ("*c", "abc", true),
            ("*b*", "abc", true),
            ("a*c", "abbc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*b", "ab", false),
            ("*SshKey", "MySshKeyX", false),
        ] {
            assert_eq!(wildcard_match(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn keys_by_id_answer_in_the_order_asked_without_unknown_ones() {
        let mut cloud = seed::demo();
        let found =
            key_infos(&mut cloud, CVM, ids(&["skey-11112222", "skey-00000000", "skey-4e5ty7i8", "skey-11112222"]));
        let found = found.unwrap();
        assert_eq!(found.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["skey-11112222", "skey-4e5ty7i8"]);
        assert_eq!(found[0].instances, ["ins-w34e5rl9"]);
        assert_eq!(found[1].name, "finance_joshua");
        assert_eq!(key_infos(&mut cloud, CVM, ids(&["skey-1122"])).unwrap_err().code(), Code::MalformedKeyId);
        assert_eq!(key_infos(&mut cloud, LH, Keys::none()).unwrap().len(), 2);
        let fault = key_infos(&mut cloud, CVM, Keys::Ids(many("skey-", 101))).unwrap_err();
        assert_eq!(fault.code(), Code::LimitExceeded);
    }

    #[test]
    fn instance_lookups() {
        let mut cloud = seed::demo();
        let found = instances_info(&mut cloud, CVM, &["ins-w34e5rl9", "ins-00000000", "ins-5wq8v2kd"], 0);
        assert_eq!(found.len(), 2);
        let (bastion, windows) = (&found[0], &found[1]);
        assert_eq!(
            (bastion.id.as_str(), bastion.state.as_str(), bastion.os),
            ("ins-w34e5rl9", "RUNNING", OsFamily::Linux)
        );
        assert_eq!(bastion.keys, ["skey-11112222"]);
        assert_eq!(bastion.latest_operation, None);
        assert_eq!((windows.os, windows.os_name.starts_with("Windows")), (OsFamily::Windows, true));
        assert_eq!(instances_info(&mut cloud, CVM, &[], 0).len(), cloud.instances(CVM).len());
        let ecs = instances_info(&mut cloud, ECS, &["i-m5eg7be9ndloji64jknv"], 0);
        assert_eq!(ecs[0].state, "Running");

        let describe = |ids: &[&str]| op(Action::DescribeInstances, ids, Keys::none());
        for (provider, bad) in [(CVM, "ins-1122"), (LH, "ins-1e4r6y8i"), (ECS, "m5eg7be9ndloji64jknv")] {
            let fault = cloud.apply(provider, &describe(&[bad]), "r", 0).unwrap_err();
            assert_eq!((fault.code(), fault.source()), (Code::MalformedInstanceId, Source::Upstream), "{provider}");
            assert!(fault.message().contains(bad), "{fault}");
        }
        let mut too_many = describe(&[]);
        too_many.instances = many("ins-", 101);
        assert_eq!(cloud.apply(CVM, &too_many, "r", 0).unwrap_err().code(), Code::LimitExceeded);
    }

    #[test]
    fn instance_lookups_can_filter_by_bound_key() {
        let mut cloud = seed::demo();
        let by_key = op(Action::DescribeInstances, &[], names(&["testKeyPairName"]));
        let outcome = cloud.apply(ECS, &by_key, "r", 0).unwrap();
        let Answer::Instances(found) = outcome.answer else { panic!() };
        assert_eq!(found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["i-bp1gtjxuuvwj17zrab12"]);
    }
}
