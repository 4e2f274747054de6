//! The command line: `serve`, `migrate`, `import customers`, `agent ...`, `simulate call`,
//! `check-config`. Exit codes: 0 success, 2 bad usage or bad configuration, 1 any other failure.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::auth::{Role, hash_token, new_token};
use crate::daemon::Application;
use crate::settings::Settings;
use crate::storage::Storage;

const DEFAULT_CONFIG: &str = "config/ringside.toml";

#[derive(Debug, Parser)]
#[command(
    name = "ringside",
    version,
    about = "Joins a call centre's phone system to its customer records"
)]
pub struct Cli {
    /// Configuration file (TOML); every key can be overridden by RINGSIDE__SECTION__KEY.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        /// Load the built-in demo data set into an empty database and print the demo tokens.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and exit (0 when valid, 2 naming the key at fault).
    CheckConfig,
    /// Bulk imports.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage agents and their tokens.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Inject test calls into a running daemon.
    #[command(subcommand)]
    Simulate(SimulateCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import customers from a CSV file (see README for the columns).
    Customers {
        file: PathBuf,
        /// Region for numbers without +country (defaults to numbers.default_country).
        #[arg(long)]
        country: Option<String>,
        /// Check and count everything, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent and print its token (shown once).
    Add(AgentAdd),
    /// List agents.
    List,
    /// Issue a new token for an agent.
    Token { name: String },
    /// Revoke every token of an agent.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct AgentAdd {
    pub name: String,
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// A phone extension whose ringing pops to this agent (repeatable).
    #[arg(long = "extension", value_name = "EXT")]
    pub extensions: Vec<String>,
    /// Token lifetime in days (default: until revoked).
    #[arg(long)]
    pub token_days: Option<i64>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Ring a call at the daemon as a PBX would, so a console shows a pop.
    Call(SimulateCall),
}

#[derive(Debug, Args)]
pub struct SimulateCall {
    /// The caller's number, in any format.
    #[arg(long)]
    pub from: String,
    /// The extension (or agent name) that rings; none = every ready agent.
    #[arg(long)]
    pub to: Option<String>,
    /// Answer the call after this many seconds (by the ringing agent).
    #[arg(long)]
    pub answer_after: Option<f64>,
    /// Hang up after this many seconds from the start.
    #[arg(long)]
    pub hangup_after: Option<f64>,
    /// Base URL of the daemon (default: from http.listen).
    #[arg(long)]
    pub url: Option<String>,
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let path_given = cli.config.is_some();
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let settings = match Settings::load(&path, path_given) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringside: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        println!(
            "configuration is valid ({})",
            if path.exists() {
                path.display().to_string()
            } else {
                "defaults".into()
            }
        );
        return ExitCode::SUCCESS;
    }
    crate::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringside: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringside: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::Migrate => {
            let storage = Storage::connect(&settings.database).await?;
            storage.migrate().await?;
            storage.close().await;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => Ok(ExitCode::SUCCESS),
        Command::Import(ImportCommand::Customers {
            file,
            country,
            dry_run,
        }) => import(settings, file, country, dry_run).await,
        Command::Agent(cmd) => agent(settings, cmd).await,
        Command::Simulate(SimulateCommand::Call(call)) => {
            crate::simulate::call(&settings, call).await
        }
    }
}

async fn serve(mut settings: Settings, demo: bool) -> anyhow::Result<ExitCode> {
    if demo
        && settings.outbound.dialer == crate::settings::DialerChoice::Auto
        && settings.ami.servers.is_empty()
        && settings.esl.servers.is_empty()
    {
        // A demo without a PBX still shows the whole outbound flow, with a clearly labelled simulation.
        settings.outbound.dialer = crate::settings::DialerChoice::Simulated;
    }
    let app = Application::build(settings).await?;
    if demo {
        let loaded = crate::demo::load(&app.state().storage).await?;
        app.state().directory.reload(&app.state().storage).await?;
        app.state().engine.scan_soon();
        crate::demo::print_banner(loaded, app.http_addr());
    }
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signals.cancel();
    });
    app.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn import(
    settings: Settings,
    file: PathBuf,
    country: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let country = country.unwrap_or_else(|| settings.numbers.default_country.clone());
    if crate::phone::parse_country(&country).is_none() {
        eprintln!("ringside: --country `{country}` is not an ISO 3166 region such as CN or DE");
        return Ok(ExitCode::from(2));
    }
    let reader = match std::fs::File::open(&file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ringside: cannot read {}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let size = reader.metadata().map(|m| m.len()).unwrap_or(0);
    let storage = Storage::connect(&settings.database).await?;
    storage.migrate().await?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} rows read  {per_sec}  {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let options = crate::import::ImportOptions {
        country,
        dry_run,
        batch_size: 1000,
    };
    let result = crate::import::import_customers(
        &storage,
        std::io::BufReader::with_capacity(1 << 16, reader),
        &options,
        |n| {
            if let Some(bar) = &bar {
                bar.set_position(n);
            }
        },
    )
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    storage.close().await;
    let summary = match result {
        Ok(s) => s,
        Err(crate::import::ImportError::Csv(m)) => {
            eprintln!("ringside: {}: {m}", file.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}{} rows in {:.1} s ({} bytes): {} inserted, {} updated, {} merged duplicates, {} rejected, {} numbers kept raw (invalid)",
        if dry_run { "dry run: " } else { "" },
        summary.rows,
        secs,
        size,
        summary.inserted,
        summary.updated,
        summary.merged,
        summary.rejected.len(),
        summary.invalid_numbers
    );
    for w in &summary.warnings {
        println!("warning: {w}");
    }
    for r in &summary.rejected {
        println!("rejected line {}: {}", r.line, r.reason);
    }
    Ok(ExitCode::SUCCESS)
}

async fn agent(settings: Settings, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    let storage = Storage::connect(&settings.database).await?;
    storage.migrate().await?;
    let code = match cmd {
        AgentCommand::Add(add) => {
            if add.name.trim().is_empty() {
                eprintln!("ringside: the agent name must not be empty");
                return Ok(ExitCode::from(2));
            }
            if let Err(e) = crate::api::agents::check_extensions(&add.extensions) {
                eprintln!("ringside: {}", e.message);
                return Ok(ExitCode::from(2));
            }
            let token = new_token();
            let expires = add
                .token_days
                .map(|d| crate::storage::now_ms() + d * 86_400_000);
            match storage
                .create_agent(
                    add.name.trim(),
                    add.role,
                    &add.extensions,
                    &hash_token(&token),
                    expires,
                )
                .await
            {
                Ok(agent) => {
                    eprintln!(
                        "agent `{}` (id {}, role {}, extensions [{}]) created; its token is shown once:",
                        agent.name,
                        agent.id,
                        agent.role,
                        agent.extensions.join(", ")
                    );
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(crate::storage::StorageError::Conflict(m)) => {
                    eprintln!(
                        "ringside: agent `{}` or one of its extensions exists already ({m})",
                        add.name
                    );
                    ExitCode::FAILURE
                }
                Err(e) => return Err(e.into()),
            }
        }
        AgentCommand::List => {
            for a in storage.list_agents().await? {
                println!(
                    "{:>4}  {:<24} {:<10} {:<6} [{}]{}",
                    a.id,
                    a.name,
                    a.role,
                    a.status,
                    a.extensions.join(", "),
                    if a.disabled { " disabled" } else { "" }
                );
            }
            ExitCode::SUCCESS
        }
        AgentCommand::Token { name } => match storage.agent_by_name(&name).await {
            Ok(agent) => {
                let token = new_token();
                storage
                    .add_token(agent.id, &hash_token(&token), None)
                    .await?;
                eprintln!("new token for `{}` (shown once):", agent.name);
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(crate::storage::StorageError::NotFound) => {
                eprintln!("ringside: no agent named `{name}`");
                ExitCode::FAILURE
            }
            Err(e) => return Err(e.into()),
        },
        AgentCommand::Revoke { name } => match storage.agent_by_name(&name).await {
            Ok(agent) => {
                let n = storage.revoke_tokens(agent.id).await?;
                println!("revoked {n} token(s) of `{}`", agent.name);
                ExitCode::SUCCESS
            }
            Err(crate::storage::StorageError::NotFound) => {
                eprintln!("ringside: no agent named `{name}`");
                ExitCode::FAILURE
            }
            Err(e) => return Err(e.into()),
        },
    };
    storage.close().await;
    Ok(code)
}
