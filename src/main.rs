//! The `crossgate` command: `serve` the gateway, run the `sim`ulator alone, print the `coverage` matrix,
//! or make a development certificate (`certs`). No protocol knowledge lives here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use crossgate::config::{self, Config};
use crossgate::layer::audit::{AuditSink, JsonLinesSink};
use crossgate::{app, clock::SystemClock, server};

#[derive(Parser)]
#[command(
    name = "crossgate",
    version,
    about = "One gateway for the SSH key-pair APIs of Tencent Cloud and Alibaba Cloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (with no --config: the embedded demo, against the built-in simulator).
    Serve {
        /// The config file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the built-in cloud simulator alone.
    Sim {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
        /// A seed file (TOML) with instances, key pairs and credentials; default: the built-in demo set.
        #[arg(long)]
        seed: Option<PathBuf>,
    },
    /// Print what translates, what is lossy and what is refused, for every caller dialect and provider.
    Coverage,
    /// Make a self-signed development certificate and key (PEM).
    Certs {
        /// Where to write dev.pem and dev-key.pem.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Names the certificate is valid for.
        #[arg(long, default_values = ["localhost", "127.0.0.1"])]
        name: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "crossgate=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve { config } => runtime().and_then(|rt| rt.block_on(serve(config))),
        Command::Sim { listen, seed } => runtime().and_then(|rt| rt.block_on(sim(listen, seed))),
        Command::Coverage => crossgate::coverage::render_default().map(|text| print!("{text}")),
        Command::Certs { out, name } => crossgate::certs::write(&out, &name).map(|paths| {
            println!("wrote {} and {}", paths.0.display(), paths.1.display());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crossgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn serve(path: Option<PathBuf>) -> Result<(), String> {
    let demo = path.is_none();
    let config = match &path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::demo(),
    };
    let audit: Arc<dyn AuditSink> = match &config.audit_path {
        Some(p) => {
            Arc::new(JsonLinesSink::open(p).map_err(|e| format!("cannot open the audit log {}: {e}", p.display()))?)
        }
        None => Arc::new(JsonLinesSink::stdout()),
    };
    let tls = config.tls.is_some();
    let started = app::start(config, audit, Arc::new(SystemClock)).await?;
    let addr = started.gateway.addr;
    if demo {
        print_demo(addr);
    }
    println!("listening on {}://{addr}", if tls { "https" } else { "http" });
    tokio::select! {
        () = server::shutdown_signal() => {}
    }
    started.gateway.stop().await;
    if let Some((sim, _)) = started.simulator {
        sim.stop().await;
    }
    Ok(())
}

async fn sim(listen: std::net::SocketAddr, seed: Option<PathBuf>) -> Result<(), String> {
    let running = crossgate::sim::run_standalone(listen, seed.as_deref(), Arc::new(SystemClock)).await?;
    println!("listening on http://{}", running.addr);
    server::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

fn print_demo(addr: std::net::SocketAddr) {
    println!("crossgate demo: every upstream is the built-in simulator; audit lines go to audit.jsonl");
    println!("  caller SecretId / AccessKeyId: {}", config::DEMO_CALLER_ID);
    println!("  caller SecretKey / AccessKeySecret: {}", config::DEMO_CALLER_SECRET);
    println!("  a ready-to-paste request (legacy API 2.0, HmacSHA256, valid for 5 minutes, once):");
    println!("{}", crossgate::demo::example_curl(addr));
}
