//! Translation: a caller's operation becomes one or more upstream operations (ids renamed, keys renamed
//! or resolved, ids checked against the formats of the provider that receives them, batches split to the
//! upstream's limit), and their outcomes merge back into one, named as the caller named things.
//!
//! Everything here is pure: the gateway does the I/O (key look-ups, forwarding) around it.

use std::collections::BTreeMap;

use crate::config::Names;
use crate::mapping::Mappings;
use crate::model::{
    Action, Answer, Code, Dialect, Fault, InstanceResult, KeyKind, KeyPairInfo, Keys, Operation, Outcome, Provider,
};
use crate::route;

/// One instance of the caller's, as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The caller's id.
    pub caller_id: String,
    /// The upstream's id.
    pub upstream_id: String,
}

/// One request to send upstream, and how to map its answer back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// The upstream's name in the config.
    pub upstream: String,
    /// The upstream's provider.
    pub provider: Provider,
    /// The operation as the upstream will see it.
    pub op: Operation,
    /// The instances of this leg, caller id and upstream id, in order.
    pub placed: Vec<Placed>,
}

/// The id an instance of the caller's has on `target`: renamed through `[[instances]]`, or kept.
pub fn instance_on(table: &[Names], caller_id: &str, target: Provider) -> Result<String, Fault> {
    match route::rename(table, caller_id, target) {
        None => Ok(caller_id.to_owned()),
        Some(Ok(id)) => Ok(id.to_owned()),
        Some(Err(_)) => Err(Fault::caller(
            Code::InstanceNotFound,
            format!(
                "The instance `{caller_id}` has no id on {target}; add it to [[instances]] in the gateway's config."
            ),
        )),
    }
}

/// Key references as `target` names them, where the `[[keys]]` table (or the reference's own kind) can
/// tell. `Err(names)` lists names that still need a look-up on a Tencent target.
pub fn keys_on(
    table: &[Names],
    keys: &Keys,
    caller_provider: Provider,
    target: Provider,
) -> Result<Result<Keys, Vec<String>>, Fault> {
    let mut out = Vec::with_capacity(keys.as_slice().len());
    let mut unresolved = Vec::new();
    for key in keys.as_slice() {
        match route::rename(table, key, target) {
            Some(Ok(name)) => out.push(name.to_owned()),
            Some(Err(_)) | None if keys.kind() == target.key_kind() && caller_provider == target => {
                out.push(key.clone())
            }
            Some(Err(_)) | None if keys.kind() == KeyKind::Name => unresolved.push(key.clone()),
            _ => {
                return Err(Fault::caller(
                    Code::KeyNotFound,
                    format!(
                        "The key pair `{key}` has no name on {target}; add it to [[keys]] in the gateway's config."
                    ),
                ));
            }
        }
    }
    if !unresolved.is_empty() {
        return Ok(Err(unresolved));
    }
    Ok(Ok(match target.key_kind() {
        KeyKind::Id => Keys::Ids(out),
        KeyKind::Name => Keys::Names(out),
    }))
}

/// Refuses an id the provider that receives it cannot have, before anything is forwarded: every instance
/// as the upstream will see it (after `[[instances]]`), and every key reference already in the target's
/// terms (after `[[keys]]`), against the target's `instance_id` / `key_id` formats in
/// `mappings/limits.toml`. Key names still to be looked up on a Tencent target, and the name filters of a
/// key look-up, are not ids and pass; a key no table can name on the target is refused as
/// [`keys_on`] refuses it.
///
/// # Errors
/// `MalformedInstanceId`, `MalformedKeyId` (naming the provider and its format), `KeyNotFound`.
pub fn check_ids(
    maps: &Mappings,
    key_table: &[Names],
    op: &Operation,
    caller: Provider,
    target: Provider,
    placed: &[Placed],
) -> Result<(), Fault> {
    let limits = maps.limits(Dialect::of_provider(target));
    if let Some(bad) = placed.iter().find(|p| !limits.instance_id.matches(&p.upstream_id)) {
        let named = if bad.caller_id == bad.upstream_id {
            format!("The instance id `{}`", shown(&bad.caller_id))
        } else {
            format!("The instance `{}`, `{}` on {target},", shown(&bad.caller_id), shown(&bad.upstream_id))
        };
        return Err(Fault::caller(
            Code::MalformedInstanceId,
            format!("{named} is not an instance id on {target} ({}).", limits.instance_id.describe()),
        ));
    }
    let Ok(keys) = keys_on(key_table, &op.keys, caller, target)? else { return Ok(()) };
    let filters = op.action == Action::DescribeKeys && keys.kind() == KeyKind::Name;
    let what = match target.key_kind() {
        KeyKind::Id => "key pair id",
        KeyKind::Name => "key pair name",
    };
    match keys.as_slice().iter().find(|k| !filters && !limits.key_id.matches(k)) {
        None => Ok(()),
        Some(bad) => Err(Fault::caller(
            Code::MalformedKeyId,
            format!("`{}` is not a {what} on {target} ({}).", shown(bad), limits.key_id.describe()),
        )),
    }
}

/// At most 64 characters of a caller's value, control characters escaped, for a message.
fn shown(value: &str) -> String {
    let cut = if value.chars().count() > 64 { "..." } else { "" };
    value.chars().take(64).flat_map(char::escape_debug).chain(cut.chars()).collect()
}

/// Splits the instances of one upstream into legs no larger than the upstream's limit, and refuses what
/// the upstream cannot express (more than its key limit). `op` becomes the last leg's operation.
pub fn split(
    maps: &Mappings,
    upstream: &str,
    provider: Provider,
    mut op: Operation,
    placed: Vec<Placed>,
) -> Result<Vec<Leg>, Fault> {
    let limits = maps.limits(Dialect::of_provider(provider));
    if op.action.is_mutation() && op.keys.as_slice().len() > limits.keys {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!(
                "{provider} binds at most {} key pair(s) per request, and this request names {}.",
                limits.keys,
                op.keys.as_slice().len()
            ),
        ));
    }
    let per_leg = if op.action.is_mutation() { limits.instances } else { limits.lookup_instances };
    if placed.is_empty() {
        return Ok(vec![Leg { upstream: upstream.to_owned(), provider, op, placed }]);
    }
    // Each leg names its own instances: the caller's list is not copied into every leg first.
    op.instances = Vec::new();
    let mut items = placed.into_iter().peekable();
    let mut legs = Vec::new();
    loop {
        let chunk: Vec<Placed> = items.by_ref().take(per_leg.max(1)).collect();
        if items.peek().is_none() {
            legs.push(leg(upstream, provider, op, chunk));
            return Ok(legs);
        }
        legs.push(leg(upstream, provider, op.clone(), chunk));
    }
}

/// A leg of `op` to `upstream` for the instances `placed`, by their ids there.
fn leg(upstream: &str, provider: Provider, mut op: Operation, placed: Vec<Placed>) -> Leg {
    op.instances = placed.iter().map(|p| p.upstream_id.clone()).collect();
    Leg { upstream: upstream.to_owned(), provider, op, placed }
}

/// Groups the caller's instances by upstream, preserving order within each.
pub fn group<'r>(instances: &[String], mut upstream_of: impl FnMut(&str) -> &'r str) -> BTreeMap<&'r str, Vec<String>> {
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for id in instances {
        groups.entry(upstream_of(id)).or_default().push(id.clone());
    }
    groups
}

/// How to name things back for the caller: its provider, and the `[[keys]]` table.
#[derive(Debug, Clone, Copy)]
pub struct Back<'a> {
    /// The provider whose names the caller uses.
    pub caller: Provider,
    /// The `[[keys]]` rows.
    pub keys: &'a [Names],
}

impl Back<'_> {
    /// A key reference from `from`, as the caller names it (unchanged when no row names it).
    pub fn key(&self, from: Provider, key: String) -> String {
        if from == self.caller {
            return key;
        }
        self.keys
            .iter()
            .find(|row| row.get(&from) == Some(&key))
            .and_then(|row| row.get(&self.caller))
            .cloned()
            .unwrap_or(key)
    }

    /// A key pair found on `from`, named as the caller names it.
    pub fn key_pair(&self, from: Provider, mut info: KeyPairInfo) -> KeyPairInfo {
        match (from.key_kind(), self.caller.key_kind()) {
            (KeyKind::Id, KeyKind::Id) => info.id = self.key(from, info.id),
            (KeyKind::Name, KeyKind::Name) => info.name = self.key(from, info.name),
            (KeyKind::Id, KeyKind::Name) => {
                info.name = self.key(from, info.id.clone());
                info.id = info.name.clone();
            }
            (KeyKind::Name, KeyKind::Id) => info.id = self.key(from, info.name.clone()),
        }
        info
    }
}

/// Merges the legs' results into one outcome for the caller, in the caller's instance order and names.
/// A single leg that failed as a whole is the caller's whole-request error.
pub fn merge(
    request_id: &str,
    op: &Operation,
    legs: &[Leg],
    results: Vec<Result<Outcome, Fault>>,
    back: Back<'_>,
) -> Result<Outcome, Fault> {
    if legs.len() == 1 && !matches!(op.action, Action::DescribeInstances | Action::DescribeKeys) {
        if let Some(Err(fault)) = results.first() {
            return Err(fault.clone());
        }
    }
    match op.action {
        Action::AssociateKeys | Action::DisassociateKeys => {
            let mut by_caller_id: BTreeMap<&str, Result<(), Fault>> = BTreeMap::new();
            for (leg, result) in legs.iter().zip(&results) {
                for placed in &leg.placed {
                    let r = match result {
                        Err(fault) => Err(fault.clone()),
                        Ok(outcome) => instance_result(outcome, &placed.upstream_id),
                    };
                    by_caller_id.insert(placed.caller_id.as_str(), r);
                }
            }
            let results = op
                .instances
                .iter()
                .map(|id| InstanceResult {
                    instance: id.clone(),
                    result: by_caller_id.remove(id.as_str()).unwrap_or(Ok(())),
                })
                .collect();
            Ok(Outcome { request_id: request_id.to_owned(), answer: Answer::Bind(results) })
        }
        Action::DescribeKeys => {
            let mut found = Vec::new();
            for (leg, result) in legs.iter().zip(results) {
                if let Answer::KeyPairs(keys) = result?.answer {
                    found.extend(keys.into_iter().map(|k| back.key_pair(leg.provider, k)));
                }
            }
            Ok(Outcome { request_id: request_id.to_owned(), answer: Answer::KeyPairs(found) })
        }
        Action::DescribeInstances => {
            let mut found = Vec::new();
            for (leg, result) in legs.iter().zip(results) {
                if let Answer::Instances(instances) = result?.answer {
                    for mut info in instances {
                        if let Some(p) = leg.placed.iter().find(|p| p.upstream_id == info.id) {
                            info.id = p.caller_id.clone();
                        }
                        info.keys = info.keys.into_iter().map(|k| back.key(leg.provider, k)).collect();
                        found.push(info);
                    }
                }
            }
            Ok(Outcome { request_id: request_id.to_owned(), answer: Answer::Instances(found) })
        }
        // Steps crossgate takes itself are never a caller's request (the gateway refuses them first).
        Action::ImportKey | Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
            Err(Fault::gateway(Code::UnknownAction, format!("`{}` is not served to callers.", op.action)))
        }
    }
}

fn instance_result(outcome: &Outcome, upstream_id: &str) -> Result<(), Fault> {
    match &outcome.answer {
        Answer::Bind(results) => {
            results.iter().find(|r| r.instance == upstream_id).map_or(Ok(()), |r| r.result.clone())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(Provider, &str)]) -> Names {
        pairs.iter().map(|(p, n)| (*p, (*n).to_owned())).collect()
    }

    #[test]
    fn instances_are_renamed_or_kept() {
        let table = vec![row(&[(Provider::TencentCvm, "ins-1e4r6y8i"), (Provider::AliyunEcs, "i-abc")])];
        assert_eq!(instance_on(&table, "ins-1e4r6y8i", Provider::AliyunEcs).unwrap(), "i-abc");
        assert_eq!(instance_on(&table, "ins-other000", Provider::TencentCvm).unwrap(), "ins-other000");
        assert_eq!(
            instance_on(&table, "i-abc", Provider::TencentLighthouse).unwrap_err().code(),
            Code::InstanceNotFound
        );
    }

    #[test]
    fn keys_are_renamed_resolved_or_refused() {
        let table = vec![row(&[(Provider::TencentCvm, "skey-4e5ty7i8"), (Provider::AliyunEcs, "Finance")])];
        let ids = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
        assert_eq!(
            keys_on(&table, &ids, Provider::TencentCvm, Provider::AliyunEcs).unwrap(),
            Ok(Keys::Names(vec!["Finance".into()]))
        );
        let unknown = Keys::Ids(vec!["skey-zzzzzzzz".into()]);
        assert_eq!(keys_on(&table, &unknown, Provider::TencentCvm, Provider::TencentCvm).unwrap(), Ok(unknown.clone()));
        assert_eq!(
            keys_on(&table, &unknown, Provider::TencentCvm, Provider::AliyunEcs).unwrap_err().code(),
            Code::KeyNotFound
        );
        let name = Keys::Names(vec!["Other".into()]);
        assert_eq!(
            keys_on(&table, &name, Provider::AliyunEcs, Provider::TencentCvm).unwrap(),
            Err(vec!["Other".into()])
        );
    }

    #[test]
    fn looked_up_keys_come_back_in_the_callers_names() {
        let table = vec![row(&[(Provider::TencentCvm, "skey-4e5ty7i8"), (Provider::AliyunEcs, "Finance")])];
        let leg = Leg {
            upstream: "cvm".into(),
            provider: Provider::TencentCvm,
            op: Operation::new(Action::DescribeKeys),
            placed: vec![],
        };
        let found = KeyPairInfo { id: "skey-4e5ty7i8".into(), name: "finance_joshua".into(), ..KeyPairInfo::default() };
        let answer = Ok(Outcome { request_id: "up".into(), answer: Answer::KeyPairs(vec![found]) });
        let back = Back { caller: Provider::AliyunEcs, keys: &table };
        let merged = merge("gw", &Operation::new(Action::DescribeKeys), &[leg], vec![answer], back).unwrap();
        let Answer::KeyPairs(keys) = merged.answer else { panic!("key pairs expected") };
        assert_eq!((keys[0].id.as_str(), keys[0].name.as_str()), ("Finance", "Finance"));
    }

    #[test]
    fn ids_are_checked_against_the_provider_that_receives_them() {
        let maps = Mappings::embedded().unwrap();
        let table = vec![row(&[(Provider::TencentCvm, "skey-4e5ty7i8"), (Provider::AliyunEcs, "Finance")])];
        let placed = |pairs: &[(&str, &str)]| -> Vec<Placed> {
            pairs.iter().map(|(c, u)| Placed { caller_id: (*c).into(), upstream_id: (*u).into() }).collect()
        };
        let (ecs, cvm) = (Provider::AliyunEcs, Provider::TencentCvm);
        let mut bind = Operation::new(Action::AssociateKeys);
        bind.keys = Keys::Names(vec!["Finance".into()]);
        let tencent_id = placed(&[("ins-1e4r6y8i", "ins-1e4r6y8i")]);
        // An ECS caller's CVM instance, routed to CVM, is a CVM id there; sent to ECS, it is not an ECS id.
        assert_eq!(check_ids(&maps, &table, &bind, ecs, cvm, &tencent_id), Ok(()));
        let fault = check_ids(&maps, &table, &bind, ecs, ecs, &tencent_id).unwrap_err();
        assert_eq!(fault.code(), Code::MalformedInstanceId);
        assert!(fault.message().contains("not an instance id on aliyun-ecs (`i-` and 1 to 30"), "{}", fault.message());
        // A renamed id is checked as renamed, and the message names both.
        let renamed = placed(&[("i-alias", "ins-1122")]);
        let fault = check_ids(&maps, &table, &bind, ecs, cvm, &renamed).unwrap_err();
        assert!(fault.message().contains("`i-alias`, `ins-1122` on tencent-cvm"), "{}", fault.message());
        // Keys in the target's terms are checked; a name to be looked up on a Tencent target is not an id.
        bind.keys = Keys::Names(vec!["1bad".into()]);
        let fault = check_ids(&maps, &table, &bind, ecs, ecs, &placed(&[("i-abc", "i-abc")])).unwrap_err();
        assert_eq!(fault.code(), Code::MalformedKeyId);
        assert_eq!(check_ids(&maps, &table, &bind, ecs, cvm, &tencent_id), Ok(()));
        let mut tencent_bind = Operation::new(Action::AssociateKeys);
        tencent_bind.keys = Keys::Ids(vec!["skey-1122".into()]);
        let fault = check_ids(&maps, &table, &tencent_bind, cvm, cvm, &tencent_id).unwrap_err();
        assert_eq!(fault.code(), Code::MalformedKeyId);
        tencent_bind.keys = Keys::Ids(vec!["skey-zzzzzzzz".into()]);
        let fault = check_ids(&maps, &table, &tencent_bind, cvm, ecs, &[]).unwrap_err();
        assert_eq!(fault.code(), Code::KeyNotFound, "no name on ECS");
        // A look-up's name filter is not an id.
        let mut lookup = Operation::new(Action::DescribeKeys);
        lookup.keys = Keys::Names(vec!["*Ssh*".into()]);
        assert_eq!(check_ids(&maps, &table, &lookup, ecs, ecs, &[]), Ok(()));
    }

    #[test]
    fn batches_split_to_the_upstream_limit() {
        let maps = Mappings::embedded().unwrap();
        let mut op = Operation::new(Action::AssociateKeys);
        op.keys = Keys::Names(vec!["k".into()]);
        let placed: Vec<Placed> =
            (0..120).map(|i| Placed { caller_id: format!("c{i}"), upstream_id: format!("u{i}") }).collect();
        let legs = split(&maps, "ecs", Provider::AliyunEcs, op.clone(), placed).unwrap();
        assert_eq!(legs.iter().map(|l| l.op.instances.len()).collect::<Vec<_>>(), [50, 50, 20]);
        let ends = |l: &Leg| (l.placed[0].caller_id.clone(), l.op.instances[l.op.instances.len() - 1].clone());
        assert_eq!(
            legs.iter().map(ends).collect::<Vec<_>>(),
            [("c0".into(), "u49".into()), ("c50".into(), "u99".into()), ("c100".into(), "u119".into())],
            "each leg keeps its own instances, in order, caller and upstream ids paired"
        );
        assert!(legs.iter().all(|l| l.op.keys == op.keys && l.placed.len() == l.op.instances.len()));
        op.keys = Keys::Names(vec!["a".into(), "b".into()]);
        assert_eq!(split(&maps, "ecs", Provider::AliyunEcs, op, vec![]).unwrap_err().code(), Code::LimitExceeded);
    }
}
