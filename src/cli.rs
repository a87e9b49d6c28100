//! The command line: `serve`, `demo`, `simulate personio|learnamp`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{Application, Options, shutdown_signal};
use crate::config::Config;
use crate::domain::Secret;
use crate::sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use crate::sim::personio::{PersonioSim, PersonioSimConfig};
use crate::store::Store;
use crate::telemetry;

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
        Command::Simulate {
            system,
            listen,
            employees,
            seed,
            client_id,
            client_secret,
        } => simulate(system, listen, employees, seed, client_id, client_secret).await,
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
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "cannot create data_dir {}",
            config.storage.data_dir.display()
        )
    })?;
    let store = Store::open(&config.storage.data_dir, config.storage.cache_mb)
        .context("cannot open the database in storage.data_dir")?;
    let app = Application::build(&config, store, Secret::new(token), Options::default()).await?;
    tracing::info!(addr = %app.local_addr(), "personio-sync serving");
    app.run(shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn simulate(
    system: System,
    listen: String,
    employees: usize,
    seed: u64,
    client_id: String,
    client_secret: String,
) -> anyhow::Result<()> {
    telemetry::init(crate::config::LogFormat::Text);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    match system {
        System::Personio => {
            let config = PersonioSimConfig {
                employees,
                seed,
                client_id,
                client_secret,
                ..PersonioSimConfig::default()
            };
            let sim = PersonioSim::start_on(listener, config).await?;
            println!("{}", sim.base_url);
            shutdown_signal().await;
        }
        System::Learnamp => {
            let config = LearnAmpSimConfig {
                client_id,
                client_secret,
                ..LearnAmpSimConfig::default()
            };
            let sim = LearnAmpSim::start_on(listener, config).await?;
            println!("{}", sim.base_url);
            shutdown_signal().await;
        }
    }
    Ok(())
}
