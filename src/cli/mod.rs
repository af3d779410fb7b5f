//! Command-line front ends beyond `serve`: `rummy run` (one run for scripts
//! and CI), `rummy demo` (an offline replay of a whole act loop) and
//! `rummy inspect` (a read-only look into a database). Like every front end
//! they hold no run logic: `driver` turns run notifications into decisions
//! and progress, over a backend that is either the engine hosted in-process
//! (`local`) or a running server's WebSocket (`remote`).

pub mod demo;
pub mod driver;
pub mod inspect;
pub mod local;
pub mod progress;
pub mod remote;
pub mod replay;
pub mod run;
pub mod ws;

/// The run ended with status 200.
pub const EXIT_OK: u8 = 0;
/// The run ended with another status, or could not run.
pub const EXIT_FAILED: u8 = 1;
/// Bad arguments (clap uses 2 for its own refusals too).
pub const EXIT_USAGE: u8 = 2;
/// `--timeout` elapsed; the run was cancelled (as `timeout(1)` reports).
pub const EXIT_TIMEOUT: u8 = 124;

/// Why a command stopped before its run ended.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The caller asked for something that cannot be done (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something failed on the way (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }
}

/// Both standard input and standard error are terminals: a person is there
/// to answer a question.
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
