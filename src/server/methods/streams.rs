//! Stream methods (spec 03 §2): a client running an accepted `sh`/`env`
//! sends its output (`stream`) and how it ended (`stream/completed`,
//! `stream/aborted`); any client of the project may `stream/cancel` it,
//! an orphaned one included. `path` is always the command's log entry.
//! Each call becomes a message to the stream's `StreamProducer`; a call
//! that is refused changes nothing.

use super::entries::{bad, find_run};
use crate::protocol::jsonrpc::RpcError;
use crate::protocol::streams::{
    StreamAbortedParams, StreamAbortedResult, StreamCancelParams, StreamCompletedParams,
    StreamFinishedResult, StreamParams,
};
use crate::protocol::{StatusOk, StatusOkResult};
use crate::server::router::{params, reply, CallCtx, Reply};
use crate::store::paths::{data_base, normalize_path};
use crate::store::RunRow;
use crate::stream::{
    Abort, Acquire, Cancel, Chunk, Complete, Finished, StreamError, StreamKey, StreamProducer,
};
use actix::Addr;
use serde_json::Value;

fn stream_error(e: StreamError) -> RpcError {
    match e {
        StreamError::Store(m) => RpcError::internal(m),
        e => bad(e.to_string()),
    }
}

fn required(value: Option<String>, name: &str) -> Result<String, RpcError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(format!("{name} is required")))
}

/// The run (upstream's `run not found: x` wording) and the normalized log
/// path, refused unless it names a log entry.
async fn target(ctx: &CallCtx, run: String, path: &str) -> Result<(RunRow, String), RpcError> {
    let run = find_run(ctx, Some(run), |alias| format!("run not found: {alias}")).await?;
    let path = normalize_path(path);
    if data_base(&path).is_none() {
        return Err(bad(format!(
            "path must be a log entry (log://turn_N/...); got: {path}"
        )));
    }
    Ok((run, path))
}

async fn producer(
    ctx: &CallCtx,
    run: &RunRow,
    log_path: &str,
) -> Result<Addr<StreamProducer>, RpcError> {
    ctx.app
        .engine
        .streams
        .send(Acquire {
            key: StreamKey {
                run_id: run.id,
                log_path: log_path.to_string(),
            },
        })
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .map_err(stream_error)
}

/// A producer that stopped between lookup and delivery had just ended.
fn gone(path: &str) -> RpcError {
    bad(format!("the stream of {path} has already ended"))
}

/// `stream {run, path, channel, chunk}` → `{status: "ok"}`.
pub async fn stream(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: StreamParams = params("stream", raw)?;
    let run = required(p.run, "run")?;
    let path = required(p.path, "path")?;
    let channel = p
        .channel
        .ok_or_else(|| bad("channel is required (numeric)"))?;
    let chunk = p.chunk.ok_or_else(|| bad("chunk is required"))?;
    let (run, path) = target(&ctx, run, &path).await?;
    let channel = u8::try_from(channel)
        .ok()
        .filter(|c| crate::store::streams::CHANNELS.contains(c))
        .ok_or(StreamError::BadChannel(channel))
        .map_err(stream_error)?;
    let addr = producer(&ctx, &run, &path).await?;
    addr.send(Chunk {
        channel,
        bytes: chunk.into_bytes(),
    })
    .await
    .map_err(|_| gone(&path))?
    .map_err(stream_error)?;
    reply(&StatusOkResult::default())
}

async fn finish<M>(ctx: &CallCtx, run: String, path: String, msg: M) -> Result<Finished, RpcError>
where
    M: actix::Message<Result = Result<Finished, StreamError>> + Send + 'static,
    StreamProducer: actix::Handler<M>,
{
    let (run, path) = target(ctx, run, &path).await?;
    let addr = producer(ctx, &run, &path).await?;
    addr.send(msg)
        .await
        .map_err(|_| gone(&path))?
        .map_err(stream_error)
}

/// `stream/completed {run, path, exit_code?, duration?}` → `{ok, channels}`.
pub async fn completed(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: StreamCompletedParams = params("stream/completed", raw)?;
    let run = required(p.run, "run")?;
    let path = required(p.path, "path")?;
    let msg = Complete {
        exit_code: p.exit_code.unwrap_or(0),
        duration: p.duration,
    };
    let done = finish(&ctx, run, path, msg).await?;
    reply(&StreamFinishedResult {
        ok: true,
        channels: done.channels as i64,
    })
}

/// `stream/aborted {run, path, reason?, duration?}` → `{status: "ok", channels}`.
pub async fn aborted(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: StreamAbortedParams = params("stream/aborted", raw)?;
    let run = required(p.run, "run")?;
    let path = required(p.path, "path")?;
    let msg = Abort {
        reason: p.reason,
        duration: p.duration,
    };
    let done = finish(&ctx, run, path, msg).await?;
    reply(&StreamAbortedResult {
        status: StatusOk::Ok,
        channels: done.channels as i64,
    })
}

/// `stream/cancel {run, path, reason?}` → `{ok, channels}`; every client
/// of the project gets `stream/cancelled`.
pub async fn cancel(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: StreamCancelParams = params("stream/cancel", raw)?;
    let run = required(p.run, "run")?;
    let path = required(p.path, "path")?;
    let done = finish(&ctx, run, path, Cancel { reason: p.reason }).await?;
    reply(&StreamFinishedResult {
        ok: true,
        channels: done.channels as i64,
    })
}
