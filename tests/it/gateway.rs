//! End to end over real sockets: every caller dialect against every upstream provider, bind and unbind,
//! through the gateway and the built-in simulator; the caller's exact answer and the clouds' state after.

use crossgate::clock::{Clock, SystemClock};
use crossgate::dialect::Dialect;
use crossgate::model::{Action, Answer, Keys, Operation, Provider};
use crossgate::sign::Scheme;

use crate::harness::Env;

/// A caller: dialect, scheme, and its names for the matrix machines and the shared key.
struct CallerKind {
    dialect: Dialect,
    scheme: Scheme,
    /// The caller's id for the machine on cvm, lighthouse, ecs.
    ids: [&'static str; 3],
    key: &'static str,
}

const CALLERS: &[CallerKind] = &[
    CallerKind { dialect: Dialect::TencentV2, scheme: Scheme::TencentV1Sha256, ids: TENCENT_IDS, key: "skey-4e5ty7i8" },
    CallerKind { dialect: Dialect::TencentCvm, scheme: Scheme::Tc3, ids: TENCENT_IDS, key: "skey-4e5ty7i8" },
    CallerKind {
        dialect: Dialect::TencentCvm,
        scheme: Scheme::TencentV1Sha256,
        ids: TENCENT_IDS,
        key: "skey-4e5ty7i8",
    },
    CallerKind { dialect: Dialect::TencentLighthouse, scheme: Scheme::Tc3, ids: LIGHTHOUSE_IDS, key: "lhkp-f7rjie1q" },
    CallerKind { dialect: Dialect::AliyunEcs, scheme: Scheme::AliyunRpc, ids: ECS_IDS, key: "FinanceJoshuaV25" },
    CallerKind { dialect: Dialect::AliyunEcs, scheme: Scheme::Acs3, ids: ECS_IDS, key: "FinanceJoshuaV25" },
];

const TENCENT_IDS: [&str; 3] = ["ins-1e4r6y8i", "ins-bbbblh01", "ins-ccccecs1"];
const LIGHTHOUSE_IDS: [&str; 3] = ["lhins-aaaacvm1", "lhins-3k9d8f7s", "lhins-ccccecs1"];
const ECS_IDS: [&str; 3] = ["i-aaaacvm1", "i-bbbblh01", "i-m5eg7be9ndloji64jknv"];

/// The machine on each provider, and the key's name there.
const TARGETS: [(Provider, &str, &str); 3] = [
    (Provider::TencentCvm, "ins-1e4r6y8i", "skey-4e5ty7i8"),
    (Provider::TencentLighthouse, "lhins-3k9d8f7s", "lhkp-f7rjie1q"),
    (Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv", "FinanceJoshuaV25"),
];

fn op(action: Action, caller: &CallerKind, instance: &str) -> Operation {
    let mut op = Operation::new(action);
    op.region = Some(if caller.dialect == Dialect::AliyunEcs { "cn-hangzhou" } else { "ap-guangzhou" }.into());
    op.instances = vec![instance.into()];
    op.keys = match caller.dialect {
        Dialect::AliyunEcs => Keys::Names(vec![caller.key.into()]),
        _ => Keys::Ids(vec![caller.key.into()]),
    };
    op
}

fn bound_keys(env: &Env, provider: Provider, instance: &str) -> Vec<String> {
    env.sim().with_state(|s| {
        s.tick(SystemClock.now_ms() + 1);
        s.instance(provider, instance).map(|i| i.keys.clone()).unwrap_or_default()
    })
}

#[tokio::test]
async fn every_caller_dialect_binds_and_unbinds_on_every_provider() {
    for caller in CALLERS {
        for (target_index, (provider, target_id, target_key)) in TARGETS.iter().enumerate() {
            let env = Env::matrix().await;
            env.sim().with_state(|s| s.set_operation_delay_ms(0));
            let case = format!("{} {:?} -> {provider}", caller.dialect, caller.scheme);
            let instance = caller.ids[target_index];

            let bind = op(Action::AssociateKeys, caller, instance);
            let got = env.call(caller.dialect, caller.scheme, &bind).await;
            let bind_answer = got.clone();
            let outcome = env
                .decode(caller.dialect, &got, &bind)
                .unwrap_or_else(|f| panic!("{case}: bind failed: {f}: {}", got.text()));
            assert_eq!(got.status, 200, "{case}");
            let expected_type = match caller.dialect {
                Dialect::AliyunEcs => "application/json;charset=utf-8",
                _ => "application/json",
            };
            assert_eq!(got.content_type(), expected_type, "{case}");
            if let Answer::Bind(results) = &outcome.answer {
                assert!(results.iter().all(|r| r.result.is_ok()), "{case}: {results:?}");
            }
            assert_eq!(bound_keys(&env, *provider, target_id), vec![target_key.to_string()], "{case}: after bind");

            let unbind = op(Action::DisassociateKeys, caller, instance);
            let got = env.call(caller.dialect, caller.scheme, &unbind).await;
            env.decode(caller.dialect, &got, &unbind)
                .unwrap_or_else(|f| panic!("{case}: unbind failed: {f}: {}", got.text()));
            assert!(bound_keys(&env, *provider, target_id).is_empty(), "{case}: after unbind");

            let lines = env.audit_lines();
            assert_eq!(lines.len(), 2, "{case}: one audit line per request");
            let line = &lines[0];
            let body = bind_answer.json();
            let echoed = match caller.dialect {
                Dialect::AliyunEcs => &body["RequestId"],
                _ => &body["Response"]["RequestId"],
            };
            assert_eq!(
                echoed.as_str(),
                Some(line.request_id.as_str()),
                "{case}: the caller sees the gateway's RequestId"
            );
            assert_eq!(line.code, "Success", "{case}");
            assert_eq!(line.results[0].translated, *target_id, "{case}");
            assert_eq!(line.keys_translated, vec![target_key.to_string()], "{case}");
            assert!(!line.upstream_request_ids.is_empty(), "{case}");
            let text = serde_json::to_string(&lines).unwrap();
            for secret in &env.config_secrets {
                assert!(!text.contains(secret.as_str()), "{case}: an audit line holds a secret");
            }
        }
    }
}
