//! The framework's floor: a plain HTTP/1 reverse proxy built from the same parts as crossgate's serving
//! path (hyper's server and client connections, one single-threaded tokio runtime per serving thread,
//! each accepting on its own clone of the listening socket, one keep-alive upstream connection per
//! client connection, mimalloc), doing nothing else: no detection, signatures, translation, audit or
//! limits (unless `--protocol`, below).
//!
//! `bench/compare.sh` runs it beside nginx and crossgate, so that the CPU time, throughput and memory
//! crossgate spends beyond hyper and tokio themselves can be read off one run:
//!
//! ```sh
//! cargo run --release --example passthrough -- 127.0.0.1:8081 127.0.0.1:9000 2
//! ```
//!
//! Arguments: the address to listen on, the upstream's address, and the number of serving threads
//! (default: one per CPU). Requests are forwarded as received (method, target, headers, body) and the
//! upstream's answer is given back as received.
//!
//! With `--protocol` it does the protocol work as well, through crossgate's own functions and nothing
//! else: the caller's dialect told, its signature verified (key in `CROSSGATE_BENCH_CALLER_SECRET`), its
//! operation decoded and encoded for a CVM upstream, signed afresh (key in
//! `CROSSGATE_BENCH_UPSTREAM_SECRET`), the upstream's answer read and the caller answered in its own
//! dialect. No audit, replay check, limits, routing, metrics or layers: what a gateway on these parts
//! cannot do with less. `compare.sh` runs it as `protocol`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use crossgate::clock::{Clock, SystemClock};
use crossgate::dialect::{self, Dialect, RawRequest, UpstreamCtx};
use crossgate::layer::request_id::RequestId;
use crossgate::layer::respond::{into_response, plain};
use crossgate::mapping::Mappings;
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

type Failure = Box<dyn std::error::Error + Send + Sync>;

// The allocator crossgate serves with, so that the floor is built from the same parts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Failure> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let protocol = match args.iter().position(|a| a == "--protocol") {
        Some(at) => {
            args.remove(at);
            Some(Arc::new(Protocol::from_env()?))
        }
        None => None,
    };
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        return Err("usage: passthrough LISTEN_ADDR UPSTREAM_ADDR [THREADS] [--protocol]".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    let threads = match args.get(2) {
        Some(n) => n.parse()?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut serving = Vec::with_capacity(threads);
    for _ in 0..threads {
        let listener = listener.try_clone()?;
        let protocol = protocol.clone();
        serving.push(std::thread::spawn(move || serve(listener, upstream, protocol)));
    }
    for thread in serving {
        thread.join().map_err(|_| "a serving thread panicked")??;
    }
    Ok(())
}

/// What `--protocol` needs: the mapping tables and both keys.
struct Protocol {
    maps: Mappings,
    caller_key: Secret,
    upstream_key: Secret,
}

impl Protocol {
    fn from_env() -> Result<Protocol, Failure> {
        let key = |name: &str| std::env::var(name).map(Secret::new).map_err(|_| format!("--protocol needs {name}"));
        Ok(Protocol {
            maps: Mappings::embedded()?,
            caller_key: key("CROSSGATE_BENCH_CALLER_SECRET")?,
            upstream_key: key("CROSSGATE_BENCH_UPSTREAM_SECRET")?,
        })
    }
}

/// One serving thread: its own event loop, accepting on its clone of the socket.
fn serve(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    protocol: Option<Arc<Protocol>>,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (client, _) = listener.accept().await?;
            client.set_nodelay(true)?;
            let protocol = protocol.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = connection(client, upstream, protocol).await {
                    eprintln!("passthrough: {e}");
                }
            });
        }
    })
}

/// One client connection, with its own upstream connection.
async fn connection(
    client: tokio::net::TcpStream,
    upstream: SocketAddr,
    protocol: Option<Arc<Protocol>>,
) -> Result<(), Failure> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(driver);
    let sender = Rc::new(Mutex::new(sender));
    let service = hyper::service::service_fn(move |req| {
        let (sender, protocol) = (sender.clone(), protocol.clone());
        async move {
            match protocol {
                Some(protocol) => translate(sender, req, &protocol, upstream).await,
                None => forward(sender, req).await,
            }
        }
    });
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(client), service).await?;
    Ok(())
}

/// Sends `req` upstream as received and answers with the upstream's answer.
async fn forward(
    sender: Rc<Mutex<SendRequest<Full<Bytes>>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Failure> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = Request::from_parts(parts, Full::new(body));
    let answer = sender.lock().await.send_request(request).await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// `--protocol`: the caller's request verified, decoded and encoded afresh for CVM, its answer read and
/// given back in the caller's dialect.
async fn translate(
    sender: Rc<Mutex<SendRequest<Full<Bytes>>>>,
    req: Request<Incoming>,
    protocol: &Protocol,
    upstream: SocketAddr,
) -> Result<Response<Full<Bytes>>, Failure> {
    let maps = &protocol.maps;
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let raw = RawRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
    };
    let refused = |why: String| Ok(plain(StatusCode::BAD_REQUEST, &why));
    let found = match dialect::detect(&raw, maps) {
        Ok(found) => found,
        Err(why) => return refused(why.to_string()),
    };
    let material = match dialect::auth_material(found.dialect, &raw) {
        Ok(material) => material,
        Err(fault) => return refused(fault.to_string()),
    };
    if let Err(mismatch) = sign::verify(&material, &protocol.caller_key) {
        return refused(mismatch.to_string());
    }
    let op = match dialect::decode_request(found.dialect, &raw, &material, maps) {
        Ok(op) => op,
        Err(fault) => return refused(fault.to_string()),
    };
    let reply = dialect::reply(found.dialect, &raw, maps, RequestId::new().0);
    let ctx = UpstreamCtx {
        host: upstream.to_string(),
        region: "ap-guangzhou".into(),
        credential_id: "AKIDcrossgateBENCHupstream0000000".into(),
        scheme: Scheme::Tc3,
        timestamp: SystemClock.now_unix(),
        nonce: String::new(),
    };
    let wire = match dialect::encode_request(Dialect::TencentCvm, &op, &ctx, &protocol.upstream_key, maps) {
        Ok(wire) => wire,
        Err(fault) => return refused(fault.to_string()),
    };
    let uri = if wire.query.is_empty() { wire.path.to_owned() } else { format!("{}?{}", wire.path, wire.query) };
    let mut request = Request::builder().method(wire.method).uri(uri).header("host", &wire.host);
    for (name, value) in &wire.headers {
        request = request.header(*name, value);
    }
    let answer = sender.lock().await.send_request(request.body(Full::new(wire.body.into()))?).await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    let result = dialect::decode_response(Dialect::TencentCvm, parts.status.as_u16(), &parts.headers, &body, &op, maps);
    Ok(into_response(dialect::encode_response(&reply, &result, maps)))
}
