//! How a caller opens its connection: HTTP/2 with prior knowledge, HTTP/1 whose first byte arrives
//! alone (so it could still be HTTP/2's preface), and a connection that sends nothing at all.

use std::time::{Duration, Instant};

use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{Dialect, WireRequest};
use crossgate::model::{Action, Operation};
use crossgate::sign::Scheme;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Env, got, without_host};

fn describe() -> Operation {
    let mut op = Operation::new(Action::DescribeKeys);
    op.region = Some("ap-guangzhou".into());
    op
}

fn signed_describe(env: &Env) -> WireRequest {
    env.signed(
        Dialect::TencentCvm,
        Scheme::Tc3,
        &describe(),
        DEMO_CALLER_ID,
        DEMO_CALLER_SECRET,
        SystemClock.now_unix(),
    )
}

#[tokio::test]
async fn a_caller_speaking_http2_from_its_first_byte_is_served() {
    let env = Env::matrix().await;
    let wire = signed_describe(&env);
    let stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2 handshake");
    tokio::spawn(conn);
    let res = sender.send_request(without_host(&wire, &format!("http://{}", wire.host))).await.expect("an answer");
    assert_eq!(res.version(), http::Version::HTTP_2);
    let got = got(res).await;
    assert_eq!(got.status, 200, "{}", got.text());
    env.decode(Dialect::TencentCvm, &got, &describe()).unwrap_or_else(|f| panic!("{f}: {}", got.text()));
    let id = got.request_id(Dialect::TencentCvm).expect("a RequestId");
    assert!(env.audit_line(&id).caller.is_some(), "the request is audited with its caller");
}

#[tokio::test]
async fn an_http1_request_whose_first_byte_comes_alone_is_served() {
    let env = Env::matrix().await;
    let raw = crate::support::raw_http(&signed_describe(&env));
    let mut stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    // "P" begins both "POST" and HTTP/2's preface: the protocol is not told until more arrives.
    stream.write_all(&raw[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&raw[1..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"KeyPairSet\""), "{answer}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let env = Env::matrix_with(|c| c.inbound.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "a silent connection was not closed: {read:?}");
    assert!(opened.elapsed() >= Duration::from_millis(250), "closed after {:?}", opened.elapsed());
}
