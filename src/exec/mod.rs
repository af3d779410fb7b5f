//! Server-side command runner for yolo runs: the server itself runs an
//! accepted `<sh>`/`<env>` command and streams its output.
//!
//! [`spawn`] starts `bash -c <command>` in the project root, stdin empty,
//! as the leader of a new process group, with a scrubbed environment
//! ([`scrub_env`]). Output arrives on an `mpsc` channel as [`ExecEvent`]s:
//! batched [`ExecEvent::Chunk`]s per channel (1 = stdout, 2 = stderr, order
//! kept within each), at most one [`ExecEvent::Truncated`] per channel, and
//! exactly one final [`ExecEvent::Finished`] after every chunk. The returned
//! [`ExecHandle`] cancels; dropping it cancels too. Ending a command always
//! ends its whole group: SIGTERM, then SIGKILL after a grace period; the
//! group's leftovers are also ended when the command exits on its own.
//!
//! Nothing here knows about runs, streams or actors: a consumer forwards the
//! events wherever they belong (see the module map in ARCHITECTURE.md).

mod env;
mod group;
mod pump;

pub use env::{is_scrubbed, scrub_env};
pub use pump::truncation_marker;

use crate::config::Config;
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, Instant};

/// Channel number of standard output.
pub const STDOUT: u8 = 1;
/// Channel number of standard error.
pub const STDERR: u8 = 2;

/// How often a group being ended is checked for survivors.
const POLL: Duration = Duration::from_millis(10);
/// How long to wait for the group to vanish after SIGKILL (it cannot be
/// ignored, but a process in uninterruptible sleep takes its time).
const AFTER_KILL: Duration = Duration::from_secs(5);

/// Bounds and batching of one command. `from_config` takes the two
/// settings; the rest are fixed in code and public for tests and callers.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecLimits {
    /// `RUMMY_SH_TIMEOUT`; `None` = no limit.
    pub timeout: Option<Duration>,
    /// `RUMMY_STREAM_MAX_BYTES`, per channel; `None` = no cap (`Some(0)`
    /// keeps nothing but the marker).
    pub max_bytes: Option<u64>,
    /// Between SIGTERM and SIGKILL to the group.
    pub kill_grace: Duration,
    /// Longest a byte waits in a channel's batch.
    pub flush_interval: Duration,
    /// A batch this large is sent at once.
    pub flush_bytes: usize,
    /// After the group is gone, how long its pipes may stay open (held by a
    /// process that left the group) before reading stops.
    pub drain_grace: Duration,
}

impl Default for ExecLimits {
    /// The shipped defaults (`config/default.env`) and the fixed values.
    fn default() -> Self {
        ExecLimits {
            timeout: Some(Duration::from_secs(600)),
            max_bytes: Some(1_048_576),
            kill_grace: Duration::from_secs(2),
            flush_interval: Duration::from_millis(50),
            flush_bytes: 64 * 1024,
            drain_grace: Duration::from_secs(1),
        }
    }
}

impl ExecLimits {
    pub fn from_config(config: &Config) -> Self {
        ExecLimits {
            timeout: config.sh_timeout,
            max_bytes: config.stream_max_bytes,
            ..ExecLimits::default()
        }
    }
}

/// What to run, where, and the parent environment it inherits (scrubbed at
/// spawn, so a caller may pass the server's environment as it is).
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: String,
    /// Working directory: the project root.
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
}

impl ExecRequest {
    /// A request inheriting this process's environment.
    pub fn new(command: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        ExecRequest {
            command: command.into(),
            cwd: cwd.into(),
            env: std::env::vars_os().collect(),
        }
    }

    /// Replaces the parent environment (tests pass one explicitly instead
    /// of changing the process's own).
    pub fn with_env<I, K, V>(mut self, parent: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env = parent
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }
}

/// One thing that happened to a running command, in delivery order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Output of one channel ([`STDOUT`] or [`STDERR`]), raw bytes (convert
    /// lossily to UTF-8 when storing). A capped channel's last chunk ends
    /// with [`truncation_marker`].
    Chunk { channel: u8, bytes: Vec<u8> },
    /// The channel hit `limit` bytes; its marker chunk was already sent and
    /// nothing more comes on it. Informational: do not append anything.
    Truncated { channel: u8, limit: u64 },
    /// Always last, exactly once (unless the receiver was dropped).
    Finished(ExecOutcome),
}

/// Why a command was killed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// [`ExecHandle::cancel`].
    Cancelled,
    /// The [`ExecHandle`] was dropped.
    HandleDropped,
}

/// How a command ended. `duration` runs from the spawn to the exit (for
/// kills and timeouts: until the whole group was gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// bash exited with `code`: 0 completed, anything else failed.
    Exited { code: i32, duration: Duration },
    /// bash was ended by a signal not sent by us (failed).
    Signaled { signal: i32, duration: Duration },
    /// Ended by us on request.
    Killed {
        reason: KillReason,
        duration: Duration,
    },
    /// Ran longer than `after` (`RUMMY_SH_TIMEOUT`) and was ended.
    TimedOut { after: Duration, duration: Duration },
    /// bash could not be started (e.g. the directory does not exist).
    SpawnFailed { error: String },
    /// The OS stopped reporting on the process (waiting for it failed); its
    /// group was ended.
    Lost { error: String, duration: Duration },
}

impl ExecOutcome {
    /// Exit code 0.
    pub fn succeeded(&self) -> bool {
        matches!(self, ExecOutcome::Exited { code: 0, .. })
    }

    /// bash's exit code, when it exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ExecOutcome::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        match self {
            ExecOutcome::Exited { duration, .. }
            | ExecOutcome::Signaled { duration, .. }
            | ExecOutcome::Killed { duration, .. }
            | ExecOutcome::TimedOut { duration, .. }
            | ExecOutcome::Lost { duration, .. } => Some(*duration),
            ExecOutcome::SpawnFailed { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not start bash in {cwd}: {source}")]
    Spawn { cwd: String, source: std::io::Error },
    #[error("bash started without a process id")]
    NoPid,
    #[error("no tokio runtime to run the command on")]
    NoRuntime,
}

/// Controls a running command. Dropping it kills the command's group, so a
/// consumer that goes away leaves no processes behind.
#[derive(Debug)]
pub struct ExecHandle {
    cancel: watch::Sender<bool>,
    pid: Option<u32>,
}

impl ExecHandle {
    /// Ends the command's whole process group (SIGTERM, SIGKILL after the
    /// grace); the outcome is `Killed { reason: Cancelled }` unless it had
    /// already ended. Idempotent.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// bash's pid, which is also the process group id; `None` when it did
    /// not start.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// Starts `request` and returns at once; events go to `events` (a capacity
/// of 64 or so is plenty: chunks are batched). A failure to start is the
/// `Finished(SpawnFailed)` event, never a panic. Call inside a tokio
/// runtime (any actix context is one).
pub fn spawn(
    request: ExecRequest,
    limits: ExecLimits,
    events: mpsc::Sender<ExecEvent>,
) -> ExecHandle {
    let (cancel, cancel_rx) = watch::channel(false);
    let runtime = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime,
        Err(_) => {
            finish_now(&events, None, ExecError::NoRuntime);
            return ExecHandle { cancel, pid: None };
        }
    };
    match start(&request) {
        Ok((child, pid)) => {
            // Linux pids stay below 2^22, far inside i32.
            let pgid = pid as i32;
            tracing::debug!(
                pid,
                cwd = %request.cwd.display(),
                command = %abbreviate(&request.command),
                "command started"
            );
            runtime.spawn(supervise(
                child,
                pgid,
                Instant::now(),
                limits,
                cancel_rx,
                events,
            ));
            ExecHandle {
                cancel,
                pid: Some(pid),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "command did not start");
            finish_now(&events, Some(&runtime), e);
            ExecHandle { cancel, pid: None }
        }
    }
}

/// What [`collect`] gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// `None` when the channel closed without a `Finished` event.
    pub outcome: Option<ExecOutcome>,
}

/// Gathers events until `Finished` (or the senders are gone).
pub async fn collect(events: &mut mpsc::Receiver<ExecEvent>) -> Collected {
    let mut c = Collected {
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        outcome: None,
    };
    while let Some(event) = events.recv().await {
        match event {
            ExecEvent::Chunk { channel, bytes } if channel == STDOUT => c.stdout.extend(bytes),
            ExecEvent::Chunk { bytes, .. } => c.stderr.extend(bytes),
            ExecEvent::Truncated { channel, .. } if channel == STDOUT => c.stdout_truncated = true,
            ExecEvent::Truncated { .. } => c.stderr_truncated = true,
            ExecEvent::Finished(outcome) => {
                c.outcome = Some(outcome);
                break;
            }
        }
    }
    c
}

/// Runs a command to its end and returns everything it printed: the simple
/// form for callers that need no streaming.
pub async fn run(request: ExecRequest, limits: ExecLimits) -> Collected {
    let (tx, mut rx) = mpsc::channel(64);
    let _handle = spawn(request, limits, tx);
    collect(&mut rx).await
}

/// Whether any live (non-zombie) process remains in process group `pgid`.
pub async fn process_group_alive(pgid: u32) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 0 => group::group_alive(pgid).await,
        _ => false,
    }
}

fn start(request: &ExecRequest) -> Result<(Child, u32), ExecError> {
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&request.command)
        .current_dir(&request.cwd)
        .env_clear()
        .envs(scrub_env(request.env.iter().cloned()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A new group led by bash, so one killpg reaches everything it starts.
        .process_group(0)
        // Our own guard kills the whole group; tokio's would kill bash only.
        .kill_on_drop(false);
    if request.cwd.is_absolute() {
        // The inherited PWD names the server's directory, not the root.
        command.env("PWD", &request.cwd);
    }
    let child = command.spawn().map_err(|source| ExecError::Spawn {
        cwd: request.cwd.display().to_string(),
        source,
    })?;
    let pid = child.id().ok_or(ExecError::NoPid)?;
    Ok((child, pid))
}

/// Delivers `Finished(SpawnFailed)` without waiting when there is room,
/// else from a task.
fn finish_now(
    events: &mpsc::Sender<ExecEvent>,
    runtime: Option<&tokio::runtime::Handle>,
    error: ExecError,
) {
    let event = ExecEvent::Finished(ExecOutcome::SpawnFailed {
        error: error.to_string(),
    });
    if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
        if let Some(runtime) = runtime {
            let events = events.clone();
            runtime.spawn(async move {
                let _ = events.send(event).await;
            });
        }
    }
}

async fn supervise(
    mut child: Child,
    pgid: i32,
    started: Instant,
    limits: ExecLimits,
    mut cancel: watch::Receiver<bool>,
    events: mpsc::Sender<ExecEvent>,
) {
    let mut guard = group::GroupGuard::new(pgid);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (drain_tx, drain_rx) = watch::channel(None);
    let out = pump::Pump::new(STDOUT, &limits, &events).run(stdout, drain_rx.clone());
    let err = pump::Pump::new(STDERR, &limits, &events).run(stderr, drain_rx);
    let life = async {
        let (outcome, gone) = lifecycle(&mut child, pgid, started, &limits, &mut cancel).await;
        if gone {
            guard.disarm();
        }
        drain_tx.send_replace(Some(Instant::now() + limits.drain_grace));
        outcome
    };
    let (out_stats, err_stats, outcome) = tokio::join!(out, err, life);
    tracing::debug!(
        pgid,
        ?outcome,
        stdout_read = out_stats.read,
        stdout_kept = out_stats.kept,
        stderr_read = err_stats.read,
        stderr_kept = err_stats.kept,
        "command finished"
    );
    let _ = events.send(ExecEvent::Finished(outcome)).await;
}

/// Waits for bash to exit, a cancel, or the timeout; makes sure the group
/// is gone. Returns the outcome and whether the group is known to be gone.
async fn lifecycle(
    child: &mut Child,
    pgid: i32,
    started: Instant,
    limits: &ExecLimits,
    cancel: &mut watch::Receiver<bool>,
) -> (ExecOutcome, bool) {
    let timeout = async {
        match limits.timeout {
            Some(after) => sleep(after).await,
            None => std::future::pending().await,
        }
    };
    enum Stop {
        Kill(KillReason),
        Timeout(Duration),
    }
    let stop = tokio::select! {
        status = child.wait() => {
            let duration = started.elapsed();
            let (outcome, reaped) = match status {
                Ok(status) => (outcome_of(status, duration), true),
                Err(e) => (ExecOutcome::Lost { error: e.to_string(), duration }, false),
            };
            // Background jobs that outlive bash are ended with it.
            let gone = if reaped && !group::group_alive(pgid).await {
                true
            } else {
                tracing::info!(pgid, "command exited with processes still in its group; ending them");
                end_group(child, reaped, pgid, limits.kill_grace).await
            };
            return (outcome, gone);
        }
        changed = cancel.changed() => Stop::Kill(if changed.is_ok() {
            KillReason::Cancelled
        } else {
            KillReason::HandleDropped
        }),
        () = timeout => Stop::Timeout(limits.timeout.unwrap_or_default()),
    };
    match &stop {
        Stop::Kill(reason) => tracing::info!(pgid, ?reason, "ending command"),
        Stop::Timeout(after) => tracing::info!(pgid, ?after, "command timed out; ending it"),
    }
    let gone = end_group(child, false, pgid, limits.kill_grace).await;
    let duration = started.elapsed();
    let outcome = match stop {
        Stop::Kill(reason) => ExecOutcome::Killed { reason, duration },
        Stop::Timeout(after) => ExecOutcome::TimedOut { after, duration },
    };
    (outcome, gone)
}

/// SIGTERM to the group; SIGKILL once `grace` has passed with anything
/// left; reaps bash. True when the group is gone at the end.
async fn end_group(child: &mut Child, mut reaped: bool, pgid: i32, grace: Duration) -> bool {
    group::signal_group(pgid, Signal::SIGTERM);
    if wait_gone(child, &mut reaped, pgid, Instant::now() + grace).await {
        return true;
    }
    tracing::info!(
        pgid,
        ?grace,
        "process group outlived SIGTERM; sending SIGKILL"
    );
    group::signal_group(pgid, Signal::SIGKILL);
    if wait_gone(child, &mut reaped, pgid, Instant::now() + AFTER_KILL).await {
        return true;
    }
    tracing::warn!(pgid, "process group still present after SIGKILL");
    false
}

/// Polls until bash is reaped and the group has no live member, or the
/// deadline passes.
async fn wait_gone(child: &mut Child, reaped: &mut bool, pgid: i32, deadline: Instant) -> bool {
    loop {
        if !*reaped {
            match child.try_wait() {
                Ok(Some(_)) => *reaped = true,
                Ok(None) => {}
                Err(e) => {
                    // Nothing more to learn from it; judge by the group.
                    tracing::warn!(pgid, error = %e, "waiting for bash failed");
                    *reaped = true;
                }
            }
        }
        if *reaped && !group::group_alive(pgid).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
}

fn outcome_of(status: ExitStatus, duration: Duration) -> ExecOutcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExecOutcome::Exited { code, duration },
        (None, Some(signal)) => ExecOutcome::Signaled { signal, duration },
        (None, None) => ExecOutcome::Lost {
            error: format!("unrecognized exit status {status}"),
            duration,
        },
    }
}

/// The start of a command for a log line.
fn abbreviate(command: &str) -> String {
    const MAX: usize = 200;
    match command.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &command[..cut]),
        None => command.to_string(),
    }
}
