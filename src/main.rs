//! The `rummy` command line.

use clap::{Parser, Subcommand};
use rummy::{Config, Server, StartOptions};
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
    /// Print the protocol as one JSON Schema document: every method's params
    /// and result and every notification's params.
    Schema {
        /// Indent the JSON for people.
        #[arg(long)]
        pretty: bool,
    },
    /// Run one prompt to its end and print the run's last update (for
    /// scripts and CI); exit 0 for status 200, 1 otherwise, 2 for bad
    /// arguments, 124 on --timeout. Uses the running server when one holds
    /// the database.
    Run(rummy::cli::run::RunArgs),
    /// A whole act loop offline, replayed from examples/demo/ in a fresh
    /// temporary project (no provider key needed); --model ALIAS runs the
    /// same task against a real model.
    Demo(rummy::cli::demo::DemoArgs),
    /// Serve the Agent Client Protocol on stdin/stdout for editors (Zed,
    /// Neovim, JetBrains), with the engine in this process.
    Acp(rummy::acp::AcpArgs),
    /// Read-only look into a database: runs, one run, a turn's packet, entries.
    Inspect(rummy::cli::inspect::InspectArgs),
    /// Parse one model reply from standard input and print the commands and
    /// warnings as JSON: {"commands": [...], "warnings": [...], "unparsed": "..."}.
    Parse {
        /// Indent the JSON for people.
        #[arg(long)]
        pretty: bool,
        /// Commands kept per reply (default: RUMMY_MAX_COMMANDS from the settings).
        #[arg(long)]
        max_commands: Option<usize>,
        /// Read one JSON string per line instead, and print one result per line.
        #[arg(long)]
        jsonl: bool,
    },
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // These load their own settings and log to stderr only.
    let cli = match cli.command {
        Command::Run(args) => return rummy::cli::run::main(args),
        Command::Demo(args) => return rummy::cli::demo::main(args),
        Command::Inspect(args) => return rummy::cli::inspect::main(args),
        Command::Acp(args) => return rummy::acp::main(args),
        command => Cli { command },
    };
    if let Command::Settings = cli.command {
        print!("{}", rummy::config::DEFAULT_ENV);
        return ExitCode::SUCCESS;
    }
    if let Command::Schema { pretty } = cli.command {
        return print_schema(pretty);
    }
    if let Command::Parse {
        pretty,
        max_commands,
        jsonl,
    } = cli.command
    {
        return parse_stdin(pretty, max_commands, jsonl);
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
        // Migrating under a live server would change its schema beneath it.
        Command::Migrate => match rummy::store::db::lock(&config.db_path)
            .map_err(|e| e.to_string())
            .and_then(|_lock| {
                rummy::store::db::open(&config.db_path, config.mmap_mb).map_err(|e| e.to_string())
            }) {
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
        Command::Settings
        | Command::Schema { .. }
        | Command::Parse { .. }
        | Command::Run(_)
        | Command::Demo(_)
        | Command::Inspect(_)
        | Command::Acp(_) => ExitCode::SUCCESS,
    }
}

/// `rummy schema`: derived from the same types the server speaks.
fn print_schema(pretty: bool) -> ExitCode {
    let doc = rummy::protocol::schema::document();
    let text = if pretty {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    };
    match text {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rummy schema: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rummy parse`: exit 0 whenever the input could be read, whatever the
/// model wrote; the parser itself never fails.
fn parse_stdin(pretty: bool, max_commands: Option<usize>, jsonl: bool) -> ExitCode {
    use std::io::{BufRead, Read, Write};
    // A broken settings file must not stop a parse: fall back to upstream's 99.
    let max = max_commands
        .or_else(|| Config::load().ok().map(|c| c.max_commands as usize))
        .unwrap_or(99);
    let render = |content: &str| {
        let value = rummy::parse::parse(content, max).to_json();
        let text = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        };
        text.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    };
    let stdin = std::io::stdin();
    // Buffered: stdout alone flushes at every newline, one write per
    // reply in --jsonl mode.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if jsonl {
        for line in stdin.lock().lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("rummy parse: cannot read standard input: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let content: String = match serde_json::from_str(&line) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("rummy parse: a --jsonl line is not a JSON string: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if writeln!(out, "{}", render(&content)).is_err() {
                return ExitCode::FAILURE;
            }
        }
        return match out.flush() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let mut bytes = Vec::new();
    if let Err(e) = stdin.lock().read_to_end(&mut bytes) {
        eprintln!("rummy parse: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    // A reply that is not valid UTF-8 is still a reply: replace the bad bytes.
    let content = String::from_utf8_lossy(&bytes);
    match writeln!(out, "{}", render(&content)).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn serve(config: Config) -> ExitCode {
    let system = actix::System::new();
    system.block_on(async move {
        let handle = match Server::start(config, StartOptions::default()).await {
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
