//! `personio-sync bench`: the load tool shipped with the service. It starts the service
//! and both simulators on loopback and measures, in one bounded run:
//!
//! - [`ingest`]: webhook ingest (events/s, p50/p99, durably stored) beside a bare axum
//!   endpoint in the same process, and the ratio; the service in process, at any base
//!   URL, or as N nodes behind nginx;
//! - [`e2e`]: webhook → change visible in the Learn Amp simulator, p50/p99, at a
//!   simulated API latency;
//! - [`full_sync`]: full syncs of N employees beside the lower bound the rate limits,
//!   latency and concurrency imply, and the ratio;
//! - [`tenants`]: resident memory and start-up time of the real binary with idle tenants;
//! - [`faulty`]: calm tenants' webhook latency while another tenant crashes repeatedly,
//!   beside runs without it, and the ratio.
//!
//! Every figure comes with a baseline measured in the same run, because the machine is
//! shared and noisy. `--json PATH` writes everything as JSON.

pub mod e2e;
pub mod faulty;
pub mod full_sync;
pub mod harness;
pub mod ingest;
pub mod rawhttp;
pub mod stats;
pub mod tenants;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// Which measurements to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Webhook ingest against a bare endpoint.
    Ingest,
    /// Webhook → Learn Amp latency.
    E2e,
    /// Full syncs against their lower bound.
    FullSync,
    /// Memory and start-up with idle tenants.
    Tenants,
    /// Calm tenants' latency while one tenant crashes repeatedly.
    FaultyTenant,
    /// Everything.
    All,
}

/// The storage backend of the service measured (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A temporary sled directory (the default).
    Sled,
    /// A fresh database per run on the PostgreSQL server at `PERSONIO_SYNC_TEST_PG_URL`
    /// (an admin URL, e.g. from `scripts/test-postgres.sh start`), dropped afterwards.
    Postgres,
}

impl Backend {
    /// `sled` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A fresh PostgreSQL database for one run, or an error naming what is missing.
pub async fn fresh_database(
    run: &str,
) -> anyhow::Result<personio_sync_testkit::postgres::TestDatabase> {
    let variable = personio_sync_testkit::postgres::URL_ENV;
    anyhow::ensure!(
        std::env::var_os(variable).is_some(),
        "--backend postgres needs an admin URL of a PostgreSQL server in {variable} (eval \"$(scripts/test-postgres.sh start)\")"
    );
    personio_sync_testkit::postgres::fresh_database(run)
        .await
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL database for {run}"))
}

/// Options of `personio-sync bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Company sizes of the full-sync runs (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub employees: Vec<usize>,
    /// Simulated latency of every API call, milliseconds (end-to-end and full sync).
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Learn Amp writes in flight during a full sync (`sync.concurrency`).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Learn Amp rate limit in requests per second during a full sync (none if absent).
    #[arg(long)]
    pub rate_limit: Option<f64>,
    /// Idle tenant counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub tenants: Vec<usize>,
    /// Measured seconds per ingest round and target.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
    /// Ingest rounds (each: bare endpoint, then the service).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent ingest connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Storage backends to measure, one after another in the same run (comma-separated):
    /// ingest in process, end to end and idle tenants run once per backend.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sled")]
    pub backend: Vec<Backend>,
    /// Ingest: post to the running service (or load balancer) at this base URL instead
    /// of one started in process; the admin token is read from
    /// `PERSONIO_SYNC_ADMIN_TOKEN`.
    #[arg(long, conflicts_with = "nodes")]
    pub target: Option<String>,
    /// Ingest: start this many `personio-sync serve` nodes (the binary beside this one)
    /// behind nginx and post through nginx. Idle tenants on PostgreSQL: start this many
    /// nodes on the one database (sled always runs one node).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Ingest with `--nodes`: a TOML file merged into every node's config (e.g. a shared
    /// `[storage]` backend); idle tenants on PostgreSQL: merged into every node's config
    /// (e.g. `[cluster]`).
    #[arg(long, requires = "nodes")]
    pub node_config: Option<PathBuf>,
    /// End-to-end events (one after another); in faulty-tenant, events per baseline phase.
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// Calm tenants beside the faulty one (faulty-tenant).
    #[arg(long, default_value_t = 10)]
    pub calm_tenants: usize,
    /// Panics injected into the faulty tenant (faulty-tenant).
    #[arg(long, default_value_t = 20)]
    pub crashes: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The machine the figures came from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`, MiB.
    pub memory_mib: u64,
    /// `personio-sync` version.
    pub version: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_string());
        let memory_kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_mib: memory_kib / 1024,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The machine.
    pub machine: Machine,
    /// Ingest, if run: one entry per backend (in process) or one (out of process).
    pub ingest: Vec<ingest::IngestFigures>,
    /// End to end, if run: one entry per backend.
    pub e2e: Vec<e2e::E2eFigures>,
    /// Full syncs, if run.
    pub full_sync: Vec<full_sync::FullSyncFigures>,
    /// Idle tenants, if run: one entry per backend.
    pub tenants: Vec<tenants::TenantsFigures>,
    /// One faulty tenant among calm ones, if run.
    pub faulty_tenant: Option<faulty::FaultyFigures>,
}

fn wants(args: &BenchArgs, scenario: Scenario) -> bool {
    args.scenario == Scenario::All || args.scenario == scenario
}

/// The service the ingest scenario measures, from `--target`, `--nodes` and
/// `--node-config`.
fn ingest_target(args: &BenchArgs) -> anyhow::Result<ingest::IngestTarget> {
    if let Some(base) = &args.target {
        let admin_token = std::env::var("PERSONIO_SYNC_ADMIN_TOKEN").map_err(|_| {
            anyhow::anyhow!("--target needs the admin token in PERSONIO_SYNC_ADMIN_TOKEN")
        })?;
        return Ok(ingest::IngestTarget::Url {
            base: base.trim_end_matches('/').to_string(),
            admin_token,
        });
    }
    let Some(nodes) = args.nodes else {
        return Ok(ingest::IngestTarget::InProcess);
    };
    let node_config = match &args.node_config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| anyhow::anyhow!("--node-config {}: {error}", path.display()))?,
        ),
        None => None,
    };
    Ok(ingest::IngestTarget::Cluster {
        nodes,
        node_configs: node_config.into_iter().collect(),
    })
}

/// Runs the selected scenarios, prints a table after each, and writes the JSON.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut report = BenchReport {
        machine: Machine::detect(),
        ingest: Vec::new(),
        e2e: Vec::new(),
        full_sync: Vec::new(),
        tenants: Vec::new(),
        faulty_tenant: None,
    };
    println!("{}", render_machine(&report.machine));
    if wants(&args, Scenario::Ingest) {
        let target = ingest_target(&args)?;
        // At a base URL the running service's config decides the backend: one run.
        let backends = if matches!(target, ingest::IngestTarget::Url { .. }) {
            vec![Backend::Sled]
        } else {
            args.backend.clone()
        };
        for backend in backends {
            eprintln!(
                "bench: ingest ({} connections, {})…",
                args.connections,
                backend.name()
            );
            let mut target = target.clone();
            // Nodes on PostgreSQL: a fresh database for the run, before the node config.
            let shared = match (&mut target, backend) {
                (ingest::IngestTarget::Cluster { node_configs, .. }, Backend::Postgres) => {
                    let shared = SharedPostgres::create("bench_ingest").await?;
                    node_configs.insert(0, shared.node_toml());
                    Some(shared)
                }
                _ => None,
            };
            let figures = ingest::run(ingest::IngestConfig {
                connections: args.connections,
                duration: Duration::from_secs(args.duration_secs.max(1)),
                rounds: args.rounds,
                target,
                backend,
            })
            .await?;
            drop(shared);
            println!("{}", render_ingest(&figures));
            report.ingest.push(figures);
        }
        println!("{}", render_ingest_backends(&report.ingest));
    }
    if wants(&args, Scenario::E2e) {
        for &backend in &args.backend {
            eprintln!(
                "bench: end to end ({} events, {})…",
                args.events,
                backend.name()
            );
            let figures = e2e::run(e2e::E2eConfig {
                events: args.events,
                latency: Duration::from_millis(args.latency_ms),
                backend,
            })
            .await?;
            println!("{}", render_e2e(&figures));
            report.e2e.push(figures);
        }
        println!("{}", render_e2e_backends(&report.e2e));
    }
    if wants(&args, Scenario::FullSync) {
        for &employees in &args.employees {
            eprintln!("bench: full sync of {employees} employees…");
            let figures = full_sync::run(full_sync::FullSyncConfig {
                employees,
                latency: Duration::from_millis(args.latency_ms),
                concurrency: args.concurrency,
                learnamp_rate: args.rate_limit,
            })
            .await?;
            println!("{}", render_full_sync(&figures));
            report.full_sync.push(figures);
        }
    }
    if wants(&args, Scenario::Tenants) {
        let node_config =
            match &args.node_config {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                    anyhow::anyhow!("--node-config {}: {error}", path.display())
                })?),
                None => None,
            };
        for &backend in &args.backend {
            eprintln!(
                "bench: idle tenants {:?} ({})…",
                args.tenants,
                backend.name()
            );
            let figures = tenants::run(&tenants::TenantsConfig {
                counts: args.tenants.clone(),
                backend,
                nodes: args.nodes.unwrap_or(1),
                node_config: node_config.clone(),
            })
            .await?;
            println!("{}", render_tenants(&figures));
            report.tenants.push(figures);
        }
    }
    if wants(&args, Scenario::FaultyTenant) {
        eprintln!(
            "bench: faulty tenant ({} crashes, {} calm tenants)…",
            args.crashes, args.calm_tenants
        );
        let figures = faulty::run(faulty::FaultyConfig {
            calm_tenants: args.calm_tenants,
            crashes: args.crashes,
            events: args.events,
            latency: Duration::from_millis(args.latency_ms),
        })
        .await?;
        println!("{}", render_faulty(&figures));
        report.faulty_tenant = Some(figures);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("bench: figures written to {}", path.display());
    }
    Ok(())
}

/// The machine, as a heading.
pub fn render_machine(machine: &Machine) -> String {
    format!(
        "personio-sync {} bench on {} CPUs ({}), {} MiB, {}",
        machine.version, machine.cpus, machine.cpu_model, machine.memory_mib, machine.started_at
    )
}

/// The ingest table.
pub fn render_ingest(figures: &ingest::IngestFigures) -> String {
    let mut out = format!(
        "\nwebhook ingest into {} ({}), {} connections (target: service ≥ 0.5 × bare)\nround  bare req/s  p50 ms  p99 ms | service ev/s  p50 ms  p99 ms  errors | ratio\n",
        figures.target, figures.backend, figures.connections
    );
    for (index, round) in figures.rounds.iter().enumerate() {
        out.push_str(&format!(
            "{:>5}  {:>10.0}  {:>6.2}  {:>6.2} | {:>12.0}  {:>6.2}  {:>6.2}  {:>6} | {:.2}\n",
            index + 1,
            round.bare.per_second,
            round.bare.latency.p50_ms,
            round.bare.latency.p99_ms,
            round.service.per_second,
            round.service.latency.p50_ms,
            round.service.latency.p99_ms,
            round.service.errors,
            round.ratio
        ));
    }
    out.push_str(&format!(
        "median ratio {:.2}; {} events stored; drained {:.1} s after the load ({} left)\n",
        figures.ratio, figures.events_stored, figures.drain_seconds, figures.left_pending,
    ));
    out.push_str(&match (figures.group_commits, figures.events_per_commit) {
        (Some(commits), Some(per_commit)) => {
            format!("group commits under load: {commits} (≈ {per_commit:.0} events each)\n")
        }
        _ => "group commits under load: not counted (service out of process)\n".to_string(),
    });
    out
}

/// Ingest of every backend beside the first one's (empty for one backend).
pub fn render_ingest_backends(runs: &[ingest::IngestFigures]) -> String {
    let Some(first) = runs.first().filter(|_| runs.len() > 1) else {
        return String::new();
    };
    let median_rate = |figures: &ingest::IngestFigures| {
        let rates: Vec<f64> = figures
            .rounds
            .iter()
            .map(|round| round.service.per_second)
            .collect();
        stats::median(&rates)
    };
    let mut out = format!(
        "ingest by backend (against {}, same run)\nbackend   median ev/s  median ratio to bare  ev/s ÷ {}\n",
        first.backend, first.backend
    );
    for figures in runs {
        out.push_str(&format!(
            "{:<11}  {:>11.0}  {:>20.2}  {:>8.2}\n",
            figures.backend,
            median_rate(figures),
            figures.ratio,
            stats::ratio(median_rate(figures), median_rate(first))
        ));
    }
    out
}

/// End to end of every backend beside the first one's (empty for one backend).
pub fn render_e2e_backends(runs: &[e2e::E2eFigures]) -> String {
    let Some(first) = runs.first().filter(|_| runs.len() > 1) else {
        return String::new();
    };
    let mut out = format!(
        "end to end by backend (against {}, same run)\nbackend   p50 ms  p99 ms  p50 ÷ {}  p99 ÷ {}\n",
        first.backend, first.backend, first.backend
    );
    for figures in runs {
        out.push_str(&format!(
            "{:<8}  {:>6.1}  {:>6.1}  {:>8.2}  {:>8.2}\n",
            figures.backend.name(),
            figures.latency.p50_ms,
            figures.latency.p99_ms,
            stats::ratio(figures.latency.p50_ms, first.latency.p50_ms),
            stats::ratio(figures.latency.p99_ms, first.latency.p99_ms)
        ));
    }
    out
}

/// The end-to-end table.
pub fn render_e2e(figures: &e2e::E2eFigures) -> String {
    format!(
        "\nend to end on {} at {} ms API latency (target: p99 < 250 ms)\nevents {}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  timeouts {}  (floor of 2 API calls: {:.0} ms)\n",
        figures.backend,
        figures.latency_ms,
        figures.latency.count,
        figures.latency.p50_ms,
        figures.latency.p99_ms,
        figures.latency.max_ms,
        figures.timeouts,
        figures.floor_ms
    )
}

/// One full-sync table.
pub fn render_full_sync(figures: &full_sync::FullSyncFigures) -> String {
    let limits = &figures.limits;
    let calls = &figures.calls;
    let bound = &figures.bound;
    format!(
        "\nfull sync of {} employees: latency {} ms, concurrency {}, Learn Amp rate {} (target: ≤ 1.25 × bound)\n\
         calls: {} list pages, {} pictures, {} Personio v1 in all; {} Learn Amp writes of {} calls; 429s: Personio {}, Learn Amp {}\n\
         bound: list {:.1} s, Personio v1 {:.1} s, Learn Amp {:.1} s → {:.1} s (list-then-apply: {:.1} s)\n\
         measured {:.1} s → ratio {:.2} (vs list-then-apply {:.2}); created {}, failed {}\n",
        figures.employees,
        limits.latency_ms,
        limits.concurrency,
        limits
            .learnamp_rate
            .map_or_else(|| "unlimited".to_string(), |rate| format!("{rate}/s")),
        calls.list_pages,
        calls.pictures,
        calls.personio_v1,
        calls.learnamp_writes,
        calls.learnamp_calls,
        figures.personio_429,
        figures.learnamp_429,
        bound.list_s,
        bound.personio_v1_s,
        bound.learnamp_s,
        bound.bound_s,
        bound.phased_s,
        figures.seconds,
        figures.ratio,
        figures.phased_ratio,
        figures.created,
        figures.failed
    )
}

/// The idle-tenant table.
pub fn render_tenants(figures: &tenants::TenantsFigures) -> String {
    let mut out = format!(
        "\nidle tenants on {}, {} node{} (targets: ≤ 100 KiB RSS per tenant; 10,000 live in < 10 s)\ntenants  healthz s  all live s  RSS MiB  peak MiB  KiB/tenant  per node: live / RSS MiB\n",
        figures.backend.name(),
        figures.nodes,
        if figures.nodes == 1 { "" } else { "s" }
    );
    let row = |start: &tenants::StartFigures, per_tenant: Option<f64>| {
        let nodes: Vec<String> = start
            .nodes
            .iter()
            .map(|node| format!("{} / {:.1}", node.live, node.rss_kib as f64 / 1024.0))
            .collect();
        format!(
            "{:>7}  {:>9.2}  {:>10.2}  {:>7.1}  {:>8.1}  {:>10}  {}\n",
            start.tenants,
            start.healthz_seconds,
            start.all_live_seconds,
            start.rss_kib as f64 / 1024.0,
            start.peak_rss_kib as f64 / 1024.0,
            per_tenant.map_or_else(|| "-".to_string(), |value| format!("{value:.1}")),
            nodes.join(", ")
        )
    };
    out.push_str(&row(&figures.baseline, None));
    for run in &figures.runs {
        out.push_str(&row(&run.start, Some(run.kib_per_tenant)));
    }
    out
}

/// The faulty-tenant table.
pub fn render_faulty(figures: &faulty::FaultyFigures) -> String {
    let mut out = format!(
        "\none faulty tenant among {} calm ones at {} ms API latency (target: calm p99 ≤ 1.2 × baseline)\n\
         phase            events  samples  seconds  p50 ms  p99 ms  max ms  timeouts  Personio 429s\n",
        figures.calm_tenants, figures.latency_ms
    );
    let row = |name: &str, phase: &faulty::PhaseFigures| {
        format!(
            "{:<15}  {:>6}  {:>7}  {:>7.1}  {:>6.1}  {:>6.1}  {:>6.1}  {:>8}  {:>13}\n",
            name,
            phase.events,
            phase.latency.count,
            phase.seconds,
            phase.latency.p50_ms,
            phase.latency.p99_ms,
            phase.latency.max_ms,
            phase.timeouts,
            phase.personio_429
        )
    };
    out.push_str(&row("baseline before", &figures.baseline_before));
    out.push_str(&row("faulty", &figures.faulty));
    out.push_str(&row("baseline after", &figures.baseline_after));
    let pooled = &figures.baseline;
    out.push_str(&format!(
        "{:<15}  {:>6}  {:>7}  {:>7}  {:>6.1}  {:>6.1}  {:>6.1}  {:>8}  {:>13}\n",
        "baseline pooled",
        figures.baseline_before.events + figures.baseline_after.events,
        pooled.count,
        "-",
        pooled.p50_ms,
        pooled.p99_ms,
        pooled.max_ms,
        figures.baseline_before.timeouts + figures.baseline_after.timeouts,
        figures.baseline_before.personio_429 + figures.baseline_after.personio_429
    ));
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let timeline = &figures.crash_timeline;
    let taken: f64 = timeline.iter().map(|crash| crash.taken_s).sum();
    let back: f64 = timeline.iter().map(|crash| crash.back_s).sum();
    let slowest_take = timeline
        .iter()
        .map(|crash| crash.taken_s)
        .fold(0.0, f64::max);
    out.push_str(&format!(
        "crash → taken by the actor: {taken:.1} s in all (slowest {slowest_take:.1} s); crash → live again: {back:.1} s in all\n"
    ));
    out.push_str(&format!(
        "faulty tenant: {} crashes, {} automatic restarts, {} times failed and revived; caught up afterwards: {}\n\
         p99 faulty / baseline: {:.2}; timeouts {}; calm tenants all live with 0 restarts: {} (restarts {})\n",
        figures.crashes,
        figures.restarts,
        figures.failed_revived,
        yes_no(figures.faulty_caught_up),
        figures.ratio,
        figures.timeouts,
        yes_no(figures.calm_all_live),
        figures.calm_restarts
    ));
    out
}

/// A fresh PostgreSQL database and a secret key file for nodes started out of process:
/// every node gets [`SharedPostgres::node_toml`], so all of them open the one database
/// with the one key (specs are sealed with it). Dropped after the nodes: the database
/// goes (best effort).
pub struct SharedPostgres {
    /// The database.
    pub database: personio_sync_testkit::postgres::TestDatabase,
    /// The key file, in a temporary directory of its own.
    pub key_file: PathBuf,
    _key_dir: tempfile::TempDir,
}

impl SharedPostgres {
    /// Creates the database (see [`fresh_database`]) and the key file.
    pub async fn create(run: &str) -> anyhow::Result<Self> {
        let database = fresh_database(run).await?;
        let key_dir = tempfile::tempdir()?;
        let key_file = key_dir.path().join("secret.key");
        personio_sync::store::crypto::SecretKey::create_file(&key_file)?;
        Ok(Self {
            database,
            key_file,
            _key_dir: key_dir,
        })
    }

    /// The `[storage]` section selecting this database and key.
    pub fn node_toml(&self) -> String {
        format!(
            "[storage]\nbackend = \"postgres\"\npostgres_url = {:?}\nkey_file = {:?}\n",
            self.database.url(),
            self.key_file.display().to_string()
        )
    }
}
