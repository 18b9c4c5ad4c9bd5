//! The demo's ready-to-paste request: a legacy API 2.0 `AssociateInstancesKeyPairs`, signed now with the
//! demo caller's credentials, as a `curl` command line. It stays valid for the Tencent time window.

use std::net::SocketAddr;

use crate::clock::{Clock, SystemClock};
use crate::config::{DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crate::dialect::{self, Dialect, UpstreamCtx};
use crate::mapping::Mappings;
use crate::model::{Action, Keys, Operation};
use crate::secret::Secret;
use crate::sign::Scheme;

/// A signed `curl` command for the demo gateway at `addr`.
pub fn example_curl(addr: SocketAddr) -> String {
    let Ok(maps) = Mappings::embedded() else { return String::new() };
    let mut op = Operation::new(Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = vec!["ins-1e4r6y8i".into()];
    op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let now = SystemClock.now_unix();
    let ctx = UpstreamCtx {
        host: addr.to_string(),
        region: "ap-guangzhou".into(),
        credential_id: DEMO_CALLER_ID.into(),
        scheme: Scheme::TencentV1Sha256,
        timestamp: now,
        nonce: (now % 1_000_000 + 1).to_string(),
    };
    match dialect::encode_request(Dialect::TencentV2, &op, &ctx, &Secret::new(DEMO_CALLER_SECRET), &maps) {
        Ok(wire) if wire.method == "GET" => format!("curl -s 'http://{addr}{}?{}'", wire.path, wire.query),
        Ok(wire) => format!(
            "curl -s 'http://{addr}{}' -H 'Content-Type: application/x-www-form-urlencoded' --data '{}'",
            wire.path,
            String::from_utf8_lossy(&wire.body)
        ),
        Err(e) => format!("(no example: {e})"),
    }
}
