//! `crossgate-load`: the load generator of crossgate's performance kit (see `BENCHMARKS.md`).
//!
//! It signs every request afresh with the library's own caller codecs (TC3 to CVM, or the legacy v2
//! endpoint with HmacSHA256), drives N keep-alive connections for a bounded time (as fast as the target
//! answers, or at a fixed rate), and reports throughput, latency percentiles from an HDR histogram and
//! errors by kind, ending with one `RESULT {json}` line. Pointed straight at an upstream, the same
//! requests measure the floor that a proxy adds to.
//!
//! `crossgate-load --target http://127.0.0.1:8080 --dialect tc3 --connections 64 --duration 15s`
//!
//! Exit status: 0 when at least one request succeeded, 1 when none did, 2 for a usage error.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use crossgate::clock::{Clock, SystemClock};

mod drive;
mod options;
mod pace;
mod report;
mod requests;
mod tally;

use options::Options;
use requests::RequestMaker;

// The load generator shares the machine with what it measures: a lean allocator keeps its own cost low.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("crossgate-load: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the load and prints the report; true when any request succeeded.
fn run(options: &Options) -> Result<bool, String> {
    let maker = RequestMaker::new(options, RequestMaker::random_start())?;
    // One request up front: a flag that makes requests unsignable is an error now, not a count later.
    maker.make(SystemClock.now_unix())?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime.enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let plan = drive::Plan {
        addr: options.target.addr,
        connections: options.connections,
        warmup: options.warmup,
        duration: options.duration,
        rate: options.rate,
        timeout: options.timeout,
    };
    let tally = runtime.block_on(drive::run(plan, Arc::new(maker)))?;
    let info = report::RunInfo {
        label: options.label.clone(),
        dialect: options.dialect.name(),
        target: format!("http://{}", options.target.host),
        connections: options.connections,
        warmup: options.warmup,
        duration: options.duration,
        rate: options.rate,
    };
    print!("{}", report::render(&info, &tally));
    Ok(tally.ok() > 0)
}
