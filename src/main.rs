//! The `crossgate` command: `serve` the gateway, check a running one's `health`, read its `audit` trail
//! back (`verify`, `query`, `tail`), run the `sim`ulator alone, print the `coverage` matrix, or make a
//! development certificate (`certs`). No protocol knowledge lives here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use crossgate::audit::{AuditSink, store};
use crossgate::config::{self, Config};
use crossgate::{app, clock::SystemClock, server};

// The request path allocates many small, short-lived values on two threads: mimalloc serves them from
// per-thread pages, faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(Target),
    /// Check that the gateway described by the same --config / --listen answers `/healthz` (exit 0), or
    /// say why not (exit 1). Follows the configured address and TLS: a container healthcheck.
    Health {
        #[command(flatten)]
        target: Target,
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Read the audit trail back: check its hash chain, find records, follow new ones.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key replication: import every `[[keys]]` row that replicates where it is missing (`sync`), or
    /// report drift without changing anything (`check`: exit 1 when there is any).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Shadow mode: what the shadow upstreams answered differently.
    #[command(subcommand)]
    Shadow(ShadowCommand),
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
    Coverage {
        /// Show the cells as the state policies of this config's upstreams leave them (without it: the
        /// clouds' own rules, each loss naming the policy that cures it).
        #[arg(long)]
        config: Option<PathBuf>,
    },
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

#[derive(Subcommand)]
enum ShadowCommand {
    /// Sum up the differences recorded in the audit trail over a period.
    Report {
        #[command(flatten)]
        config: Configured,
        /// Since: RFC 3339 or a time ago (90s, 15m, 1h, 2d); default: 1d.
        #[arg(long, default_value = "1d")]
        since: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Import each replicating key on every provider with an upstream that lacks it, checking the
    /// fingerprint; learned ids and names go to `[replication] state`.
    Sync(Configured),
    /// Report keys missing on a provider, fingerprint mismatches and names taken by another key.
    Check(Configured),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of the configured store: exit 0 with how many records and segments checked
    /// out, or exit 1 naming the first record that was edited, removed or reordered.
    Verify(Configured),
    /// Find records (the latest that match, oldest first), as an aligned table or JSON lines.
    Query {
        #[command(flatten)]
        config: Configured,
        #[command(flatten)]
        filter: Box<FilterArgs>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print records as they are written, until interrupted.
    Tail {
        #[command(flatten)]
        config: Configured,
        /// One JSON object per line instead of table rows.
        #[arg(long)]
        json: bool,
        /// How often to look for new records, in milliseconds.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
}

/// The config whose `[audit]` store is read (without it, the embedded demo's).
#[derive(clap::Args)]
struct Configured {
    /// The config file (TOML).
    #[arg(long, env = "CROSSGATE_CONFIG")]
    config: Option<PathBuf>,
}

/// `crossgate audit query`'s filters; every one given must match.
#[derive(clap::Args)]
struct FilterArgs {
    /// Arrived at or after: RFC 3339 (2026-05-01T12:00:00Z) or a time ago (90s, 15m, 1h, 2d).
    #[arg(long)]
    since: Option<String>,
    /// Arrived before: RFC 3339 or a time ago.
    #[arg(long)]
    until: Option<String>,
    /// The caller's name.
    #[arg(long)]
    caller: Option<String>,
    /// An instance id, as the caller gave it or as translated.
    #[arg(long)]
    instance: Option<String>,
    /// A key pair id or name, as given or as translated.
    #[arg(long)]
    key: Option<String>,
    /// An action: the caller's (AttachKeyPair), an upstream's, or canonical (AssociateKeys).
    #[arg(long)]
    action: Option<String>,
    /// An upstream's name.
    #[arg(long)]
    upstream: Option<String>,
    /// How the request ended: ok or error.
    #[arg(long)]
    result: Option<String>,
    /// The RequestId the caller saw.
    #[arg(long)]
    request_id: Option<String>,
    /// The record's phase: admitted, completed or refused.
    #[arg(long)]
    phase: Option<String>,
    /// The most records shown.
    #[arg(long, default_value_t = crossgate::audit::query::DEFAULT_LIMIT)]
    limit: usize,
}

impl FilterArgs {
    fn filter(self, now_ms: u64) -> Result<crossgate::audit::query::Filter, String> {
        let mut filter = crossgate::audit::query::Filter { limit: self.limit, ..Default::default() };
        let given = [
            ("since", self.since),
            ("until", self.until),
            ("caller", self.caller),
            ("instance", self.instance),
            ("key", self.key),
            ("action", self.action),
            ("upstream", self.upstream),
            ("result", self.result),
            ("request_id", self.request_id),
            ("phase", self.phase),
        ];
        for (name, value) in given {
            if let Some(value) = value {
                filter
                    .set(name, &value, now_ms)
                    .map_err(|e| format!("--{}", e.replacen(name, &name.replace('_', "-"), 1)))?;
            }
        }
        Ok(filter)
    }
}

impl Configured {
    fn trail(&self) -> Result<Box<dyn crossgate::audit::query::Trail>, String> {
        let config = match &self.config {
            Some(p) => Config::load(p).map_err(|e| e.to_string())?,
            None => Config::demo(),
        };
        store::trail(&config.audit.store, config.audit.options)
    }
}

/// Which gateway: a config file (or the embedded demo) and an optional listen address over it.
#[derive(clap::Args)]
struct Target {
    /// The config file (TOML); without it, the embedded demo.
    #[arg(long, env = "CROSSGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Listen here instead of the config's `listen` (e.g. 0.0.0.0:8080 to serve every interface); an
    /// empty value keeps the config's.
    #[arg(long, env = "CROSSGATE_LISTEN", value_parser = listen_override)]
    listen: Option<ListenOverride>,
    /// Serve the admin listener (the audit page and metrics) here instead of the config's `[admin]
    /// listen`; an empty value keeps the config's. An address other than loopback needs `[admin] token`.
    #[arg(long, env = "CROSSGATE_ADMIN_LISTEN", value_parser = listen_override)]
    admin_listen: Option<ListenOverride>,
    /// The name this gateway's audit records carry in a shared trail, instead of `[audit] replica` (so
    /// that replicas can share one config file).
    #[arg(long, env = "CROSSGATE_REPLICA")]
    replica: Option<String>,
}

impl Target {
    fn load(&self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(p) => Config::load(p).map_err(|e| e.to_string())?,
            None => Config::demo(),
        };
        if let Some(ListenOverride(Some(listen))) = self.listen {
            config.listen = listen;
        }
        if let Some(replica) = self.replica.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            config.audit.replica = replica.to_owned();
        }
        if let Some(ListenOverride(Some(listen))) = self.admin_listen {
            let token = config.admin.take().and_then(|a| a.token);
            if !listen.ip().is_loopback() && token.is_none() {
                return Err(format!(
                    "--admin-listen {listen} serves the audit trail beyond this machine; set [admin] token in the \
                     config, or listen on 127.0.0.1"
                ));
            }
            config.admin = Some(crossgate::config::AdminConfig { listen, token });
        }
        Ok(config)
    }
}

/// A `--listen` value: an address, or nothing (an empty `CROSSGATE_LISTEN` keeps the config's).
#[derive(Clone, Copy)]
struct ListenOverride(Option<std::net::SocketAddr>);

fn listen_override(text: &str) -> Result<ListenOverride, String> {
    if text.trim().is_empty() {
        return Ok(ListenOverride(None));
    }
    let addr = text.trim().parse().map_err(|_| format!("`{text}` is not an address; write it like 0.0.0.0:8080"))?;
    Ok(ListenOverride(Some(addr)))
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
        Command::Serve(target) => runtime().and_then(|rt| rt.block_on(serve(&target))),
        Command::Health { target, timeout_ms } => runtime().and_then(|rt| rt.block_on(health(&target, timeout_ms))),
        Command::Audit(command) => audit(command),
        Command::Keys(command) => runtime().and_then(|rt| rt.block_on(keys(command))),
        Command::Shadow(ShadowCommand::Report { config, since }) => shadow_report(&config, &since),
        Command::Sim { listen, seed } => runtime().and_then(|rt| rt.block_on(sim(listen, seed))),
        Command::Coverage { config } => coverage(config.as_deref()).map(|text| print!("{text}")),
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

fn shadow_report(config: &Configured, since: &str) -> Result<(), String> {
    let now = crossgate::clock::Clock::now_ms(&SystemClock);
    let mut filter = crossgate::audit::query::Filter { limit: usize::MAX, ..Default::default() };
    filter.set("since", since, now).map_err(|e| format!("--{e}"))?;
    filter.set("phase", "completed", now)?;
    let records = config.trail()?.query(&filter)?;
    print!("{}", crossgate::shadow::report(&records));
    Ok(())
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    use crossgate::replicate::{self, Replicator};
    let (KeysCommand::Sync(configured) | KeysCommand::Check(configured)) = &command;
    let config = match &configured.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::demo(),
    };
    let clock: Arc<dyn crossgate::clock::Clock> = Arc::new(SystemClock);
    let maps = Arc::new(app::mappings(&config)?);
    let (upstreams, _simulator) = app::upstreams(&config, &maps, &clock, None).await?;
    let book = app::key_book(&config)?;
    let r = Replicator {
        book: &book,
        upstreams: &upstreams,
        maps: &maps,
        clock: clock.as_ref(),
        deadline: None,
        audit: None,
    };
    match command {
        KeysCommand::Sync(_) => {
            let done = replicate::sync(&r).await;
            let failed = done.iter().filter(|(_, _, r)| r.is_err()).count();
            for (key, provider, result) in &done {
                match result {
                    Ok(name) => println!("{key}: on {provider} as {name}"),
                    Err(e) => println!("{key}: not on {provider}: {e}"),
                }
            }
            if done.is_empty() {
                println!("every replicating key is on every provider");
            }
            if failed > 0 { Err(format!("{failed} key(s) could not be replicated")) } else { Ok(()) }
        }
        KeysCommand::Check(_) => {
            let drift = replicate::check(&r).await;
            for d in &drift {
                println!("{d}");
            }
            if drift.is_empty() {
                println!("no drift: every key is where the table says, with the same public key");
                Ok(())
            } else {
                Err(format!("{} drift(s) found", drift.len()))
            }
        }
    }
}

fn coverage(config: Option<&std::path::Path>) -> Result<String, String> {
    let Some(path) = config else { return crossgate::coverage::render_default() };
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let policies: Vec<_> = config.upstreams.values().map(|u| (u.provider, u.policy)).collect();
    crossgate::coverage::render_with(&policies)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn serve(target: &Target) -> Result<(), String> {
    let demo = target.config.is_none();
    let config = target.load()?;
    let spec = &config.audit.store;
    let audit: Arc<dyn AuditSink> = store::open(spec, config.audit.options, config.audit.sqlite, &config.audit.replica)
        .map_err(|e| match spec.path() {
            Some(path) => audit_open_error(path, &e),
            None => format!("cannot open the audit store: {e}"),
        })?;
    let tls = config.tls.is_some();
    let started = app::start(config, audit, Arc::new(SystemClock)).await?;
    let addr = started.gateway.addr;
    if demo {
        print_demo(addr);
    }
    let scheme = if tls { "https" } else { "http" };
    if let Some(admin) = &started.admin {
        let at = crossgate::health::target(admin.addr);
        println!("audit trail: {scheme}://{at}/audit    metrics: {scheme}://{at}/metrics");
    }
    println!("listening on {scheme}://{addr}");
    tokio::select! {
        () = server::shutdown_signal() => {}
    }
    started.gateway.stop().await;
    if let Some(admin) = started.admin {
        admin.stop().await;
    }
    if let Some((sim, _)) = started.simulator {
        sim.stop().await;
    }
    Ok(())
}

async fn health(target: &Target, timeout_ms: u64) -> Result<(), String> {
    let config = target.load()?;
    let cert = config.tls.as_ref().map(|(cert, _)| cert.as_path());
    crossgate::health::check(config.listen, cert, std::time::Duration::from_millis(timeout_ms)).await?;
    println!("healthy");
    Ok(())
}

fn audit(command: AuditCommand) -> Result<(), String> {
    use crossgate::audit::query::{TAIL_WIDTHS, header, row, table};
    use std::io::Write;
    let now_ms = || crossgate::clock::Clock::now_ms(&SystemClock);
    let json_line = |e: &crossgate::audit::AuditEntry| serde_json::to_string(e).unwrap_or_default();
    match command {
        AuditCommand::Verify(config) => match config.trail()?.verify()? {
            Ok(checked) => {
                println!("{checked}");
                Ok(())
            }
            Err(broken) => Err(format!("the audit trail does not verify: {broken}")),
        },
        AuditCommand::Query { config, filter, json } => {
            let filter = filter.filter(now_ms())?;
            let found = config.trail()?.query(&filter)?;
            if json {
                for e in &found {
                    println!("{}", json_line(e));
                }
            } else {
                print!("{}", table(&found));
            }
            Ok(())
        }
        AuditCommand::Tail { config, json, interval_ms } => {
            let mut trail = config.trail()?;
            let mut out = std::io::stdout();
            if !json {
                println!("{}", header(&TAIL_WIDTHS));
            }
            loop {
                for e in trail.follow()? {
                    let text = if json { json_line(&e) } else { row(&e, &TAIL_WIDTHS) };
                    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                        return Ok(()); // the reader went away
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(interval_ms.max(10)));
            }
        }
    }
}

/// Why the audit log cannot be opened, with the fix when it is a matter of ownership.
fn audit_open_error(path: &std::path::Path, e: &std::io::Error) -> String {
    let mut text = format!("cannot open the audit log {}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let uid = own_uid().map_or_else(|| "this process's user".to_owned(), |uid| uid.to_string());
        text.push_str(&format!(
            "; crossgate runs as uid {uid}, which must be able to write {folder}: `chown {uid} {folder}` \
             (the container image runs as uid 10001, with its data volume at /var/lib/crossgate)",
            folder = folder.display()
        ));
    }
    text
}

/// This process's user id, where the platform tells it.
fn own_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

async fn sim(listen: std::net::SocketAddr, seed: Option<PathBuf>) -> Result<(), String> {
    let running = crossgate::sim::run_standalone(listen, seed.as_deref(), Arc::new(SystemClock)).await?;
    println!("listening on http://{}", running.addr);
    server::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

fn print_demo(addr: std::net::SocketAddr) {
    println!("crossgate demo: every upstream is the built-in simulator; audit records go to audit.db");
    println!("  (read them with `crossgate audit query`, check them with `crossgate audit verify`)");
    println!("  caller SecretId / AccessKeyId: {}", config::DEMO_CALLER_ID);
    println!("  caller SecretKey / AccessKeySecret: {}", config::DEMO_CALLER_SECRET);
    println!("  a ready-to-paste request (legacy API 2.0, HmacSHA256, valid for 5 minutes, once):");
    println!("{}", crossgate::demo::example_curl(crossgate::health::target(addr)));
}
