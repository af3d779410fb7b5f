//! `RunActor`: one per active run. It owns the run's drain (the future
//! that claims queued loops FIFO and executes them); `Abort` drops that
//! future at once, which drops any in-flight provider request with it.

use super::turn::{execute_loop, publish_state};
use super::{Engine, LoopFlags};
use crate::store::{AbortRun, EnqueueLoop, LoopRow, StoreError};
use crate::tools::Mode;
use actix::prelude::*;
use std::sync::Arc;

/// Attempts at claiming a loop before the run is given up (499).
const CLAIM_RETRIES: u32 = 3;

pub struct RunActor {
    engine: Arc<Engine>,
    run_id: i64,
    alias: String,
    drain: Option<SpawnHandle>,
    /// A loop was queued while the drain was finishing: drain again.
    requeued: bool,
}

impl RunActor {
    pub fn new(engine: Arc<Engine>, run_id: i64, alias: String) -> Self {
        RunActor {
            engine,
            run_id,
            alias,
            drain: None,
            requeued: false,
        }
    }

    fn start_drain(&mut self, ctx: &mut Context<Self>) {
        self.requeued = false;
        let engine = self.engine.clone();
        let run_id = self.run_id;
        let drain = async move {
            let mut failures = 0u32;
            loop {
                let next: Result<Option<LoopRow>, StoreError> =
                    engine.store.run(crate::store::ClaimNextLoop(run_id)).await;
                match next {
                    Ok(Some(lp)) => {
                        failures = 0;
                        execute_loop(engine.clone(), run_id, lp).await;
                    }
                    Ok(None) => break,
                    // A busy database (another client holding a lock) is
                    // retried; a run is never left queued without a word.
                    Err(e) if failures < CLAIM_RETRIES => {
                        failures += 1;
                        tracing::warn!(run_id, "could not claim the next loop (retrying): {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(
                            250 * u64::from(failures),
                        ))
                        .await;
                    }
                    Err(e) => {
                        tracing::error!(run_id, "could not claim the next loop: {e}");
                        let aborted = engine
                            .store
                            .run(AbortRun {
                                run_id,
                                reason: format!("could not claim the next loop: {e}"),
                            })
                            .await;
                        if let Ok(Some(run)) = aborted {
                            publish_state(&engine, run_id, run.next_turn - 1, 499, None).await;
                        }
                        break;
                    }
                }
            }
        };
        let handle = ctx.spawn(drain.into_actor(self).map(|(), act, ctx| {
            act.drain = None;
            if act.requeued {
                act.start_drain(ctx);
            }
        }));
        self.drain = Some(handle);
    }
}

impl Actor for RunActor {
    type Context = Context<Self>;
}

/// Queue a prompt as a new loop; the run starts draining if idle.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Enqueue {
    pub mode: Mode,
    pub prompt: String,
    pub model: Option<String>,
    pub flags: LoopFlags,
}

impl Handler<Enqueue> for RunActor {
    type Result = ResponseActFuture<Self, Result<(), StoreError>>;

    fn handle(&mut self, msg: Enqueue, _: &mut Context<Self>) -> Self::Result {
        let store = self.engine.store.clone();
        let op = EnqueueLoop {
            run_id: self.run_id,
            mode: msg.mode.as_str().into(),
            model: msg.model,
            prompt: msg.prompt,
            config: serde_json::to_value(&msg.flags).unwrap_or_default(),
        };
        Box::pin(
            async move { store.run(op).await }
                .into_actor(self)
                .map(|result, act, ctx| {
                    result?;
                    if act.drain.is_some() {
                        act.requeued = true;
                    } else {
                        act.start_drain(ctx);
                    }
                    Ok(())
                }),
        )
    }
}

/// Cancel the run: the drain future is dropped now (with its provider
/// request), queued loops end 499 and every client hears `run/state` 499.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Abort {
    pub reason: String,
}

impl Handler<Abort> for RunActor {
    type Result = ResponseActFuture<Self, Result<(), StoreError>>;

    fn handle(&mut self, msg: Abort, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(handle) = self.drain.take() {
            ctx.cancel_future(handle);
        }
        self.requeued = false;
        tracing::info!(run = %self.alias, "aborting: {}", msg.reason);
        let engine = self.engine.clone();
        let run_id = self.run_id;
        Box::pin(
            async move {
                let aborted = engine
                    .store
                    .run(AbortRun {
                        run_id,
                        reason: msg.reason,
                    })
                    .await?;
                if let Some(run) = aborted {
                    publish_state(&engine, run_id, run.next_turn - 1, 499, None).await;
                }
                Ok(())
            }
            .into_actor(self),
        )
    }
}

/// Whether the run is working right now.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsBusy;

impl Handler<IsBusy> for RunActor {
    type Result = bool;
    fn handle(&mut self, _: IsBusy, _: &mut Context<Self>) -> bool {
        self.drain.is_some()
    }
}
