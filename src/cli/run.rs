//! `rummy run`: one run for scripts and CI. The engine is hosted in this
//! process without a listener; when a running server holds the database,
//! the run goes to that server's WebSocket instead, with the same driver.
//! Progress goes to stderr, the run's last update to stdout.

use super::driver::{drive, DriveOptions, Outcome, Policy, RunBackend, RunRequest};
use super::local::LocalBackend;
use super::progress::Progress;
use super::remote::RemoteBackend;
use super::{CliError, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT};
use crate::store::db::LockError;
use crate::tools::Mode;
use crate::{Config, Server, StartError, StartOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Answer only: file changes are refused.
    Ask,
    /// May change files, through proposals.
    Act,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Ask => Mode::Ask,
            ModeArg::Act => Mode::Act,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The prompt; read from standard input when absent or "-".
    pub prompt: Option<String>,
    /// Model alias (RUMMY_MODEL_<alias>); defaults to the only one configured.
    #[arg(long, value_name = "ALIAS")]
    pub model: Option<String>,
    /// Project directory the run works in (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// ask answers only; act may change files through proposals.
    #[arg(long, value_enum, default_value = "ask")]
    pub mode: ModeArg,
    /// The server accepts every file proposal itself (questions still ask).
    #[arg(long, conflicts_with = "reject_all")]
    pub yolo: bool,
    /// Accept every file proposal without asking.
    #[arg(long, conflicts_with = "reject_all")]
    pub accept_all: bool,
    /// Reject every proposal without asking.
    #[arg(long)]
    pub reject_all: bool,
    /// Cancel the run after this many seconds and exit 124.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// Logs go to stderr (stdout carries the summary), warnings only unless
/// RUST_LOG asks for more.
pub fn init_cli_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The model alias to use: the one asked for, or the only configured one.
pub fn choose_model(asked: Option<&str>, config: &Config) -> Result<String, CliError> {
    if let Some(m) = asked.filter(|m| !m.is_empty()) {
        return Ok(m.to_string());
    }
    match config.models.as_slice() {
        [only] => Ok(only.alias.clone()),
        [] => Err(CliError::Usage(
            "no model is configured: set RUMMY_MODEL_<alias>=<provider>/<model> (see `rummy settings`) or pass --model".into(),
        )),
        several => {
            let names: Vec<&str> = several.iter().map(|m| m.alias.as_str()).collect();
            Err(CliError::Usage(format!(
                "several models are configured ({}); choose one with --model",
                names.join(", ")
            )))
        }
    }
}

fn read_prompt(given: Option<&str>) -> Result<String, CliError> {
    let text = match given {
        Some(p) if p != "-" => p.to_string(),
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(CliError::Usage(
                    "no prompt: give it as an argument or on standard input".into(),
                ));
            }
            let mut text = String::new();
            stdin
                .lock()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("cannot read the prompt: {e}")))?;
            text
        }
    };
    if text.trim().is_empty() {
        return Err(CliError::Usage("the prompt is empty".into()));
    }
    Ok(text)
}

/// An existing directory, absolute.
pub fn project_dir(given: Option<&Path>) -> Result<PathBuf, CliError> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()
            .map_err(|e| CliError::Usage(format!("no current directory: {e}")))?,
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| CliError::Usage(format!("--project {}: {e}", dir.display())))?;
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--project {} is not a directory",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The engine in this process, or the WebSocket of the server that holds
/// the database.
pub async fn open_backend(
    config: Config,
    root: &Path,
    options: StartOptions,
) -> Result<Box<dyn RunBackend>, CliError> {
    let db = config.db_path.clone();
    let token = config.admission.auth_token.clone();
    match Server::start(config, options).await {
        Ok(server) => Ok(Box::new(LocalBackend::open(server, root).await?)),
        Err(StartError::Locked(held @ LockError::Held { .. })) => {
            let (url, token) = super::ws::holder_target(&db, &held, token)?;
            Ok(Box::new(
                RemoteBackend::connect(&url, token.as_deref(), root).await?,
            ))
        }
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}

/// `rummy run`.
pub fn main(args: RunArgs) -> ExitCode {
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rummy run: {e}");
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    if code == EXIT_TIMEOUT || code == EXIT_INTERRUPTED {
        // A question may still wait on stdin in a blocking thread, which
        // would hold the runtime open.
        std::process::exit(i32::from(code));
    }
    ExitCode::from(code)
}

fn run(args: RunArgs) -> Result<u8, CliError> {
    let config =
        Config::load().map_err(|e| CliError::Failed(format!("configuration error: {e}")))?;
    init_cli_logging();
    let model = choose_model(args.model.as_deref(), &config)?;
    let root = project_dir(args.project.as_deref())?;
    let prompt = read_prompt(args.prompt.as_deref())?;
    let policy = if args.accept_all {
        Policy::AcceptAll
    } else if args.reject_all {
        Policy::RejectAll
    } else if super::interactive() {
        Policy::Ask
    } else {
        Policy::RejectUnattended
    };
    let request = RunRequest {
        model,
        mode: args.mode.into(),
        prompt,
        yolo: args.yolo,
    };
    let options = DriveOptions {
        policy,
        timeout: args.timeout.map(Duration::from_secs),
    };
    let system = actix::System::new();
    system.block_on(async move {
        let start = StartOptions {
            listen: false,
            ..StartOptions::default()
        };
        let mut backend = open_backend(config, &root, start).await?;
        let mut progress = Progress::new("rummy run");
        let outcome = drive(backend.as_mut(), &request, &options, &mut progress).await;
        progress.finish();
        backend.close().await;
        Ok(match outcome? {
            Outcome::Ended(end) => {
                if let Some(summary) = &end.summary {
                    println!("{summary}");
                }
                progress.line(&format!("run ended with status {}", end.status));
                if end.status == 200 {
                    EXIT_OK
                } else {
                    EXIT_FAILED
                }
            }
            Outcome::TimedOut => EXIT_TIMEOUT,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        })
    })
}
