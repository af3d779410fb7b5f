//! Streaming commands (`sh`, `env`): one [`StreamProducer`] actor per
//! accepted command (run, log path). Output arrives as [`Chunk`] messages
//! (from the `stream` RPC, or from any in-process producer such as a
//! server-side process runner) and the stream ends with exactly one of
//! [`Complete`], [`Abort`] or [`Cancel`]. The mailbox keeps chunk order.
//!
//! Ingest stays linear: chunks are buffered per channel and written in
//! batches that grow with the body (a batch is at least half of what is
//! stored), so each byte is rewritten a bounded number of times; a timer
//! flushes a trickle, and readers ask for a [`Flush`] before they read
//! (`StreamRegistry::FlushRun`).

mod producer;
mod registry;
mod server_run;
mod text;

pub use producer::{
    Abort, Cancel, Chunk, Complete, Fail, Finished, Flush, StreamError, StreamProducer, WatchCancel,
};
pub use registry::{Acquire, CancelRun, Ended, FlushRun, LiveStreams, StreamKey, StreamRegistry};
pub use server_run::{describe, run_on_server, ServerRunEnd};

use crate::run::Engine;
use crate::store::streams::{command_of, running_body, OpenChannels};
use crate::store::{EntryRow, GetRunById, RunRow, StoreError};
use actix::Addr;
use serde_json::{Map, Value};
use tokio::sync::watch;

/// What an in-process producer (a process runner) holds for one stream:
/// where to send output and how it learns of a cancellation.
#[derive(Clone)]
pub struct ProducerHandle {
    pub addr: Addr<StreamProducer>,
    /// Becomes `Some(reason)` when a client cancels the stream; the sender
    /// is dropped (so `changed()` fails) once the stream has ended.
    pub cancelled: watch::Receiver<Option<String>>,
    /// The command line as the model wrote it.
    pub command: String,
}

/// Accepting a `sh`/`env` proposal: creates the command's two channels
/// (streaming, summarized, at the run's next turn), starts its producer and
/// returns the handle. The caller writes the log entry's body
/// ([`opened_body`]) as it resolves the proposal.
pub async fn open(engine: &Engine, run: &RunRow, row: &EntryRow) -> Result<ProducerHandle, String> {
    let attributes: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    let command = command_of(&attributes);
    let err = |e: StoreError| e.to_string();
    let turn = engine
        .store
        .run(GetRunById(run.id))
        .await
        .map_err(err)?
        .next_turn;
    engine
        .store
        .run(OpenChannels {
            run_id: run.id,
            log_path: row.path.clone(),
            command: command.clone(),
            turn,
        })
        .await
        .map_err(err)?;
    let addr = engine
        .streams
        .send(Acquire {
            key: StreamKey {
                run_id: run.id,
                log_path: row.path.clone(),
            },
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let cancelled = addr.send(WatchCancel).await.map_err(|e| e.to_string())?;
    Ok(ProducerHandle {
        addr,
        cancelled,
        command,
    })
}

/// The handle of an open stream's producer (an accepted `sh`/`env`), for
/// the server to feed it.
pub async fn attach(
    engine: &Engine,
    run_id: i64,
    row: &EntryRow,
) -> Result<ProducerHandle, String> {
    let attributes: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    let addr = engine
        .streams
        .send(Acquire {
            key: StreamKey {
                run_id,
                log_path: row.path.clone(),
            },
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let cancelled = addr.send(WatchCancel).await.map_err(|e| e.to_string())?;
    Ok(ProducerHandle {
        addr,
        cancelled,
        command: command_of(&attributes),
    })
}

/// The run was cancelled: each of its open streams is cancelled too, so
/// every client (and the server, for its own commands) stops its command.
pub async fn cancel_run(engine: &Engine, run_id: i64, reason: &str) {
    if let Err(e) = engine
        .streams
        .send(CancelRun {
            run_id,
            reason: reason.to_string(),
        })
        .await
    {
        tracing::warn!(run_id, "could not cancel the run's streams: {e}");
    }
}

/// The accepted log entry's body while its command runs.
pub fn opened_body(row: &EntryRow) -> String {
    let attributes: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    running_body(&command_of(&attributes), &row.path)
}

/// Writes out every buffered chunk of the run's streams, so a reader that
/// follows sees all output received so far. Failures only warn: a reader
/// then sees slightly older output.
pub async fn flush_run(engine: &Engine, run_id: i64) {
    if let Err(e) = engine
        .streams
        .send(FlushRun {
            run_id: Some(run_id),
        })
        .await
    {
        tracing::warn!(run_id, "could not flush the run's streams: {e}");
    }
}
