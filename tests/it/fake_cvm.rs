//! A CVM-speaking upstream on a real loopback socket that answers every call with success after a delay
//! and keeps every body it received: for tests that count what reached the upstream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;

/// A CVM-speaking upstream on loopback: answers every call with success after `delay`, and keeps the
/// body of each call it received.
pub(crate) struct FakeCvm {
    pub(crate) addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl FakeCvm {
    pub(crate) async fn start(delay: Duration) -> FakeCvm {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let n = {
                                let mut kept = kept.lock().unwrap();
                                kept.push(String::from_utf8_lossy(&body).into_owned());
                                kept.len()
                            };
                            tokio::time::sleep(delay).await;
                            let body = format!(r#"{{"Response":{{"RequestId":"fake-upstream-{n}"}}}}"#);
                            let mut res = http::Response::new(Full::new(Bytes::from(body)));
                            res.headers_mut().insert("content-type", "application/json".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeCvm { addr, bodies }
    }

    pub(crate) fn calls(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    pub(crate) fn received(&self, instance: &str) -> bool {
        self.bodies.lock().unwrap().iter().any(|b| b.contains(instance))
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }
}
