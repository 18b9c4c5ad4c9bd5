//! The load itself: N keep-alive HTTP/1.1 connections, each with one request in flight, for a bounded
//! time. Closed loop by default (each connection sends its next request when the last is answered);
//! with a rate, open loop: each connection keeps a fixed schedule and latency is counted from the time a
//! request was due, so a target that stalls shows it in the percentiles instead of slowing the load.
//!
//! A connection that fails or times out is counted and opened again; nothing waits past the run's end
//! plus one timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossgate::clock::{Clock, SystemClock};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use crate::pace::Pacer;
use crate::requests::{RequestMaker, to_http};
use crate::tally::{Tally, Transport, classify};

/// How long a connection waits after failing to connect before trying again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// When and how hard to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// Concurrent connections.
    pub(crate) connections: u32,
    /// Load before measuring.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) duration: Duration,
    /// Total requests per second, for an open-loop run.
    pub(crate) rate: Option<f64>,
    /// Per-request limit.
    pub(crate) timeout: Duration,
}

/// The instants of one run.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Measuring starts here (after the warm-up).
    from: Instant,
    /// No request starts at or after this.
    until: Instant,
}

impl Window {
    fn measures(&self, started: Instant) -> bool {
        started >= self.from && started < self.until
    }
}

/// Runs the plan and returns what every connection saw; an error when an open-loop connection's timer
/// cannot be made.
pub(crate) async fn run(plan: Plan, maker: Arc<RequestMaker>) -> Result<Tally, String> {
    let start = Instant::now();
    let from = start + plan.warmup;
    let window = Window { from, until: from + plan.duration };
    let mut tasks = Vec::with_capacity(plan.connections as usize);
    for i in 0..plan.connections {
        let paced = match plan.rate {
            Some(rate) => {
                let pacer = Pacer::new().map_err(|e| format!("cannot make a connection's timer: {e}"))?;
                Some((Schedule::new(rate, plan.connections, i, start), pacer))
            }
            None => None,
        };
        tasks.push(tokio::spawn(connection(plan, window, paced, maker.clone())));
    }
    let mut total = Tally::default();
    for task in tasks {
        // A connection task never panics on the target's behaviour; a panic here is a bug worth seeing.
        total.merge(task.await.expect("a connection task panicked"));
    }
    Ok(total)
}

/// An open-loop connection's schedule: every `interval`, starting at its own offset so that the
/// connections' requests interleave evenly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    next: Instant,
    interval: Duration,
}

impl Schedule {
    pub(crate) fn new(rate: f64, connections: u32, index: u32, start: Instant) -> Schedule {
        let interval = Duration::from_secs_f64(f64::from(connections) / rate);
        let offset = interval.mul_f64(f64::from(index) / f64::from(connections));
        Schedule { next: start + offset, interval }
    }

    /// The time the next request is due; the one after is one interval later, however late this one is.
    pub(crate) fn take(&mut self) -> Instant {
        let due = self.next;
        self.next += self.interval;
        due
    }
}

/// One connection's life: connect, send until the window closes, reconnect after a failure.
async fn connection(
    plan: Plan,
    window: Window,
    mut paced: Option<(Schedule, Pacer)>,
    maker: Arc<RequestMaker>,
) -> Tally {
    let mut tally = Tally::default();
    'connect: while Instant::now() < window.until {
        let attempt_at = Instant::now();
        let mut sender = match open(plan.addr, plan.timeout).await {
            Ok(sender) => sender,
            Err(kind) => {
                tally.attempted += 1;
                if window.measures(attempt_at) {
                    tally.failure(kind);
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        loop {
            let due = match &mut paced {
                Some((schedule, pacer)) => {
                    let due = schedule.take();
                    if pacer.until(due).await.is_err() {
                        // The timer failed (it never does once made): fall back to the runtime's own.
                        sleep_until(due).await;
                    }
                    due
                }
                None => Instant::now(),
            };
            if due >= window.until {
                break 'connect;
            }
            tally.attempted += 1;
            let result = exchange(&mut sender, &maker, plan.timeout).await;
            let measured = window.measures(due);
            match result {
                Ok((status, body)) => {
                    if measured {
                        tally.answer(classify(status, &body), due.elapsed());
                    }
                }
                Err(kind) => {
                    if measured {
                        tally.failure(kind);
                    }
                    continue 'connect;
                }
            }
        }
    }
    tally
}

/// Opens a connection and its HTTP/1.1 client half; the connection's driver runs as its own task and
/// ends when `SendRequest` is dropped.
async fn open(addr: SocketAddr, limit: Duration) -> Result<SendRequest<Full<Bytes>>, Transport> {
    let stream = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => return Err(Transport::Timeout),
        Ok(Err(_)) => return Err(Transport::Connect),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = match timeout(limit, http1::handshake(TokioIo::new(stream))).await {
        Err(_) => return Err(Transport::Timeout),
        Ok(Err(_)) => return Err(Transport::Connect),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        // Its error is the request's error, seen by the sender.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request, signed now, and its whole answer.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    maker: &RequestMaker,
    limit: Duration,
) -> Result<(u16, Bytes), Transport> {
    let work = async {
        sender.ready().await.map_err(|_| Transport::Broken)?;
        let wire = maker.make(SystemClock.now_unix()).map_err(|_| Transport::Broken)?;
        let req = to_http(wire).map_err(|_| Transport::Broken)?;
        let res = sender.send_request(req).await.map_err(|_| Transport::Broken)?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.map_err(|_| Transport::Broken)?.to_bytes();
        Ok((status, body))
    };
    timeout(limit, work).await.unwrap_or(Err(Transport::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_spreads_the_rate_over_the_connections() {
        let start = Instant::now();
        // 1000 req/s over 4 connections: each sends every 4 ms, offset by 1 ms from the previous one.
        let mut a = Schedule::new(1000.0, 4, 0, start);
        let mut b = Schedule::new(1000.0, 4, 1, start);
        assert_eq!(a.take(), start);
        assert_eq!(a.take(), start + Duration::from_millis(4));
        assert_eq!(b.take(), start + Duration::from_millis(1));
        assert_eq!(b.take(), start + Duration::from_millis(5));
    }

    #[test]
    fn only_requests_started_in_the_window_are_measured() {
        let from = Instant::now();
        let w = Window { from, until: from + Duration::from_secs(1) };
        assert!(w.measures(from));
        assert!(w.measures(from + Duration::from_millis(999)));
        assert!(!w.measures(from + Duration::from_secs(1)));
        assert!(!w.measures(from - Duration::from_millis(1)));
    }
}
