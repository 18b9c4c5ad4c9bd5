//! The steps crossgate takes itself (key import, start, stop, reboot), sent by its own upstream client
//! over real sockets, signed as each cloud's SDK signs, to the simulator, which serves them by the
//! documented rules; and a caller who sends one through the gateway is refused in its own dialect.

use crossgate::clock::SystemClock;
use crossgate::config::Endpoint;
use crossgate::dialect::Dialect;
use crossgate::model::{Action, Answer, Code, Keys, Operation, Provider};
use crossgate::provider::Upstream;
use crossgate::sshkey::PublicKey;

use crate::harness::{Env, Signer, tc3_request};

const NEW_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMjg+YLuiY2ONYD54tAXQXnBZzl7C31h6rb41HhIM7VX k5@crossgate-demo";

fn upstream(env: &Env, name: &str) -> Upstream {
    let config = env.config.upstreams[name].clone();
    assert_eq!(config.endpoint, Endpoint::Simulator);
    Upstream::new(config, Some(env.started.simulator.as_ref().unwrap().0.addr)).unwrap()
}

fn import(name: &str) -> Operation {
    Operation {
        keys: Keys::Names(vec![name.into()]),
        public_key: Some(NEW_KEY.into()),
        ..Operation::new(Action::ImportKey)
    }
}

#[tokio::test]
async fn keys_are_imported_on_every_cloud_and_found_again_by_their_public_key_or_fingerprint() {
    let env = Env::with("", "").await;
    let md5 = PublicKey::parse(NEW_KEY).unwrap().md5_fingerprint();
    for (name, key_name) in [("cvm", "deploy_copy"), ("lighthouse", "deploy_copy"), ("ecs", "DeployCopy")] {
        let up = upstream(&env, name);
        let out = up.call(&import(key_name), &env.maps, &SystemClock).await.unwrap_or_else(|f| panic!("{name}: {f}"));
        let Answer::Imported(info) = out.answer else { panic!("{name}: {out:?}") };
        let look = Operation { keys: Keys::Names(vec![key_name.into()]), ..Operation::new(Action::DescribeKeys) };
        let Answer::KeyPairs(found) = up.call(&look, &env.maps, &SystemClock).await.unwrap().answer else { panic!() };
        let found = found.into_iter().find(|k| k.name == key_name).expect("the imported key is listed");
        assert_eq!(found.id, info.id);
        if up.config.provider == Provider::AliyunEcs {
            assert_eq!(info.fingerprint.as_deref(), Some(md5.as_str()), "ECS reports the MD5 fingerprint");
            assert_eq!(found.fingerprint.as_deref(), Some(md5.as_str()));
        } else {
            assert_eq!(found.public_key.as_deref(), Some(NEW_KEY), "Tencent reports the public key");
        }
        let again = up.call(&import(key_name), &env.maps, &SystemClock).await.unwrap_err();
        assert_eq!(again.code(), Code::KeyNameTaken, "{name}: {again}");
    }
}

#[tokio::test]
async fn instances_are_stopped_started_and_rebooted_by_the_documented_rules() {
    let env = Env::with("", "").await;
    let power = |action, id: &str| Operation { instances: vec![id.into()], ..Operation::new(action) };
    let cases = [
        ("cvm", Provider::TencentCvm, "ins-w34e5rl9", "RUNNING", "STOPPED"),
        ("ecs", Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv", "Running", "Stopped"),
    ];
    for (name, provider, id, running, stopped) in cases {
        let up = upstream(&env, name);
        let state = || env.sim().with_state(|s| s.instance(provider, id).unwrap().state.clone());
        if state() != running {
            up.call(&power(Action::StartInstances, id), &env.maps, &SystemClock).await.unwrap();
        }
        let forced = Operation { force_stop: Some(true), ..power(Action::StopInstances, id) };
        up.call(&forced, &env.maps, &SystemClock).await.unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(state(), stopped);
        let refused = up.call(&power(Action::RebootInstances, id), &env.maps, &SystemClock).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidInstanceState, "{name}: a stopped instance is not rebooted");
        up.call(&power(Action::StartInstances, id), &env.maps, &SystemClock).await.unwrap();
        up.call(&power(Action::RebootInstances, id), &env.maps, &SystemClock).await.unwrap();
        assert_eq!(state(), running);
    }
}

#[tokio::test]
async fn a_caller_cannot_send_a_step_through_the_gateway() {
    let env = Env::with("", "").await;
    let body = serde_json::json!({"InstanceIds": ["ins-1e4r6y8i"]});
    let got = env.send(&tc3_request(&env.host(), "cvm", "StartInstances", "2017-03-12", &body, &Signer::demo())).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InvalidAction"), "{}", got.text());
    assert!(env.sim().with_state(|s| s.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().state == "STOPPED"));
}
