//! A proxy on a real loopback socket in front of an upstream (the simulator): it forwards every request
//! unchanged, Host header and signature included, except the actions it is told to fail, which it
//! answers itself with the cloud's own error shape (Tencent's 200 envelope, or ECS's HTTP error) without
//! forwarding them. For failures in the middle of a sequence of upstream calls.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// The proxy; `failing` maps a wire action (`StartInstances`, `RebootInstance`, ...) to the error code
/// answered for it.
pub(crate) struct FaultProxy {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

/// The wire action of a request: Tencent's `X-TC-Action` header, or an `Action=` parameter.
fn action_of(req: &http::Request<Incoming>) -> String {
    if let Some(action) = req.headers().get("x-tc-action").and_then(|v| v.to_str().ok()) {
        return action.to_owned();
    }
    if let Some(action) = req.headers().get("x-acs-action").and_then(|v| v.to_str().ok()) {
        return action.to_owned();
    }
    req.uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "Action").map(|(_, v)| v.into_owned()))
        .unwrap_or_default()
}

impl FaultProxy {
    pub(crate) async fn start(target: SocketAddr, failing: BTreeMap<&'static str, &'static str>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let failing = Arc::new(failing);
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, failing, client) = (kept.clone(), failing.clone(), client.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let (kept, failing, client) = (kept.clone(), failing.clone(), client.clone());
                        async move {
                            let action = action_of(&req);
                            kept.lock().unwrap().push(action.clone());
                            let ecs = req.headers().get("x-tc-action").is_none();
                            if let Some(code) = failing.get(action.as_str()) {
                                let (status, body) = if ecs {
                                    (
                                        403,
                                        format!(
                                            r#"{{"RequestId":"proxy-refused","Code":"{code}","Message":"refused by the test"}}"#
                                        ),
                                    )
                                } else {
                                    (
                                        200,
                                        format!(
                                            r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"refused by the test"}},"RequestId":"proxy-refused"}}}}"#
                                        ),
                                    )
                                };
                                let mut res = http::Response::new(Full::new(Bytes::from(body)));
                                *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                                res.headers_mut().insert("content-type", "application/json".parse().unwrap());
                                return Ok::<_, std::convert::Infallible>(res);
                            }
                            let (mut parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                            parts.uri = format!("http://{target}{path}").parse().unwrap();
                            let answer =
                                client.request(http::Request::from_parts(parts, Full::new(body))).await.unwrap();
                            let (parts, body) = answer.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            Ok(http::Response::from_parts(parts, Full::new(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { addr, seen }
    }

    /// The wire actions received, in order (failed ones included).
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}
