//! The `StreamProducer` actor: one stream's buffered channels, its flush
//! schedule and its single ending.

use super::registry::{Ended, StreamKey};
use super::text::take_text;
use crate::hub::{Hub, Publish};
use crate::protocol::notifications::{Notification, StreamCancelledNotification};
use crate::store::streams::{AppendChannels, FinishStream, StreamEnding, CHANNELS};
use crate::store::{EntryState, Store};
use actix::prelude::*;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A batch is written once it holds this much...
const MIN_BATCH: usize = 64 * 1024;
/// ...or half of what the channel already stores (so rewriting the body
/// per batch costs at most three times the bytes streamed), up to this.
const MAX_BATCH: usize = 8 * 1024 * 1024;
/// A trickle is written after this pause at the latest...
const MIN_PAUSE: Duration = Duration::from_millis(200);
/// ...or after this many times the last write took, so timed writes of a
/// large body never take more than a tenth of the time.
const PAUSE_FACTOR: u32 = 10;

/// Why a stream message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamError {
    #[error("path must be a streaming command's log entry (log://turn_N/sh/... or log://turn_N/env/...) of this run; got: {0}")]
    NotAStream(String),
    #[error("the stream of {path} has already ended ({state})")]
    Finished { path: String, state: String },
    #[error("channel must be 1 (stdout) or 2 (stderr); got: {0}")]
    BadChannel(i64),
    #[error("{0}")]
    Store(String),
}

/// Output bytes on one channel (1 stdout, 2 stderr), in order.
#[derive(Message)]
#[rtype(result = "Result<(), StreamError>")]
pub struct Chunk {
    pub channel: u8,
    pub bytes: Vec<u8>,
}

/// The command exited. `duration` is shown in the log entry as given.
#[derive(Message)]
#[rtype(result = "Result<Finished, StreamError>")]
pub struct Complete {
    pub exit_code: i64,
    pub duration: Option<String>,
}

/// The producer killed the command (client side: `stream/aborted`).
#[derive(Message)]
#[rtype(result = "Result<Finished, StreamError>")]
pub struct Abort {
    pub reason: Option<String>,
    pub duration: Option<String>,
}

/// The server ended a command it ran itself (yolo), e.g. on its time
/// limit: the channels fail with `outcome`.
#[derive(Message)]
#[rtype(result = "Result<Finished, StreamError>")]
pub struct Fail {
    pub outcome: String,
    pub duration: Option<String>,
}

/// Someone asked the command to stop (`stream/cancel`): the channels close
/// at once, `stream/cancelled` goes to every client of the project and the
/// cancel watch fires, so whoever runs the process kills it.
#[derive(Message)]
#[rtype(result = "Result<Finished, StreamError>")]
pub struct Cancel {
    pub reason: Option<String>,
}

/// Writes out what is buffered (readers send it before they read).
#[derive(Message)]
#[rtype(result = "Result<(), StreamError>")]
pub struct Flush;

/// A receiver that becomes `Some(reason)` on a cancel; its sender drops
/// when the stream ends any other way.
#[derive(Message)]
#[rtype(result = "watch::Receiver<Option<String>>")]
pub struct WatchCancel;

/// How many channels an ending closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub channels: usize,
}

struct Channel {
    path: String,
    pending: Vec<u8>,
    stored: usize,
}

impl Channel {
    fn due(&self) -> bool {
        self.pending.len() >= (self.stored / 2).clamp(MIN_BATCH, MAX_BATCH)
    }
}

pub struct StreamProducer {
    store: Store,
    hub: Addr<Hub>,
    registry: Recipient<Ended>,
    key: StreamKey,
    project_id: i64,
    run_alias: String,
    token_divisor: f64,
    channels: Vec<Channel>,
    /// Set as an ending starts; every later message is refused.
    ended: Option<EntryState>,
    cancel: watch::Sender<Option<String>>,
    timer: Option<SpawnHandle>,
    pause: Duration,
}

/// What a producer needs to know of its stream.
pub struct ProducerSetup {
    pub store: Store,
    pub hub: Addr<Hub>,
    pub registry: Recipient<Ended>,
    pub key: StreamKey,
    pub project_id: i64,
    pub run_alias: String,
    pub token_divisor: f64,
    pub channel_paths: Vec<String>,
}

impl StreamProducer {
    pub fn new(s: ProducerSetup) -> StreamProducer {
        StreamProducer {
            store: s.store,
            hub: s.hub,
            registry: s.registry,
            key: s.key,
            project_id: s.project_id,
            run_alias: s.run_alias,
            token_divisor: s.token_divisor,
            channels: s
                .channel_paths
                .into_iter()
                .map(|path| Channel {
                    path,
                    pending: Vec::new(),
                    stored: 0,
                })
                .collect(),
            ended: None,
            cancel: watch::channel(None).0,
            timer: None,
            pause: MIN_PAUSE,
        }
    }

    fn refusal(&self, state: EntryState) -> StreamError {
        StreamError::Finished {
            path: self.key.log_path.clone(),
            state: state.to_string(),
        }
    }

    /// Takes every channel's buffered text and writes it in one store
    /// operation; `last` also writes an incomplete trailing character.
    fn flush(
        &mut self,
        ctx: &mut Context<Self>,
        last: bool,
    ) -> impl ActorFuture<Self, Output = Result<(), StreamError>> + 'static {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let batches: Vec<(String, String)> = self
            .channels
            .iter_mut()
            .filter_map(|c| {
                let text = take_text(&mut c.pending, last);
                c.stored += text.len();
                (!text.is_empty()).then(|| (c.path.clone(), text))
            })
            .collect();
        let store = self.store.clone();
        let run_id = self.key.run_id;
        async move {
            if batches.is_empty() {
                return Ok(None);
            }
            let started = Instant::now();
            store
                .run(AppendChannels { run_id, batches })
                .await
                .map(|_| Some(started.elapsed()))
                .map_err(|e| StreamError::Store(e.to_string()))
        }
        .into_actor(self)
        .map(|res, act, _| {
            if let Some(took) = res? {
                act.pause = MIN_PAUSE.max(took * PAUSE_FACTOR);
            }
            Ok(())
        })
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.timer.is_some() {
            return;
        }
        self.timer = Some(ctx.run_later(self.pause, |act, ctx| {
            act.timer = None;
            let flush = act.flush(ctx, false).map(|res, act, _| {
                if let Err(e) = res {
                    tracing::warn!(path = %act.key.log_path, "could not write stream output: {e}");
                }
            });
            ctx.wait(flush);
        }));
    }

    /// Flushes, closes the channels and the log entry, then stops.
    fn end(
        &mut self,
        ending: StreamEnding,
        ctx: &mut Context<Self>,
    ) -> AtomicResponse<Self, Result<Finished, StreamError>> {
        if let Some(state) = self.ended {
            let refused = self.refusal(state);
            return AtomicResponse::new(Box::pin(fut::ready(Err(refused))));
        }
        self.ended = Some(ending.channel_state().0);
        let store = self.store.clone();
        let finish = FinishStream {
            run_id: self.key.run_id,
            log_path: self.key.log_path.clone(),
            ending: ending.clone(),
            token_divisor: self.token_divisor,
        };
        let work = self
            .flush(ctx, true)
            .then(move |flushed, act, _| {
                async move {
                    flushed?;
                    store
                        .run(finish)
                        .await
                        .map_err(|e| StreamError::Store(e.to_string()))
                }
                .into_actor(act)
            })
            .map(move |res, act, ctx| match res {
                Ok(channels) => {
                    if let StreamEnding::Cancelled { reason } = ending {
                        act.announce_cancel(reason);
                    }
                    act.registry.do_send(Ended {
                        key: act.key.clone(),
                    });
                    ctx.stop();
                    Ok(Finished { channels })
                }
                Err(e) => {
                    act.ended = None;
                    Err(e)
                }
            });
        AtomicResponse::new(Box::pin(work))
    }

    fn announce_cancel(&mut self, reason: Option<String>) {
        self.cancel
            .send_replace(Some(reason.clone().unwrap_or_else(|| "cancelled".into())));
        let payload = StreamCancelledNotification {
            run: self.run_alias.clone(),
            path: self.key.log_path.clone(),
            reason,
        };
        match Notification::of(&payload) {
            Ok(notification) => self.hub.do_send(Publish {
                project_id: self.project_id,
                notification,
            }),
            Err(e) => tracing::error!("could not encode stream/cancelled: {e}"),
        }
    }
}

impl Actor for StreamProducer {
    type Context = Context<Self>;
}

impl Handler<Chunk> for StreamProducer {
    type Result = AtomicResponse<Self, Result<(), StreamError>>;
    fn handle(&mut self, msg: Chunk, ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r| AtomicResponse::new(Box::pin(fut::ready(r)));
        if let Some(state) = self.ended {
            return ready(Err(self.refusal(state)));
        }
        let Some(i) = CHANNELS.iter().position(|c| *c == msg.channel) else {
            return ready(Err(StreamError::BadChannel(msg.channel.into())));
        };
        let Some(channel) = self.channels.get_mut(i) else {
            return ready(Err(StreamError::BadChannel(msg.channel.into())));
        };
        channel.pending.extend_from_slice(&msg.bytes);
        if channel.due() {
            return AtomicResponse::new(Box::pin(self.flush(ctx, false)));
        }
        self.schedule(ctx);
        ready(Ok(()))
    }
}

impl Handler<Flush> for StreamProducer {
    type Result = AtomicResponse<Self, Result<(), StreamError>>;
    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.flush(ctx, false)))
    }
}

impl Handler<Complete> for StreamProducer {
    type Result = AtomicResponse<Self, Result<Finished, StreamError>>;
    fn handle(&mut self, msg: Complete, ctx: &mut Context<Self>) -> Self::Result {
        self.end(
            StreamEnding::Completed {
                exit_code: msg.exit_code,
                duration: msg.duration,
            },
            ctx,
        )
    }
}

impl Handler<Abort> for StreamProducer {
    type Result = AtomicResponse<Self, Result<Finished, StreamError>>;
    fn handle(&mut self, msg: Abort, ctx: &mut Context<Self>) -> Self::Result {
        self.end(
            StreamEnding::Aborted {
                reason: msg.reason,
                duration: msg.duration,
            },
            ctx,
        )
    }
}

impl Handler<Fail> for StreamProducer {
    type Result = AtomicResponse<Self, Result<Finished, StreamError>>;
    fn handle(&mut self, msg: Fail, ctx: &mut Context<Self>) -> Self::Result {
        self.end(
            StreamEnding::Failed {
                outcome: msg.outcome,
                duration: msg.duration,
            },
            ctx,
        )
    }
}

impl Handler<Cancel> for StreamProducer {
    type Result = AtomicResponse<Self, Result<Finished, StreamError>>;
    fn handle(&mut self, msg: Cancel, ctx: &mut Context<Self>) -> Self::Result {
        self.end(StreamEnding::Cancelled { reason: msg.reason }, ctx)
    }
}

impl Handler<WatchCancel> for StreamProducer {
    type Result = MessageResult<WatchCancel>;
    fn handle(&mut self, _: WatchCancel, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cancel.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(pending: usize, stored: usize) -> Channel {
        Channel {
            path: "sh://turn_1/x_1".into(),
            pending: vec![b'x'; pending],
            stored,
        }
    }

    #[test]
    fn batches_grow_with_the_body_so_rewrites_stay_linear() {
        assert!(!channel(MIN_BATCH - 1, 0).due());
        assert!(channel(MIN_BATCH, 0).due());
        // A 10 MiB body waits for 5 MiB before it is rewritten again.
        let stored = 10 * 1024 * 1024;
        assert!(!channel(stored / 2 - 1, stored).due());
        assert!(channel(stored / 2, stored).due());
        // Past 16 MiB the batch stops growing, bounding what is buffered.
        assert!(channel(MAX_BATCH, 64 * 1024 * 1024).due());
    }
}
