//! Yolo runs: the server itself runs an accepted `<sh>`/`<env>` command
//! (`crate::exec`) and feeds its output to the command's `StreamProducer`,
//! exactly as a client would through the stream RPCs. The caller awaits
//! [`run_on_server`] inside the run's drain, so cancelling the run drops
//! this future, and with it the process handle, which kills the group.

use super::producer::{Abort, Chunk, Complete, Fail};
use super::ProducerHandle;
use crate::config::Config;
use crate::exec::{self, ExecEvent, ExecLimits, ExecOutcome, ExecRequest, KillReason};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a command's run on the server ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRunEnd {
    Completed { exit_code: i64 },
    TimedOut,
    Cancelled,
    Aborted(String),
}

/// `0.1s`, the way upstream's clients report a duration.
fn shown(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs the command in the project root and streams it into its producer;
/// returns once the stream has ended (the output is in the store). A
/// `stream/cancel` from any client kills the process group.
pub async fn run_on_server(config: &Config, root: PathBuf, handle: ProducerHandle) -> ServerRunEnd {
    let (tx, mut rx) = mpsc::channel(64);
    let process = exec::spawn(
        ExecRequest::new(handle.command.clone(), root),
        ExecLimits::from_config(config),
        tx,
    );
    let mut cancelled = handle.cancelled.clone();
    // The cancel watch's sender goes away when the stream ends some other
    // way; from then on there is nothing to watch.
    let mut watching = true;
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(ExecEvent::Chunk { channel, bytes }) => {
                    if let Err(e) = handle.addr.send(Chunk { channel, bytes }).await {
                        tracing::warn!("a command's stream is gone: {e}");
                        process.cancel();
                    }
                }
                // The marker already went out as the channel's last chunk.
                Some(ExecEvent::Truncated { .. }) => {}
                Some(ExecEvent::Finished(outcome)) => return finish(&handle, outcome).await,
                None => return ServerRunEnd::Aborted("the command's runner stopped".into()),
            },
            changed = cancelled.changed(), if watching => match changed {
                Ok(()) if cancelled.borrow().is_some() => process.cancel(),
                Ok(()) => {}
                Err(_) => watching = false,
            },
        }
    }
}

/// Ends the stream the way the command ended.
async fn finish(handle: &ProducerHandle, outcome: ExecOutcome) -> ServerRunEnd {
    let duration = outcome.duration().map(shown);
    let (sent, end) = match outcome {
        ExecOutcome::Exited { code, .. } => {
            let exit_code = i64::from(code);
            (
                handle
                    .addr
                    .send(Complete {
                        exit_code,
                        duration,
                    })
                    .await
                    .map(|r| r.map(|_| ())),
                ServerRunEnd::Completed { exit_code },
            )
        }
        ExecOutcome::TimedOut { .. } => (
            handle
                .addr
                .send(Fail {
                    outcome: "timeout".into(),
                    duration,
                })
                .await
                .map(|r| r.map(|_| ())),
            ServerRunEnd::TimedOut,
        ),
        // A cancel already closed the stream (that is what killed it).
        ExecOutcome::Killed {
            reason: KillReason::Cancelled,
            ..
        } => return ServerRunEnd::Cancelled,
        other => {
            let reason = describe(&other);
            (
                handle
                    .addr
                    .send(Abort {
                        reason: Some(reason.clone()),
                        duration,
                    })
                    .await
                    .map(|r| r.map(|_| ())),
                ServerRunEnd::Aborted(reason),
            )
        }
    };
    match sent {
        Ok(Ok(())) => {}
        // Ended meanwhile (a cancel raced the exit): the first end stands.
        Ok(Err(e)) => tracing::debug!("stream already ended: {e}"),
        Err(e) => tracing::warn!("could not end a command's stream: {e}"),
    }
    end
}

/// How a command that did not exit by itself ended, as a stream's reason.
pub fn describe(outcome: &ExecOutcome) -> String {
    match outcome {
        ExecOutcome::Signaled { signal, .. } => format!("killed by signal {signal}"),
        ExecOutcome::SpawnFailed { error } => format!("could not start: {error}"),
        ExecOutcome::Lost { error, .. } => format!("lost: {error}"),
        ExecOutcome::Killed { .. } => "killed".into(),
        ExecOutcome::Exited { code, .. } => format!("exit {code}"),
        ExecOutcome::TimedOut { .. } => "timeout".into(),
    }
}
