//! The command line: `serve`, `demo`, `simulate personio|learnamp`, and `tenants …`
//! (the admin API's client: tables in [`tables`], `sync --wait` in [`wait`]).

pub mod tables;
pub mod wait;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::admin_client::{AdminClient, describe_failure};
use crate::app::{Application, Options, shutdown_signal};
use crate::config::Config;
use crate::domain::Secret;
use crate::store::Store;
use crate::telemetry;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// personio-sync: keeps Learn Amp users in step with Personio, for many tenants.
#[derive(Debug, Parser)]
#[command(name = "personio-sync", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhook front door, admin API, and every stored tenant.
    Serve {
        /// Configuration file (default `./config.toml`; a missing default file means
        /// every key at its default).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Try it: simulators, the service and a demo tenant on loopback.
    Demo {
        /// Employees in the simulated Personio company.
        #[arg(long, default_value_t = 120)]
        employees: usize,
        /// Address of the service (port 0 = any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Write every tenant's spec, records and history as JSON, from the data dir of a
    /// stopped service.
    Export {
        /// Configuration file (as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output file (default: stdout); written to a new file readable by its owner
        /// only, then moved into place.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Include the client secrets and the webhook key and token.
        #[arg(long)]
        with_secrets: bool,
        /// Replace an existing output file (or symlink: the link is replaced, its target
        /// is never written).
        #[arg(long)]
        force: bool,
    },
    /// Restore an export into an empty data dir (service stopped).
    Import {
        /// Configuration file (as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The export document.
        #[arg(long)]
        input: PathBuf,
        /// Accept an export made without secrets: client secrets are left empty (PATCH
        /// them afterwards) and new webhook secrets are generated.
        #[arg(long)]
        allow_missing_secrets: bool,
    },
    /// Operate tenants through the admin API of a running service.
    Tenants {
        /// Where the service is and which token to use.
        #[command(flatten)]
        target: AdminTarget,
        /// What to do.
        #[command(subcommand)]
        action: TenantsAction,
    },
    /// Run one simulator as a standalone server.
    Simulate {
        /// Which API.
        system: System,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Employees to generate (Personio only).
        #[arg(long, default_value_t = 50)]
        employees: usize,
        /// Generator seed (Personio only).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Accepted client id.
        #[arg(long, default_value = "sim-client")]
        client_id: String,
        /// Accepted client secret.
        #[arg(long, default_value = "sim-secret")]
        client_secret: String,
        /// Learn Amp only: no assumed contract (invitation and avatar routes answer 404,
        /// `leaveDate` is ignored and never shown).
        #[arg(long)]
        documented_only: bool,
        /// Learn Amp only: credentials provisioned for specific scopes (a token request
        /// without `scope` fails with `invalid_scope`; every route needs its scope).
        #[arg(long)]
        scoped_credentials: bool,
        /// Most rows one v1 employee page serves, whatever `limit` asks (Personio only;
        /// default: as many as asked).
        #[arg(long)]
        page_cap: Option<usize>,
    },
}

/// A simulated system.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum System {
    /// The Personio API.
    Personio,
    /// The Learn Amp API.
    Learnamp,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Demo { employees, listen } => crate::demo::run(employees, listen).await,
        Command::Export {
            config,
            output,
            with_secrets,
            force,
        } => export_command(config, output, with_secrets, force).await,
        Command::Import {
            config,
            input,
            allow_missing_secrets,
        } => import_command(config, input, allow_missing_secrets).await,
        Command::Tenants { target, action } => tenants_command(target, action).await,
        Command::Simulate {
            system,
            listen,
            employees,
            seed,
            client_id,
            client_secret,
            documented_only,
            scoped_credentials,
            page_cap,
        } => {
            let personio = PersonioSimConfig {
                employees,
                seed,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                page_cap,
                ..PersonioSimConfig::default()
            };
            let strict = LearnAmpStrictness {
                documented_only,
                scoped_credentials,
            };
            simulate(system, listen, personio, client_id, client_secret, strict).await
        }
    }
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let given = config_path.is_some();
    let path = config_path.unwrap_or_else(|| PathBuf::from("./config.toml"));
    let config = Config::load(&path, given)?;
    telemetry::init(config.log_format);
    let token = std::env::var(&config.admin.token_env)
        .ok()
        .filter(|token| !token.is_empty())
        .with_context(|| {
            format!(
                "the admin token variable {} is not set; set it to a long random string",
                config.admin.token_env
            )
        })?;
    crate::app::check_admin_token(&Secret::new(token.clone()))?;
    create_private_dir(&config.storage.data_dir).with_context(|| {
        format!(
            "cannot create data_dir {}",
            config.storage.data_dir.display()
        )
    })?;
    crate::export::refuse_unfinished_import(&config.storage.data_dir)?;
    let store = open_store(&config).await?;
    let app = Application::build(&config, store, Secret::new(token), Options::default()).await?;
    tracing::info!(addr = %app.local_addr(), "personio-sync serving");
    app.run(shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The strict options of the Learn Amp simulator.
#[derive(Debug, Clone, Copy)]
struct LearnAmpStrictness {
    documented_only: bool,
    scoped_credentials: bool,
}

async fn simulate(
    system: System,
    listen: String,
    personio: PersonioSimConfig,
    client_id: String,
    client_secret: String,
    strict: LearnAmpStrictness,
) -> anyhow::Result<()> {
    if matches!(system, System::Personio) && (strict.documented_only || strict.scoped_credentials) {
        anyhow::bail!(
            "--documented-only and --scoped-credentials apply to `simulate learnamp` only"
        );
    }
    telemetry::init(crate::config::LogFormat::Text);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    match system {
        System::Personio => {
            let sim = PersonioSim::start_on(listener, personio).await?;
            // Line 1: the base URL (also the OpenID Connect issuer); line 2: the test
            // administrator's login for the simulated provider's sign-in page.
            let (email, password) = sim.oidc_admin();
            println!("{}", sim.base_url);
            println!("admin: {email} {password}");
            shutdown_signal().await;
        }
        System::Learnamp => {
            let config = LearnAmpSimConfig {
                client_id,
                client_secret,
                documented_only: strict.documented_only,
                scoped_credentials: strict.scoped_credentials,
                ..LearnAmpSimConfig::default()
            };
            let sim = LearnAmpSim::start_on(listener, config).await?;
            println!("{}", sim.base_url);
            shutdown_signal().await;
        }
    }
    Ok(())
}

/// The admin API a `tenants` command talks to.
#[derive(Debug, clap::Args)]
pub struct AdminTarget {
    /// Base URL of the service (default: from `server.listen` of the config).
    #[arg(long, global = true, env = "PERSONIO_SYNC_URL")]
    pub url: Option<String>,
    /// Configuration file, for `server.listen` and `admin.token_env`.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// `personio-sync tenants …`.
#[derive(Debug, Subcommand)]
pub enum TenantsAction {
    /// Every tenant: state, users, last sync, progress, last error.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One tenant's view.
    Show {
        /// The tenant id.
        id: String,
    },
    /// Start a full reconciliation.
    Sync {
        /// The tenant id.
        id: String,
        /// Show the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Lift the mass-deactivation guard once.
        #[arg(long)]
        confirm: bool,
        /// Follow the sync (a progress bar on a terminal) and end with its counts.
        #[arg(long, conflicts_with = "dry_run")]
        wait: bool,
        /// With `--wait`: give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
        /// With `--wait`: print the final tenant view's JSON instead of the counts.
        #[arg(long)]
        json: bool,
    },
    /// Restart a failed or running tenant.
    Restart {
        /// The tenant id.
        id: String,
    },
    /// A tenant's people: Personio and Learn Amp status, invitation, last change.
    People {
        /// The tenant id.
        id: String,
        /// Part of a name or email (any case), or an exact Personio id.
        query: Option<String>,
        /// Continue after this Personio id (the `more:` line of the previous page).
        #[arg(long)]
        cursor: Option<String>,
        /// People per page (1–500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One person's writes to Learn Amp, newest first, with fields before → after.
    History {
        /// The tenant id.
        id: String,
        /// The Personio employee id.
        personio_id: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make an invitation link for the customer's administrator to connect Personio;
    /// prints the link.
    Invite {
        /// The tenant id.
        id: String,
        /// Whom the link is for.
        #[arg(long)]
        email: Option<String>,
        /// Days the link stays valid (1-30, default 7).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke every open invitation link of a tenant.
    Uninvite {
        /// The tenant id.
        id: String,
    },
}

/// Creates `dir` and its missing parents readable by their owner only (0700 on Unix);
/// an existing directory is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Loads the configuration as `serve` does (`./config.toml` by default).
fn load_config(config_path: Option<PathBuf>) -> anyhow::Result<Config> {
    let given = config_path.is_some();
    let path = config_path.unwrap_or_else(|| PathBuf::from("./config.toml"));
    Ok(Config::load(&path, given)?)
}

/// Opens the database of `storage.data_dir` (or PostgreSQL at `storage.postgres_url`)
/// with the secret key from `PERSONIO_SYNC_SECRET_KEY`, else `storage.key_file`, else
/// `<data_dir>/secret.key`.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let source = crate::store::crypto::KeySource::from_env(&config.storage.key_file)?;
    if config.storage.backend == crate::config::StorageBackend::Postgres {
        let options = crate::store::PgOptions {
            url: config.storage.postgres_url.clone(),
            password: config.postgres_password(|name| std::env::var(name).ok()),
            pool: config.storage.postgres_pool,
        };
        return Store::open_postgres(&options, &config.storage.data_dir, source)
            .await
            .context("cannot open the PostgreSQL database of storage.postgres_url");
    }
    Store::open_with(&config.storage.data_dir, config.storage.cache_mb, source)
        .await
        .with_context(|| {
            format!(
                "cannot open the database in storage.data_dir {} (is another personio-sync using it?)",
                config.storage.data_dir.display()
            )
        })
}

async fn export_command(
    config_path: Option<PathBuf>,
    output: Option<PathBuf>,
    with_secrets: bool,
    force: bool,
) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    telemetry::init(config.log_format);
    // On PostgreSQL the data dir holds at most the key file.
    if config.storage.backend == crate::config::StorageBackend::Sled
        && !config.storage.data_dir.is_dir()
    {
        anyhow::bail!(
            "storage.data_dir {} does not exist",
            config.storage.data_dir.display()
        );
    }
    crate::export::refuse_unfinished_import(&config.storage.data_dir)?;
    if let Some(path) = &output
        && !force
        && std::fs::symlink_metadata(path).is_ok()
    {
        anyhow::bail!("{} exists; pass --force to replace it", path.display());
    }
    let store = open_store(&config).await?;
    let document = crate::export::export(&store, with_secrets).await?;
    match output {
        Some(path) => {
            crate::export::write_output_file(&path, force, &document)?;
            eprintln!(
                "exported {} tenants to {}",
                document.tenants.len(),
                path.display()
            );
        }
        None => crate::export::write_document(std::io::stdout().lock(), &document)
            .context("cannot write the export to stdout")?,
    }
    Ok(())
}

async fn import_command(
    config_path: Option<PathBuf>,
    input: PathBuf,
    allow_missing_secrets: bool,
) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    telemetry::init(config.log_format);
    let dir = &config.storage.data_dir;
    crate::export::ensure_empty_data_dir(dir)?;
    let file =
        std::fs::File::open(&input).with_context(|| format!("cannot open {}", input.display()))?;
    let document = crate::export::read_document(file)?;
    let options = crate::export::ImportOptions {
        allow_missing_secrets,
    };
    crate::export::validate_document(&document, options)?;
    create_private_dir(dir).with_context(|| format!("cannot create data_dir {}", dir.display()))?;
    crate::export::begin_import(dir)
        .with_context(|| format!("cannot mark data_dir {} as being imported", dir.display()))?;
    let store = open_store(&config).await?;
    let summary = crate::export::import(&store, &document, options).await?;
    // Closed before the marker goes: the database is complete and durable on disk.
    drop(store);
    crate::export::finish_import(dir)
        .with_context(|| format!("cannot mark the import into {} complete", dir.display()))?;
    println!(
        "imported {} tenants ({} records) into {}",
        summary.tenants,
        summary.records,
        dir.display()
    );
    for id in &summary.need_credentials {
        println!(
            "tenant {id} has no client secrets: PATCH /admin/tenants/{id} with both, then restart it"
        );
    }
    Ok(())
}

/// `http://…` for a listen address (an unspecified address means loopback).
fn url_from_listen(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        }
        Err(_) => format!("http://{listen}"),
    }
}

async fn tenants_command(target: AdminTarget, action: TenantsAction) -> anyhow::Result<()> {
    let config = load_config(target.config)?;
    let base = target
        .url
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| url_from_listen(&config.server.listen));
    let base = base.trim_end_matches('/');
    let token = std::env::var(&config.admin.token_env)
        .ok()
        .filter(|token| !token.is_empty())
        .with_context(|| {
            format!(
                "the admin token variable {} is not set",
                config.admin.token_env
            )
        })?;
    let client = AdminClient::new(base, Secret::new(token));
    let answer = match &action {
        TenantsAction::List { json: false } => {
            print!("{}", tables::tenants(&client.list().await?));
            return Ok(());
        }
        TenantsAction::Sync {
            id,
            confirm,
            wait: true,
            timeout_secs,
            json,
            ..
        } => {
            let timeout = std::time::Duration::from_secs(*timeout_secs);
            let view = wait::sync_and_wait(&client, id, *confirm, timeout).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else if let Some(report) = &view.last_sync {
                println!(
                    "full sync of {id} finished at {}; the tenant is {}",
                    report.finished_at,
                    serde_json::to_value(view.state)?
                        .as_str()
                        .unwrap_or_default()
                );
                print!("{}", tables::sync_counts(report));
            }
            return Ok(());
        }
        TenantsAction::People {
            id,
            query,
            cursor,
            limit,
            json,
        } => {
            let answer = client
                .people(id, query.as_deref(), cursor.as_deref(), Some(*limit))
                .await?;
            if !json {
                let page = serde_json::from_str(&answer.text)
                    .context("the people answer is not a page of people")?;
                print!("{}", tables::people(&page));
                return Ok(());
            }
            answer
        }
        TenantsAction::History {
            id,
            personio_id,
            json,
        } => {
            let answer = client.person(id, personio_id).await?;
            if !json {
                let person = serde_json::from_str(&answer.text)
                    .context("the person answer is not a person with a history")?;
                print!("{}", tables::history(&person));
                return Ok(());
            }
            answer
        }
        _ => {
            let (method, path) = admin_request(&action);
            client
                .send(method, &path, admin_body(&action).as_ref())
                .await?
        }
    };
    let (status, body, text) = (answer.status, answer.body, answer.text);
    if !status.is_success() {
        anyhow::bail!("{}", describe_failure(status, body.as_ref(), &text));
    }
    if let TenantsAction::Invite { .. } = action
        && let Some(url) = body.as_ref().and_then(|body| body["url"].as_str())
    {
        println!("{url}");
        if let Some(expires_at) = body.as_ref().and_then(|body| body["expires_at"].as_str()) {
            eprintln!("valid until {expires_at}");
        }
        return Ok(());
    }
    match body {
        Some(body) => println!("{}", serde_json::to_string_pretty(&body)?),
        None => println!("{status}"),
    }
    Ok(())
}

/// The method and path of a `tenants` action.
fn admin_request(action: &TenantsAction) -> (reqwest::Method, String) {
    match action {
        TenantsAction::List { .. } => (reqwest::Method::GET, "/admin/tenants".into()),
        TenantsAction::Show { id } => (reqwest::Method::GET, format!("/admin/tenants/{id}")),
        TenantsAction::Sync {
            id,
            dry_run,
            confirm,
            ..
        } => {
            let mut flags = Vec::new();
            if *dry_run {
                flags.push("dry_run=true");
            }
            if *confirm {
                flags.push("confirm=true");
            }
            let query = if flags.is_empty() {
                String::new()
            } else {
                format!("?{}", flags.join("&"))
            };
            (
                reqwest::Method::POST,
                format!("/admin/tenants/{id}/sync{query}"),
            )
        }
        TenantsAction::Restart { id } => (
            reqwest::Method::POST,
            format!("/admin/tenants/{id}/restart"),
        ),
        TenantsAction::People { id, .. } => (
            reqwest::Method::GET,
            format!("/admin/tenants/{id}/employees"),
        ),
        TenantsAction::History {
            id, personio_id, ..
        } => (
            reqwest::Method::GET,
            format!("/admin/tenants/{id}/employees/{personio_id}"),
        ),
        TenantsAction::Invite { id, .. } => (
            reqwest::Method::POST,
            format!("/admin/tenants/{id}/invitations"),
        ),
        TenantsAction::Uninvite { id } => (
            reqwest::Method::DELETE,
            format!("/admin/tenants/{id}/invitations"),
        ),
    }
}

/// The JSON body of a `tenants` action, if it sends one.
fn admin_body(action: &TenantsAction) -> Option<serde_json::Value> {
    match action {
        TenantsAction::Invite { email, days, .. } => {
            let mut body = serde_json::json!({});
            if let Some(email) = email {
                body["email"] = serde_json::json!(email);
            }
            if let Some(days) = days {
                body["expires_in_days"] = serde_json::json!(days);
            }
            Some(body)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tenants_client_tests {
    use super::*;

    #[test]
    fn listen_addresses_become_urls() {
        assert_eq!(url_from_listen("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url_from_listen("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(url_from_listen("[::]:9000"), "http://[::1]:9000");
    }

    #[test]
    fn actions_map_to_admin_routes() {
        let sync = TenantsAction::Sync {
            id: "acme".into(),
            dry_run: true,
            confirm: true,
            wait: false,
            timeout_secs: 1,
            json: false,
        };
        assert_eq!(
            admin_request(&sync),
            (
                reqwest::Method::POST,
                "/admin/tenants/acme/sync?dry_run=true&confirm=true".to_string()
            )
        );
        let show = TenantsAction::Show { id: "acme".into() };
        assert_eq!(admin_request(&show).1, "/admin/tenants/acme");
    }

    #[test]
    fn invitations_map_to_their_admin_routes() {
        let cli = Cli::try_parse_from([
            "personio-sync",
            "tenants",
            "invite",
            "acme",
            "--email",
            "it@acme.test",
            "--days",
            "3",
        ])
        .unwrap();
        let Command::Tenants { action, .. } = cli.command else {
            panic!("tenants expected");
        };
        assert_eq!(
            admin_request(&action),
            (
                reqwest::Method::POST,
                "/admin/tenants/acme/invitations".to_string()
            )
        );
        assert_eq!(
            admin_body(&action),
            Some(serde_json::json!({"email": "it@acme.test", "expires_in_days": 3}))
        );
        let uninvite = TenantsAction::Uninvite { id: "acme".into() };
        assert_eq!(
            admin_request(&uninvite),
            (
                reqwest::Method::DELETE,
                "/admin/tenants/acme/invitations".to_string()
            )
        );
        assert_eq!(admin_body(&uninvite), None);
    }

    #[test]
    fn failures_show_the_error_body() {
        let body = serde_json::json!({"error": "not_found", "message": "no tenant with id `x`"});
        let line = describe_failure(reqwest::StatusCode::NOT_FOUND, Some(&body), "");
        assert_eq!(line, "HTTP 404 Not Found: not_found: no tenant with id `x`");
        let line = describe_failure(reqwest::StatusCode::BAD_GATEWAY, None, "oops\n");
        assert_eq!(line, "HTTP 502 Bad Gateway: oops");
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "personio-sync",
            "tenants",
            "sync",
            "acme",
            "--dry-run",
            "--url",
            "http://x:1",
        ])
        .unwrap();
        let Command::Tenants { target, action } = cli.command else {
            panic!("tenants expected");
        };
        assert_eq!(target.url.as_deref(), Some("http://x:1"));
        assert!(matches!(
            action,
            TenantsAction::Sync {
                dry_run: true,
                confirm: false,
                ..
            }
        ));
        let cli = Cli::try_parse_from([
            "personio-sync",
            "tenants",
            "people",
            "acme",
            "ann@",
            "--json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Tenants {
                action: TenantsAction::People {
                    ref query,
                    json: true,
                    limit: 50,
                    ..
                },
                ..
            } if query.as_deref() == Some("ann@")
        ));
        let cli =
            Cli::try_parse_from(["personio-sync", "tenants", "history", "acme", "7"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tenants {
                action: TenantsAction::History { json: false, .. },
                ..
            }
        ));
        assert!(
            Cli::try_parse_from([
                "personio-sync",
                "tenants",
                "sync",
                "a",
                "--wait",
                "--dry-run"
            ])
            .is_err(),
            "--wait with --dry-run"
        );
        let cli = Cli::try_parse_from(["personio-sync", "export", "--with-secrets"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Export {
                with_secrets: true,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["personio-sync", "import"]).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_data_dir_is_created_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("data");
        create_private_dir(&dir).unwrap();
        for path in [root.path().join("a"), dir.clone()] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", path.display());
        }
        create_private_dir(&dir).unwrap();
    }
}
