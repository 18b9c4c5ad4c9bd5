//! The audit page in a real headless Chromium, driven through ChromeDriver (both from the system's
//! packages: `apt-get install chromium chromium-driver`, which `.ci/run` does): it asks for the admin
//! token, lists the records of requests just sent through the gateway by two callers, filters by one
//! caller, opens an entry and shows what it was translated into, and shows the chain as intact. The
//! screenshot is kept in `target/artifacts/audit-page.png` (and copied to `docs/audit-page.png` when
//! `CROSSGATE_UPDATE_SCREENSHOT=1`).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::admin::{TOKEN, bind, get};
use crate::fake_cvm::FakeCvm;
use crate::harness::{Signer, send_to, tc3_request};

/// ChromeDriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // ChromeDriver and the browsers it started are one process group: a test that fails before it
        // closes its session leaves no Chromium behind.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: install Chromium and ChromeDriver from the system's packages (`apt-get install chromium \
         chromium-driver`; .ci/run does) or set {env}",
        path.display()
    );
    path
}

async fn driver() -> Driver {
    let chromedriver = program("CROSSGATE_CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(chromedriver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let until = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < until, "chromedriver did not listen within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let chromium = program("CROSSGATE_CHROMIUM", "/usr/bin/chromium");
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1500,900".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "binary": chromium, "args": args }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Waits until `check` holds for the page, or fails naming `what`.
async fn eventually(client: &Client, what: &str, script: &str) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let value = client.execute(script, vec![]).await.expect("the script runs");
        if value != serde_json::Value::Null && value != json!(false) {
            return value;
        }
        if Instant::now() > until {
            let status = client.find(Locator::Css("#status")).await.unwrap().text().await.unwrap_or_default();
            panic!("the page never showed {what} (status: {status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "drives a real Chromium; run by tests/run.sh (--include-ignored)"]
async fn the_audit_page_lists_filters_opens_and_proves_the_trail_in_chromium() {
    let upstream = FakeCvm::start(Duration::ZERO).await;
    let started = crate::admin::start_with(&upstream, Some(TOKEN), crate::admin::OPS_CALLER).await;
    let (gateway, admin): (SocketAddr, SocketAddr) = (started.gateway.addr, started.admin.as_ref().unwrap().addr);

    // Two callers bind keys through the gateway.
    let mut by_demo = Vec::new();
    for i in 0..2 {
        let got = send_to(gateway, &bind(gateway, &format!("ins-t000000{i}"))).await;
        by_demo.push(got.request_id(crossgate::dialect::Dialect::TencentCvm).unwrap());
    }
    let ops =
        Signer { id: "AKIDopsCallerForThePageTest0000".into(), secret: "ops-caller-secret".into(), ..Signer::demo() };
    let body = json!({"InstanceIds": ["ins-t0000007"], "KeyIds": ["skey-4e5ty7i8"]});
    let got = send_to(
        gateway,
        &tc3_request(&gateway.to_string(), "cvm", "AssociateInstancesKeyPairs", "2017-03-12", &body, &ops),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text());
    let by_ops = got.request_id(crossgate::dialect::Dialect::TencentCvm).unwrap();
    assert_eq!(get(admin, "/api/audit/verify", Some(TOKEN)).await.json()["intact"], true);

    let driver = driver().await;
    let profile = std::env::temp_dir().join(format!("crossgate-chromium-{}", uuid::Uuid::new_v4()));
    let client = browser(&driver, &profile).await;
    client.goto(&format!("http://{admin}/audit")).await.unwrap();

    // The API needs the token: the page asks for it.
    eventually(&client, "the token form", "return !document.querySelector('#token-form').hidden;").await;
    client.find(Locator::Css("#token-form input[name=token]")).await.unwrap().send_keys(TOKEN).await.unwrap();
    client.find(Locator::Css("#token-form button")).await.unwrap().click().await.unwrap();

    // Every request just sent is listed, newest first.
    let rows = eventually(
        &client,
        "the records of both callers",
        "const rows = [...document.querySelectorAll('#records tbody tr')]; return rows.length >= 6 ? \
         rows.map(tr => [tr.dataset.requestId, tr.children[3].textContent, tr.dataset.phase]) : null;",
    )
    .await;
    let rows: Vec<(String, String, String)> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for id in by_demo.iter().chain([&by_ops]) {
        for phase in ["admitted", "completed"] {
            assert!(rows.iter().any(|r| &r.0 == id && r.2 == phase), "{id} {phase} not listed: {rows:?}");
        }
    }
    assert_eq!(rows[0], (by_ops.clone(), "ops".to_owned(), "completed".to_owned()), "newest first");

    // Filter by caller.
    client.find(Locator::Css("#filters input[name=caller]")).await.unwrap().send_keys("ops").await.unwrap();
    client.find(Locator::Css("#search")).await.unwrap().click().await.unwrap();
    let rows = eventually(
        &client,
        "only the ops caller's records",
        "const rows = [...document.querySelectorAll('#records tbody tr')]; \
         return rows.length === 2 && rows.every(tr => tr.children[3].textContent === 'ops') ? \
         rows.map(tr => tr.dataset.requestId) : null;",
    )
    .await;
    assert_eq!(rows, json!([by_ops, by_ops]));

    // Open the completed entry: as sent, as translated, the result.
    client.find(Locator::Css("#records tbody tr[data-phase=completed]")).await.unwrap().click().await.unwrap();
    let detail = eventually(
        &client,
        "the entry's detail",
        "const d = document.querySelector('#detail'); return d.hidden ? null : d.textContent;",
    )
    .await;
    let detail = detail.as_str().unwrap();
    for expected in [
        by_ops.as_str(),
        "As the caller sent it",
        "Translated for the upstreams",
        "AssociateInstancesKeyPairs",
        "ins-t0000007",
        "skey-4e5ty7i8",
        "fake",
        "Success",
    ] {
        assert!(detail.contains(expected), "the detail lacks {expected}:\n{detail}");
    }

    // The chain's state.
    let chain = eventually(
        &client,
        "the chain as intact",
        "const c = document.querySelector('#chain'); return c.dataset.intact === 'true' ? c.textContent : null;",
    )
    .await;
    assert!(chain.as_str().unwrap().contains("chain intact · 6 records"), "{chain}");

    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("audit-page.png"), &png).unwrap();
    if std::env::var_os("CROSSGATE_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit-page.png"), &png).unwrap();
    }
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(profile);
}
