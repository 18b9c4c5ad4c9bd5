//! Real TLS on both sides: a caller reaches crossgate over HTTPS, and crossgate reaches an upstream over
//! HTTPS trusting a CA file, with a certificate made by `crossgate certs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use crossgate::app;
use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{self, Dialect, UpstreamCtx};
use crossgate::layer::audit::MemorySink;
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Keys, Operation, Provider};
use crossgate::secret::Secret;
use crossgate::server::Bound;
use crossgate::server::Running;
use crossgate::sign::Scheme;
use crossgate::sim::{self, SimHandle};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::harness::{got, without_host};

const UPSTREAM_ID: &str = "AKIDtlsUpstream";
const UPSTREAM_SECRET: &str = "tls-upstream-secret";

#[tokio::test]
async fn callers_and_upstreams_speak_https() {
    let dir = std::env::temp_dir().join(format!("crossgate-tls-{}", uuid::Uuid::new_v4()));
    let (cert, key) = crossgate::certs::write(&dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let maps = Arc::new(Mappings::embedded().unwrap());

    // The simulator as an HTTPS upstream.
    let credentials = BTreeMap::from([(UPSTREAM_ID.to_owned(), Secret::new(UPSTREAM_SECRET))]);
    let handle = SimHandle::new(sim::seed::demo(), credentials, maps.clone(), Arc::new(SystemClock));
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap(), Some((&cert, &key))).await.unwrap();
    let upstream = Running::spawn(bound, sim::service(handle.clone()));

    let text = format!(
        r#"
listen = "127.0.0.1:0"
[tls]
cert = "{cert}"
key = "{key}"
[[callers]]
name = "demo"
secret_id = "{DEMO_CALLER_ID}"
secret_key = "{DEMO_CALLER_SECRET}"
[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "https://localhost:{port}"
region = "ap-guangzhou"
secret_id = "{UPSTREAM_ID}"
secret_key = "{UPSTREAM_SECRET}"
ca_file = "{cert}"
[routing]
default = "cvm"
"#,
        cert = cert.display(),
        key = key.display(),
        port = upstream.addr.port(),
    );
    let config = Config::parse("tls.toml", &text, &|_| None).unwrap();
    let started = app::start(config, Arc::new(MemorySink::default()), Arc::new(SystemClock)).await.unwrap();
    let authority = format!("localhost:{}", started.gateway.addr.port());

    let mut op = Operation::new(Action::AssociateKeys);
    op.instances = vec!["ins-1e4r6y8i".into()];
    op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let ctx = UpstreamCtx {
        host: authority.clone(),
        region: "ap-guangzhou".into(),
        credential_id: DEMO_CALLER_ID.into(),
        scheme: Scheme::Tc3,
        timestamp: SystemClock.now_unix(),
        nonce: "1".into(),
    };
    let wire =
        dialect::encode_request(Dialect::TencentCvm, &op, &ctx, &Secret::new(DEMO_CALLER_SECRET), &maps).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    roots.add(rustls_pki_types::CertificateDer::from_pem_file(&cert).unwrap()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls.clone()).https_only().enable_http1().build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut req = http::Request::builder().method(wire.method).uri(format!("https://{authority}/"));
    for (n, v) in &wire.headers {
        req = req.header(*n, v.as_str());
    }
    let res = client.request(req.body(Full::new(Bytes::from(wire.body.clone()))).unwrap()).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"RequestId\"") && !text.contains("\"Error\""), "{text}");
    let keys = handle.with_state(|s| s.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().keys.clone());
    assert_eq!(keys, vec!["skey-4e5ty7i8".to_owned()], "the bind reached the HTTPS upstream");

    // A client that asks for HTTP/2 in its handshake is served over HTTP/2.
    let h2 = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http2().build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(h2);
    let mut describe = Operation::new(Action::DescribeKeys);
    describe.region = Some("ap-guangzhou".into());
    let wire = dialect::encode_request(
        Dialect::TencentCvm,
        &describe,
        &UpstreamCtx { nonce: "2".into(), ..ctx },
        &Secret::new(DEMO_CALLER_SECRET),
        &maps,
    )
    .unwrap();
    let res = client.request(without_host(&wire, &format!("https://{authority}"))).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    let got = got(res).await;
    let (status, text) = (got.status, got.text());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"KeyPairSet\"") && !text.contains("\"Error\""), "{text}");

    started.gateway.stop().await;
    upstream.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
