//! Replay keys shared on a real Redis (`redis-server` from the system's packages, started by each test on
//! a free port): a request answered by one replica and replayed to two others is refused by both and
//! reaches the upstream once; with Redis stopped, binds are refused promptly in the caller's dialect while
//! look-ups go through, and all is well again once Redis is back; `on_unavailable = "local"` keeps going
//! on memory.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossgate::app::Started;
use crossgate::config::{OnUnavailable, StateConfig};
use crossgate::dialect::Dialect;
use crossgate::secret::Secret;

use crate::fake_cvm::FakeCvm;
use crate::harness::send_to;

/// A throwaway redis-server, killed on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { child: None, port };
        server.up();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it (again), on the same port.
    pub(crate) fn up(&mut self) {
        let program = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or_else(|| panic!("redis-server is not installed: `apt-get install redis-server` (.ci/run does)"));
        let child = Command::new(program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it, as a crash would.
    pub(crate) fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.down();
    }
}

/// A gateway sharing its replay keys on `redis`, with `fake` as the CVM upstream for `ins-t*`.
pub(crate) async fn replica(fake: &FakeCvm, redis: &RedisServer, on_unavailable: OnUnavailable) -> Started {
    let mut config = crate::admin::config(fake, None, "");
    config.state =
        Some(StateConfig { redis: Secret::new(redis.url()), on_unavailable, prefix: "crossgate-test:".into() });
    let sink = std::sync::Arc::new(crossgate::audit::MemorySink::default());
    crossgate::app::start(config, sink, std::sync::Arc::new(crossgate::clock::SystemClock))
        .await
        .expect("gateway starts")
}

fn addr(s: &Started) -> SocketAddr {
    s.gateway.addr
}

#[tokio::test]
#[ignore = "needs redis-server from the system's packages; run by tests/run.sh"]
async fn a_request_replayed_to_other_replicas_is_refused_there_and_reaches_the_upstream_once() {
    let redis = RedisServer::start();
    let fake = FakeCvm::start(Duration::ZERO).await;
    let (a, b, c) = (
        replica(&fake, &redis, OnUnavailable::Refuse).await,
        replica(&fake, &redis, OnUnavailable::Refuse).await,
        replica(&fake, &redis, OnUnavailable::Refuse).await,
    );
    // One signed request (its Host is A's), sent to each replica in turn.
    let wire = crate::admin::bind(addr(&a), "ins-t0000001");
    let first = send_to(addr(&a), &wire).await;
    assert_eq!(first.error_code(Dialect::TencentCvm), None, "{}", first.text());
    for other in [&b, &c] {
        let again = send_to(addr(other), &wire).await;
        assert!(again.error_code(Dialect::TencentCvm).is_some(), "{}", again.text());
        assert!(again.error_message(Dialect::TencentCvm).contains("received already"), "{}", again.text());
    }
    assert_eq!(fake.calls(), 1, "the upstream saw it once");
}

#[tokio::test]
#[ignore = "needs redis-server from the system's packages; run by tests/run.sh"]
async fn with_redis_down_binds_are_refused_promptly_and_look_ups_go_through_until_it_is_back() {
    let mut redis = RedisServer::start();
    let fake = FakeCvm::start(Duration::ZERO).await;
    let gw = replica(&fake, &redis, OnUnavailable::Refuse).await;
    let ok = send_to(addr(&gw), &crate::admin::bind(addr(&gw), "ins-t0000001")).await;
    assert_eq!(ok.error_code(Dialect::TencentCvm), None, "{}", ok.text());

    assert_eq!(readyz(addr(&gw)).await, (200, "ready".to_owned()));

    redis.down();
    let (status, text) = readyz(addr(&gw)).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.starts_with("not ready: redis:"), "{text}");
    let asked = Instant::now();
    let refused = send_to(addr(&gw), &crate::admin::bind(addr(&gw), "ins-t0000002")).await;
    assert!(asked.elapsed() < Duration::from_secs(1), "answered within a second: {:?}", asked.elapsed());
    assert!(refused.error_code(Dialect::TencentCvm).is_some(), "{}", refused.text());
    assert!(refused.error_message(Dialect::TencentCvm).contains("cannot check this request against replays"));
    assert_eq!(fake.calls(), 1, "nothing forwarded that could be a replay");

    // A look-up is harmless to replay: it goes through.
    let body = serde_json::json!({"InstanceIds": ["ins-t0000001"]});
    let look = crate::harness::tc3_request(
        &addr(&gw).to_string(),
        "cvm",
        "DescribeInstances",
        "2017-03-12",
        &body,
        &crate::harness::Signer::demo(),
    );
    let looked = send_to(addr(&gw), &look).await;
    assert!(!looked.error_message(Dialect::TencentCvm).contains("replays"), "{}", looked.text());
    assert_eq!(fake.calls(), 2, "the look-up reached the upstream");

    redis.up();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let back = send_to(addr(&gw), &crate::admin::bind(addr(&gw), "ins-t0000003")).await;
        if back.error_code(Dialect::TencentCvm).is_none() {
            break;
        }
        assert!(Instant::now() < until, "still refused after Redis came back: {}", back.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(readyz(addr(&gw)).await.0, 200);
}

/// `GET /readyz` on a gateway: its status and text.
pub(crate) async fn readyz(gateway: SocketAddr) -> (u16, String) {
    let got = crate::admin::get(gateway, "/readyz", None).await;
    (got.status, got.text().trim().to_owned())
}

#[tokio::test]
#[ignore = "needs redis-server from the system's packages; run by tests/run.sh"]
async fn on_unavailable_local_keeps_going_on_memory() {
    let mut redis = RedisServer::start();
    let fake = FakeCvm::start(Duration::ZERO).await;
    let gw = replica(&fake, &redis, OnUnavailable::Local).await;
    redis.down();
    let wire = crate::admin::bind(addr(&gw), "ins-t0000004");
    let got = send_to(addr(&gw), &wire).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let replayed = send_to(addr(&gw), &wire).await;
    assert!(replayed.error_message(Dialect::TencentCvm).contains("received already"), "{}", replayed.text());
    assert_eq!(fake.calls(), 1);
    // Said in the metrics, too.
    let text = gw.metrics.render();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<u64>().ok()))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(value("crossgate_shared_state_fallbacks_total ") >= 2, "{text}");
    assert!(value("crossgate_shared_state_unavailable_total ") >= 2, "{text}");
}

/// A gateway whose Lighthouse upstream `fakelh` (for `lhins-t*`) is `fake`, with a one-second call limit,
/// sharing its rate limits on `redis`.
async fn lighthouse_replica(fake: &FakeCvm, redis: &RedisServer) -> Started {
    let extra = format!(
        "\n[upstreams.fakelh]\nprovider = \"tencent-lighthouse\"\nendpoint = \"http://{}\"\nregion = \"ap-guangzhou\"\n\
         secret_id = \"AKIDfakelh\"\nsecret_key = \"fakelh-secret\"\ntimeout_ms = 1000\nretries = 0\n",
        fake.addr
    );
    let mut config = crate::admin::config(fake, None, &extra);
    config.routing.rules.insert(
        0,
        crossgate::config::Rule {
            instance: Some(wildmatch::WildMatch::new("lhins-t*")),
            caller: None,
            dialect: None,
            upstream: "fakelh".into(),
        },
    );
    config.state = Some(StateConfig {
        redis: Secret::new(redis.url()),
        on_unavailable: OnUnavailable::Refuse,
        prefix: format!("crossgate-test-{}:", redis.port),
    });
    let sink = std::sync::Arc::new(crossgate::audit::MemorySink::default());
    crossgate::app::start(config, sink, std::sync::Arc::new(crossgate::clock::SystemClock))
        .await
        .expect("gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server from the system's packages; run by tests/run.sh"]
async fn lighthouses_rate_limit_holds_across_replicas_together() {
    let redis = RedisServer::start();
    let fake = FakeCvm::start(Duration::ZERO).await;
    let replicas = [
        lighthouse_replica(&fake, &redis).await,
        lighthouse_replica(&fake, &redis).await,
        lighthouse_replica(&fake, &redis).await,
    ];
    // 60 binds at once, 20 to each replica: Lighthouse takes 10 per second, and each call may wait 1 s.
    let mut sends = Vec::new();
    for (i, r) in replicas.iter().enumerate().cycle().take(60).enumerate().map(|(n, (i, r))| (n * 3 + i, r)) {
        let gw = addr(r);
        let body = serde_json::json!({"InstanceIds": [format!("lhins-t{i:07}")], "KeyIds": ["lhkp-f7rjie1q"]});
        let wire = crate::harness::tc3_request(
            &gw.to_string(),
            "lighthouse",
            "AssociateInstancesKeyPairs",
            "2020-03-24",
            &body,
            &crate::harness::Signer::demo(),
        );
        sends.push(tokio::spawn(async move { send_to(gw, &wire).await }));
    }
    let mut throttled = 0;
    for s in sends {
        let got = s.await.unwrap();
        match got.error_code(Dialect::TencentLighthouse) {
            None => {}
            Some(code) if code == "RequestLimitExceeded" => throttled += 1,
            Some(other) => panic!("unexpected {other}: {}", got.text()),
        }
    }
    let forwarded = fake.calls();
    // Turns every 100 ms from the first, for one second (both ends): 11, within 10% of the rate.
    assert!((10..=11).contains(&forwarded), "{forwarded} binds reached Lighthouse in one second from three replicas");
    assert_eq!(forwarded + throttled, 60, "the rest got the caller's throttling error");
}
