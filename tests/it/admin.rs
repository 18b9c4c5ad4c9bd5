//! The admin listener end to end: metrics that move with real signed requests (served, failed upstream,
//! refused), the audit API's filters and chain state over a real SQLite trail, the bearer token, and
//! admin routes never served on the callers' listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossgate::app::{self, Started};
use crossgate::audit::sqlite::{Sqlite, SqliteOptions};
use crossgate::audit::store::StoreSpec;
use crossgate::clock::SystemClock;
use crossgate::config::{AdminConfig, Config};
use crossgate::dialect::{Dialect, WireRequest};
use crossgate::secret::Secret;
use crossgate::sign::tencent_v1::Hash;

use crate::fake_cvm::FakeCvm;
use crate::harness::{Got, Signer, config_with, send_to, tc3_request, v1_request};

pub(crate) const TOKEN: &str = "admin-token-for-tests-0123456789";

/// A gateway auditing into a fresh SQLite trail, with its admin listener on a free port (`token`
/// required when given), a CVM upstream `fake` for instances `ins-t*` and one that refuses every
/// connection, `dead`, for `ins-d*`.
pub(crate) async fn start(upstream: &FakeCvm, token: Option<&str>) -> Started {
    start_with(upstream, token, "").await
}

/// A second caller, `ops`, for [`start_with`].
pub(crate) const OPS_CALLER: &str = "\n[[callers]]\nname = \"ops\"\nsecret_id = \"AKIDopsCallerForThePageTest0000\"\n\
                                     secret_key = \"ops-caller-secret\"\n";

/// [`start`] with `extra` TOML appended to the config.
pub(crate) async fn start_with(upstream: &FakeCvm, token: Option<&str>, extra: &str) -> Started {
    let mut config = config(upstream, token, extra);
    let dir = std::env::temp_dir().join(format!("crossgate-admin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    config.audit.store = StoreSpec::Sqlite(db.clone());
    let sink = Arc::new(Sqlite::open(&db, SqliteOptions::default()).unwrap());
    app::start(config, sink, Arc::new(SystemClock)).await.expect("gateway starts")
}

/// The configuration [`start_with`] starts, but for its audit store (the default).
pub(crate) fn config(upstream: &FakeCvm, token: Option<&str>, extra: &str) -> Config {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let rules = "\n[[routing.rules]]\ninstance = \"ins-t*\"\nupstream = \"fake\"\n\
                 \n[[routing.rules]]\ninstance = \"ins-d*\"\nupstream = \"dead\"\n";
    let upstream_at = |name: &str, addr: SocketAddr| {
        format!(
            "\n[upstreams.{name}]\nprovider = \"tencent-cvm\"\nendpoint = \"http://{addr}\"\nregion = \"ap-guangzhou\"\n\
             secret_id = \"AKIDadminupstream\"\nsecret_key = \"admin-upstream-secret\"\nretries = 0\n"
        )
    };
    let extra = upstream_at("fake", upstream.addr) + &upstream_at("dead", closed) + extra;
    let mut config: Config = config_with(rules, &extra);
    config.admin = Some(AdminConfig { listen: "127.0.0.1:0".parse().unwrap(), token: token.map(Secret::new) });
    config
}

/// A signed TC3 bind of `instance`.
pub(crate) fn bind(gateway: SocketAddr, instance: &str) -> WireRequest {
    let body = serde_json::json!({"InstanceIds": [instance], "KeyIds": ["skey-4e5ty7i8"]});
    tc3_request(&gateway.to_string(), "cvm", "AssociateInstancesKeyPairs", "2017-03-12", &body, &Signer::demo())
}

/// `GET path` on the admin listener, with `token` as a bearer token when given.
pub(crate) async fn get(admin: SocketAddr, path: &str, token: Option<&str>) -> Got {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    let path: &'static str = Box::leak(path.to_owned().into_boxed_str());
    let wire =
        WireRequest { method: "GET", host: admin.to_string(), path, query: query.to_owned(), headers, body: vec![] };
    send_to(admin, &wire).await
}

/// The value of the sample `name{labels}` in a metrics text (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap_or_else(|_| panic!("bad sample {series}: {v}")))
}

#[tokio::test]
async fn metrics_move_with_real_requests_and_the_audit_api_answers_every_filter() {
    let upstream = FakeCvm::start(Duration::ZERO).await;
    let started = start(&upstream, Some(TOKEN)).await;
    let (gateway, admin) = (started.gateway.addr, started.admin.as_ref().expect("an admin listener").addr);
    let metrics = || async { get(admin, "/metrics", Some(TOKEN)).await.text() };
    let served = "crossgate_requests_total{dialect=\"tencent_cvm\",action=\"AssociateInstancesKeyPairs\",\
                  upstream=\"fake\",result=\"ok\"}";
    let before = metrics().await;
    assert_eq!(sample(&before, served), 0.0, "{before}");

    let mut ids = Vec::new();
    for i in 0..3 {
        let got = send_to(gateway, &bind(gateway, &format!("ins-t000000{i}"))).await;
        assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
        ids.push(got.request_id(Dialect::TencentCvm).unwrap());
    }
    // A caller with the wrong secret: refused before anything is forwarded.
    let params = [
        ("Action", "AssociateInstancesKeyPairs"),
        ("Version", "2017-03-12"),
        ("Region", "ap-guangzhou"),
        ("InstanceIds.0", "ins-t0000009"),
        ("KeyIds.0", "skey-4e5ty7i8"),
    ];
    let wire =
        v1_request(&gateway.to_string(), "POST", "/v2/index.php", &params, Hash::Sha256, &Signer::wrong_secret());
    let refused = send_to(gateway, &wire).await;
    assert_eq!(refused.error_code(Dialect::TencentV2).as_deref(), Some("InvalidParameter.SignatureFailure"));
    let refused_id = refused.request_id(Dialect::TencentV2).unwrap();
    // An upstream that refuses connections: a failed call, counted as an upstream error.
    let failed = send_to(gateway, &bind(gateway, "ins-d0000005")).await;
    assert!(failed.error_code(Dialect::TencentCvm).is_some(), "{}", failed.text());

    let after = metrics().await;
    assert_eq!(sample(&after, served), 3.0, "{after}");
    let errored = served.replace("\"fake\",result=\"ok\"", "\"dead\",result=\"error\"");
    assert_eq!(sample(&after, &errored), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "crossgate_requests_total{dialect=\"tencent_v2\",action=\"AssociateInstancesKeyPairs\",upstream=\"none\",result=\"refused\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(sample(&after, "crossgate_upstream_call_duration_seconds_count{upstream=\"fake\"}"), 3.0, "{after}");
    assert!(
        sample(&after, "crossgate_upstream_errors_total{upstream=\"dead\",kind=\"not_connected\"}") >= 1.0,
        "{after}"
    );
    assert_eq!(sample(&after, "crossgate_request_duration_seconds_count{dialect=\"tencent_cvm\"}"), 4.0, "{after}");
    assert!(sample(&after, "crossgate_audit_write_duration_seconds_count{phase=\"admitted\"}") >= 4.0, "{after}");
    assert_eq!(sample(&after, "crossgate_breaker_state{upstream=\"fake\",state=\"closed\"}"), 1.0, "{after}");
    assert_eq!(sample(&after, "crossgate_limiter_queue_length{upstream=\"cvm\"}"), 0.0);
    assert!(after.contains("crossgate_limiter_refusals_total{upstream=\"lighthouse\"} 0"), "{after}");
    assert_eq!(sample(&after, "crossgate_audit_write_failures_total{phase=\"completed\"}"), 0.0);

    // The audit API: the same filters as `crossgate audit query`.
    let records = |query: &str| {
        let query = query.to_owned();
        async move {
            let got = get(admin, &format!("/api/audit?{query}"), Some(TOKEN)).await;
            assert_eq!(got.status, 200, "{}", got.text());
            got.json()["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{}:{}", r["request_id"].as_str().unwrap(), r["phase"].as_str().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    let completed: Vec<String> = ids.iter().map(|id| format!("{id}:completed")).collect();
    assert_eq!(records("caller=demo&result=ok").await, completed);
    assert_eq!(records("caller=demo&result=ok&limit=2").await, completed[1..]);
    assert_eq!(
        records(&format!("request_id={}", ids[1])).await,
        [format!("{}:admitted", ids[1]), completed[1].clone()]
    );
    assert_eq!(records("instance=ins-t0000002&phase=completed").await, [completed[2].clone()]);
    assert_eq!(records("phase=refused").await, [format!("{refused_id}:refused")]);
    assert_eq!(records("upstream=dead&result=error").await.len(), 1);
    assert_eq!(records("since=1h&action=AssociateInstancesKeyPairs&phase=completed").await.len(), 4);
    assert!(records("until=1h").await.is_empty());
    assert!(records("caller=nobody").await.is_empty());
    let bad = get(admin, "/api/audit?result=maybe", Some(TOKEN)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().starts_with("result:"), "{}", bad.text());

    let chain = get(admin, "/api/audit/verify", Some(TOKEN)).await.json();
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(chain["records"], 9, "4 admissions, 4 completions, 1 refusal: {chain}");
}

#[tokio::test]
async fn the_token_guards_every_data_route_and_admin_routes_are_not_on_the_callers_listener() {
    let upstream = FakeCvm::start(Duration::ZERO).await;
    let started = start(&upstream, Some(TOKEN)).await;
    let (gateway, admin) = (started.gateway.addr, started.admin.as_ref().unwrap().addr);
    for path in ["/metrics", "/api/audit", "/api/audit/verify"] {
        let none = get(admin, path, None).await;
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.headers.get("www-authenticate").unwrap(), "Bearer realm=\"crossgate\"");
        assert_eq!(get(admin, path, Some("admin-token-for-tests-012345678X")).await.status, 401, "{path}");
        assert_eq!(get(admin, path, Some(TOKEN)).await.status, 200, "{path}");
    }
    // The page's own files hold no data and load without the token; they name no other origin.
    let page = get(admin, "/audit", None).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type().starts_with("text/html"));
    let policy = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    for asset in ["/audit", "/audit.js", "/audit.css"] {
        let text = get(admin, asset, None).await.text();
        assert!(!text.contains("http://") && !text.contains("https://"), "{asset} names another origin");
    }
    assert_eq!(get(admin, "/nothing", Some(TOKEN)).await.status, 404);
    let post = WireRequest {
        method: "POST",
        host: admin.to_string(),
        path: "/metrics",
        query: String::new(),
        headers: vec![("authorization", format!("Bearer {TOKEN}"))],
        body: vec![],
    };
    let post = send_to(admin, &post).await;
    assert_eq!(post.status, 405);

    // The callers' listener knows none of them: each is an unsigned request, refused in a dialect.
    for path in ["/metrics", "/audit", "/api/audit"] {
        let got = get(gateway, path, Some(TOKEN)).await;
        assert_ne!(got.status, 200, "{path} on the callers' listener");
        assert!(!got.text().contains("crossgate_requests") && !got.text().contains("<html"), "{path}: {}", got.text());
    }
    drop(upstream);
}
