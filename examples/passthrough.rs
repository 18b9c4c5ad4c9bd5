//! The framework's floor: a plain HTTP/1 reverse proxy built from the same parts as crossgate's serving
//! path (hyper's server and client connections, one single-threaded tokio runtime per serving thread,
//! each accepting on its own clone of the listening socket, one keep-alive upstream connection per
//! client connection), doing nothing else: no detection, signatures, translation, audit or limits.
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

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        return Err("usage: passthrough LISTEN_ADDR UPSTREAM_ADDR [THREADS]".into());
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
        serving.push(std::thread::spawn(move || serve(listener, upstream)));
    }
    for thread in serving {
        thread.join().map_err(|_| "a serving thread panicked")??;
    }
    Ok(())
}

/// One serving thread: its own event loop, accepting on its clone of the socket.
fn serve(listener: std::net::TcpListener, upstream: SocketAddr) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (client, _) = listener.accept().await?;
            client.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                if let Err(e) = connection(client, upstream).await {
                    eprintln!("passthrough: {e}");
                }
            });
        }
    })
}

/// One client connection, with its own upstream connection.
async fn connection(client: tokio::net::TcpStream, upstream: SocketAddr) -> Result<(), Failure> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(driver);
    let sender = Rc::new(Mutex::new(sender));
    let service = hyper::service::service_fn(move |req| forward(sender.clone(), req));
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
