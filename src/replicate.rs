//! Key replication: making a key pair known on one provider exist on another, as a careful operator
//! would, every call audited.
//!
//! 1. The public key: the `[[keys]]` row's `public_key`, else read from a provider that has the key and
//!    reports it (Tencent's `DescribeKeyPairs`; ECS reports only a fingerprint).
//! 2. The name on the target: the key's name where it is known, fitted to the target's rules (Tencent:
//!    letters, digits and `_`, at most 25; ECS: starts with a letter).
//! 3. If the target has a key of that name already: the same public key is adopted; another key is a
//!    conflict (`KeyNameTaken`), never overwritten.
//! 4. `ImportKeyPair` on the target; then the fingerprint the target reports (ECS), or the public key it
//!    lists (Tencent), is checked against the one computed here.
//! 5. The new id or name is learned ([`KeyBook::learn`]), so the next bind finds it.
//!
//! [`check`] reports drift without changing anything (missing on a provider, a fingerprint that does not
//! match, a name taken by another key); [`sync`] replicates every row that replicates, ahead of time.

use std::fmt;

use tokio::time::Instant;

use crate::audit::AuditHandle;
use crate::clock::Clock;
use crate::keybook::KeyBook;
use crate::mapping::{Charset, IdFormat, Mappings};
use crate::model::{Action, Answer, Code, Fault, KeyKind, KeyPairInfo, Keys, Operation, Provider};
use crate::policy::record_attempts;
use crate::provider::{Upstream, Upstreams};
use crate::sshkey::{PublicKey, same_fingerprint};

/// What replication works with.
#[derive(Clone, Copy)]
pub struct Replicator<'a> {
    /// The key table.
    pub book: &'a KeyBook,
    /// Every upstream, to read a key where it is known and import it where it is not.
    pub upstreams: &'a Upstreams,
    /// The mapping tables.
    pub maps: &'a Mappings,
    /// The clock (for signing).
    pub clock: &'a dyn Clock,
    /// The request's deadline, when replication runs for a request.
    pub deadline: Option<Instant>,
    /// The request's audit record, when replication runs for a request.
    pub audit: Option<&'a AuditHandle>,
}

impl fmt::Debug for Replicator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicator").finish_non_exhaustive()
    }
}

/// One finding of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The key has no name on a provider that has an upstream.
    Missing {
        /// The row's first name.
        key: String,
        /// Where it is missing.
        provider: Provider,
    },
    /// The key on a provider is not the same public key.
    FingerprintMismatch {
        /// The row's first name.
        key: String,
        /// Where.
        provider: Provider,
        /// Its name there.
        name: String,
    },
    /// The name the key would get on a provider is another key's.
    NameTaken {
        /// The row's first name.
        key: String,
        /// Where.
        provider: Provider,
        /// The name.
        name: String,
    },
    /// The key is named on a provider that does not have it.
    Gone {
        /// The row's first name.
        key: String,
        /// Where.
        provider: Provider,
        /// Its name there.
        name: String,
    },
    /// The check could not be made.
    Unknown {
        /// The row's first name.
        key: String,
        /// Why.
        why: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing { key, provider } => write!(f, "{key}: missing on {provider}"),
            Drift::FingerprintMismatch { key, provider, name } => {
                write!(f, "{key}: `{name}` on {provider} is another public key (fingerprint mismatch)")
            }
            Drift::NameTaken { key, provider, name } => {
                write!(f, "{key}: the name `{name}` is taken on {provider} by another key")
            }
            Drift::Gone { key, provider, name } => {
                write!(f, "{key}: `{name}` is named for {provider}, which has no such key")
            }
            Drift::Unknown { key, why } => write!(f, "{key}: not checked: {why}"),
        }
    }
}

/// A row's label: its first name.
fn label(row: &crate::config::Names) -> String {
    row.iter().next().map(|(p, n)| format!("{n} ({p})")).unwrap_or_default()
}

/// The name a key gets where names follow `format` (`key_name` in `mappings/limits.toml`), from its
/// name elsewhere: characters the format does not take replaced, cut to its length, and (for a name that
/// must start with a letter) a `k` put in front when it does not.
pub fn fitted_name(name: &str, format: &IdFormat) -> String {
    let mut fitted: String = match format.charset {
        Charset::Word => name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect(),
        Charset::KeyName => {
            let kept: String = name
                .chars()
                .map(|c| if c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-') { c } else { '-' })
                .collect();
            if kept.chars().next().is_some_and(char::is_alphabetic) { kept } else { format!("k{kept}") }
        }
        Charset::LowerAlnum => {
            name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
        }
    };
    fitted = fitted.chars().take(format.max_len).collect();
    while fitted.chars().count() < format.min_len.max(1) {
        fitted.push('1');
    }
    format!("{}{fitted}", format.prefix)
}

impl Replicator<'_> {
    /// How `provider` names key pairs.
    fn name_format(&self, provider: Provider) -> IdFormat {
        self.maps.limits(crate::dialect::Dialect::of_provider(provider)).key_name.clone()
    }

    fn upstream_for(&self, provider: Provider) -> Option<&Upstream> {
        self.upstreams.values().find(|u| u.config.provider == provider).map(AsRef::as_ref)
    }

    async fn call(&self, upstream: &Upstream, op: &Operation) -> Result<crate::model::Outcome, Fault> {
        let call = upstream.call_recorded(op, self.maps, self.clock, self.deadline).await;
        if let Some(audit) = self.audit {
            record_attempts(audit, &call.attempts);
        }
        call.result
    }

    fn step(&self, text: String) {
        match self.audit {
            Some(audit) => audit.update(|e| e.steps.push(text)),
            None => tracing::info!(step = %text, "Key replication."),
        }
    }

    /// The key pairs `upstream` lists under `keys`.
    async fn look_up(&self, upstream: &Upstream, keys: Keys) -> Result<Vec<KeyPairInfo>, Fault> {
        let mut op = Operation::new(Action::DescribeKeys);
        op.region = Some(upstream.config.region.clone());
        op.keys = keys;
        match self.call(upstream, &op).await?.answer {
            Answer::KeyPairs(found) => Ok(found),
            _ => Err(Fault::upstream(Code::UpstreamUnavailable, "The key look-up answered no key pairs.", None)),
        }
    }

    /// The key `reference` (an id on Tencent, a name on ECS) as `upstream` lists it.
    async fn find(&self, upstream: &Upstream, reference: &str) -> Result<Option<KeyPairInfo>, Fault> {
        let keys = match upstream.config.provider.key_kind() {
            KeyKind::Id => Keys::Ids(vec![reference.to_owned()]),
            KeyKind::Name => Keys::Names(vec![reference.to_owned()]),
        };
        Ok(self.look_up(upstream, keys).await?.into_iter().find(|k| k.id == reference))
    }

    /// The key named `name` on `upstream`, matched exactly (Tencent's name filter is fuzzy).
    async fn find_name(&self, upstream: &Upstream, name: &str) -> Result<Option<KeyPairInfo>, Fault> {
        Ok(self.look_up(upstream, Keys::Names(vec![name.to_owned()])).await?.into_iter().find(|k| k.name == name))
    }

    /// The row's public key and a name for it: configured, or read where the key is known.
    async fn source(&self, row: usize) -> Result<(PublicKey, String), Fault> {
        let names = self.book.table()[row].clone();
        let options = self.book.options(row);
        let mut name = names.iter().find(|(p, _)| p.key_kind() == KeyKind::Name).map(|(_, n)| n.clone());
        let mut public = options.public_key.clone();
        for (provider, reference) in &names {
            if public.is_some() && name.is_some() {
                break;
            }
            let Some(upstream) = self.upstream_for(*provider) else { continue };
            if let Some(info) = self.find(upstream, reference).await? {
                name.get_or_insert(info.name.clone());
                if public.is_none() {
                    public = info.public_key.clone();
                }
            }
        }
        let public = public.ok_or_else(|| {
            Fault::gateway(
                Code::KeyNotFound,
                format!(
                    "The public key of {} cannot be read from any provider that has it; set `public_key` in its \
                     [[keys]] row.",
                    label(&names)
                ),
            )
        })?;
        let key = PublicKey::parse(&public).map_err(|why| {
            Fault::gateway(Code::InvalidPublicKey, format!("The public key of {}: {why}.", label(&names)))
        })?;
        Ok((key, name.unwrap_or_else(|| "replicated_key".to_owned())))
    }

    /// True when `found` is the same public key as `key`, by what the provider reports.
    fn same_key(found: &KeyPairInfo, key: &PublicKey) -> Option<bool> {
        if let Some(public) = &found.public_key {
            return Some(PublicKey::parse(public).is_ok_and(|p| p.blob == key.blob));
        }
        found.fingerprint.as_ref().map(|f| same_fingerprint(f, &key.md5_fingerprint()))
    }

    /// Makes row `row` exist on `target`'s provider, if it does not yet: its name or id there.
    pub async fn ensure(&self, row: usize, target: &Upstream) -> Result<String, Fault> {
        let provider = target.config.provider;
        // One replication at a time: a request that waited finds the key learned by the one before.
        let _one = self.book.replicating().await;
        let names = self.book.table()[row].clone();
        if let Some(name) = names.get(&provider) {
            return Ok(name.clone());
        }
        let what = label(&names);
        if !self.book.options(row).replicate {
            return Err(Fault::caller(
                Code::KeyNotFound,
                format!("The key pair {what} has no name on {provider}; add it to [[keys]] or set `replicate = true`."),
            ));
        }
        let (key, source_name) = self.source(row).await?;
        let name = fitted_name(&source_name, &self.name_format(provider));
        self.step(format!(
            "replicate {what} to {}: as `{name}`, fingerprint {}",
            target.config.name,
            key.md5_fingerprint()
        ));
        if let Some(existing) = self.find_name(target, &name).await? {
            return match Self::same_key(&existing, &key) {
                Some(true) => {
                    self.step(format!("`{name}` on {provider} is the same key already ({}); adopted", existing.id));
                    self.learn(row, provider, &existing.id)?;
                    Ok(existing.id)
                }
                _ => {
                    self.step(format!("`{name}` on {provider} is another key; nothing imported"));
                    Err(Fault::caller(
                        Code::KeyNameTaken,
                        format!(
                            "The key pair {what} cannot be replicated: the name `{name}` is taken on {provider} by another key."
                        ),
                    ))
                }
            };
        }
        let mut import = Operation::new(Action::ImportKey);
        import.region = Some(target.config.region.clone());
        import.keys = Keys::Names(vec![name.clone()]);
        import.public_key = Some(key.to_line());
        let imported = match self.call(target, &import).await?.answer {
            Answer::Imported(info) => info,
            _ => return Err(Fault::upstream(Code::UpstreamUnavailable, "The import answered no key pair.", None)),
        };
        // Check what the target reports against the key sent.
        let reported = match imported.fingerprint.clone() {
            Some(f) => Some(KeyPairInfo { fingerprint: Some(f), ..imported.clone() }),
            None => self.find(target, &imported.id).await?,
        };
        match reported.as_ref().and_then(|r| Self::same_key(r, &key)) {
            Some(true) => {}
            verdict => {
                self.step(format!(
                    "`{name}` imported on {provider} as {}, but its fingerprint does not match",
                    imported.id
                ));
                return Err(Fault::upstream(
                    Code::InvalidPublicKey,
                    format!(
                        "{provider} reports another fingerprint for the imported key `{name}` ({}); it was not used.",
                        if verdict.is_none() { "none reported" } else { "mismatch" }
                    ),
                    None,
                ));
            }
        }
        self.step(format!("imported on {provider} as {}; fingerprint matches", imported.id));
        self.learn(row, provider, &imported.id)?;
        Ok(imported.id)
    }

    fn learn(&self, row: usize, provider: Provider, name: &str) -> Result<(), Fault> {
        self.book.learn(row, provider, name).map_err(|e| Fault::gateway(Code::Internal, e))
    }
}

/// Replicates every row that replicates to every provider with an upstream that lacks it; the result of
/// each (row label, provider, name or error).
pub async fn sync(r: &Replicator<'_>) -> Vec<(String, Provider, Result<String, Fault>)> {
    let mut out = Vec::new();
    let providers: Vec<Provider> = Provider::ALL.into_iter().filter(|p| r.upstream_for(*p).is_some()).collect();
    for row in 0..r.book.len() {
        if !r.book.options(row).replicate {
            continue;
        }
        for provider in &providers {
            let names = r.book.table()[row].clone();
            if names.contains_key(provider) {
                continue;
            }
            let Some(target) = r.upstream_for(*provider) else { continue };
            out.push((label(&names), *provider, r.ensure(row, target).await));
        }
    }
    out
}

/// Every drift between the key table and the providers, changing nothing.
pub async fn check(r: &Replicator<'_>) -> Vec<Drift> {
    let mut out = Vec::new();
    for row in 0..r.book.len() {
        let names = r.book.table()[row].clone();
        let key = label(&names);
        let source = r.source(row).await;
        let public = source.as_ref().ok().map(|(k, _)| k.clone());
        for provider in Provider::ALL {
            let Some(upstream) = r.upstream_for(provider) else { continue };
            match names.get(&provider) {
                Some(reference) => match r.find(upstream, reference).await {
                    Ok(None) => out.push(Drift::Gone { key: key.clone(), provider, name: reference.clone() }),
                    Ok(Some(found)) => {
                        if let Some(public) = &public
                            && Replicator::same_key(&found, public) == Some(false)
                        {
                            out.push(Drift::FingerprintMismatch {
                                key: key.clone(),
                                provider,
                                name: reference.clone(),
                            });
                        }
                    }
                    Err(e) => out.push(Drift::Unknown { key: key.clone(), why: e.to_string() }),
                },
                None => {
                    out.push(Drift::Missing { key: key.clone(), provider });
                    if let Ok((public, name)) = &source {
                        let name = fitted_name(name, &r.name_format(provider));
                        if let Ok(Some(found)) = r.find_name(upstream, &name).await
                            && Replicator::same_key(&found, public) != Some(true)
                        {
                            out.push(Drift::NameTaken { key: key.clone(), provider, name });
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fitted_to_each_clouds_rules() {
        let maps = Mappings::embedded().unwrap();
        let on = |p: Provider| maps.limits(crate::dialect::Dialect::of_provider(p)).key_name.clone();
        let (cvm, lighthouse, ecs) =
            (on(Provider::TencentCvm), on(Provider::TencentLighthouse), on(Provider::AliyunEcs));
        assert_eq!(fitted_name("FinanceJoshuaV25", &cvm), "FinanceJoshuaV25");
        assert_eq!(fitted_name("deploy-key.2026", &cvm), "deploy_key_2026");
        assert_eq!(fitted_name(&"x".repeat(40), &lighthouse).len(), 25);
        assert_eq!(fitted_name("releasebot", &ecs), "releasebot");
        assert_eq!(fitted_name("2026_key", &ecs), "k2026_key");
        assert_eq!(fitted_name("a", &ecs), "a1");
        for (name, format) in [("deploy-key.2026", &cvm), ("2026_key", &ecs), ("a", &ecs)] {
            assert!(format.matches(&fitted_name(name, format)), "{name}");
        }
    }
}
