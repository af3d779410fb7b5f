//! The `rummy` command line.

use clap::{Parser, Subcommand};
use rummy::{Config, Server};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rummy",
    version,
    about = "rummy: an LLM agent server (JSON-RPC 2.0 over WebSocket)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (settings: config/default.env < $RUMMY_HOME/.env < ./.env < environment).
    Serve {
        /// Port to listen on (overrides PORT).
        #[arg(long)]
        port: Option<u16>,
        /// Address to bind (overrides RUMMY_BIND).
        #[arg(long)]
        bind: Option<std::net::IpAddr>,
    },
    /// Open the database and apply pending migrations, then exit.
    Migrate,
    /// Print every setting with its default and meaning.
    Settings,
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Settings = cli.command {
        print!("{}", rummy::config::DEFAULT_ENV);
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rummy: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(config.debug);
    match cli.command {
        Command::Migrate => match rummy::store::db::open(&config.db_path, config.mmap_mb) {
            Ok(_) => {
                println!("database ready: {}", config.db_path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rummy: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { port, bind } => {
            if let Some(p) = port {
                config.port = p;
            }
            if let Some(b) = bind {
                config.bind = b;
            }
            serve(config)
        }
        Command::Settings => ExitCode::SUCCESS,
    }
}

fn serve(config: Config) -> ExitCode {
    let system = actix::System::new();
    system.block_on(async move {
        let handle = match Server::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("rummy: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("could not listen for Ctrl-C: {e}");
        }
        tracing::info!("shutting down: ending runs in flight");
        handle.stop().await;
        ExitCode::SUCCESS
    })
}
