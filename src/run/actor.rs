//! `RunActor`: one per active run. It owns the run's loop state and its
//! drain (the future that claims queued loops FIFO and executes them). The
//! actor reaches the running drain only through the drain's inbox channel;
//! `Abort` drops the drain future at once, which drops any in-flight
//! provider request with it. Every message reaches the actor through the
//! `RunRegistry`; when the actor is idle it says so, and the registry
//! forgets it (it then stops, the registry holding its only address).

use super::registry::{Idle, RunRegistry};
use super::turn::{execute_loop, publish_state, LoopStart};
use super::{Engine, LoopFlags};
use crate::store::{AbortRun, ClaimNextLoop, EnqueueLoop, LoopRow, RunStatus, StoreError};
use crate::tools::Mode;
use actix::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Attempts at claiming a loop before the run is given up (499).
const CLAIM_RETRIES: u32 = 3;

/// Why a run actor refused a message.
#[derive(Debug, thiserror::Error)]
pub enum RunActorError {
    /// The message needs a running loop and none is running.
    #[error("run '{0}' has no running loop")]
    NotRunning(String),
    /// A resume arrived while the run already works.
    #[error("run '{0}' is already running")]
    AlreadyRunning(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the actor tells its running drain, in mailbox order.
#[derive(Debug)]
pub enum DrainEvent {
    /// Another loop was queued: claim again before ending.
    LoopQueued,
    Inject(Inject),
    Resolve(Resolve),
}

/// The drain's side of its channel. Steering and proposal resolutions
/// arrive here as events; the turn executor takes them at its checkpoints.
pub struct DrainInbox {
    rx: mpsc::UnboundedReceiver<DrainEvent>,
    /// A `LoopQueued` arrived and the drain has not seen it yet.
    loop_queued: bool,
    injected: VecDeque<Inject>,
    resolutions: VecDeque<Resolve>,
}

impl DrainInbox {
    fn new(rx: mpsc::UnboundedReceiver<DrainEvent>) -> Self {
        DrainInbox {
            rx,
            loop_queued: false,
            injected: VecDeque::new(),
            resolutions: VecDeque::new(),
        }
    }

    fn keep(&mut self, event: DrainEvent) {
        match event {
            DrainEvent::LoopQueued => self.loop_queued = true,
            DrainEvent::Inject(i) => self.injected.push_back(i),
            DrainEvent::Resolve(r) => self.resolutions.push_back(r),
        }
    }

    /// Takes every event that has arrived; true when a loop was queued
    /// since the last call.
    fn absorb(&mut self) -> bool {
        while let Ok(event) = self.rx.try_recv() {
            self.keep(event);
        }
        std::mem::take(&mut self.loop_queued)
    }

    /// Waits for the next proposal resolution; other events that arrive
    /// meanwhile are kept for their own checkpoints. None when the actor
    /// is gone (nothing can resolve any more). An abort drops the drain,
    /// and this wait with it.
    pub async fn next_resolution(&mut self) -> Option<Resolve> {
        loop {
            while let Ok(event) = self.rx.try_recv() {
                self.keep(event);
            }
            if let Some(r) = self.resolutions.pop_front() {
                return Some(r);
            }
            let event = self.rx.recv().await?;
            self.keep(event);
        }
    }

    /// Prompts steered into the running loop, oldest first.
    pub fn take_injected(&mut self) -> Vec<Inject> {
        self.absorb();
        self.injected.drain(..).collect()
    }
}

struct Drain {
    handle: SpawnHandle,
    events: mpsc::UnboundedSender<DrainEvent>,
}

pub struct RunActor {
    engine: Arc<Engine>,
    registry: Addr<RunRegistry>,
    run_id: i64,
    alias: String,
    drain: Option<Drain>,
    /// Messages fully handled, so the registry can tell whether any it
    /// forwarded are still on their way when the actor reports idle.
    handled: u64,
}

impl RunActor {
    pub fn new(
        engine: Arc<Engine>,
        registry: Addr<RunRegistry>,
        run_id: i64,
        alias: String,
    ) -> Self {
        RunActor {
            engine,
            registry,
            run_id,
            alias,
            drain: None,
            handled: 0,
        }
    }

    /// Starts the drain; `resume` is a loop interrupted by a restart while
    /// it waited on a proposal, taken up again before any queued loop.
    fn start_drain(&mut self, ctx: &mut Context<Self>, resume: Option<LoopRow>) {
        let (events, rx) = mpsc::unbounded_channel();
        let engine = self.engine.clone();
        let run_id = self.run_id;
        let drain = async move {
            let mut inbox = DrainInbox::new(rx);
            let mut failures = 0u32;
            let mut resume = resume;
            loop {
                let (next, start) = match resume.take() {
                    Some(lp) => (Ok(Some(lp)), LoopStart::Resumed),
                    None => (
                        engine.store.run(ClaimNextLoop(run_id)).await,
                        LoopStart::Fresh,
                    ),
                };
                let next: Result<Option<LoopRow>, StoreError> = next;
                match next {
                    Ok(Some(lp)) => {
                        failures = 0;
                        execute_loop(engine.clone(), run_id, lp.clone(), start, &mut inbox).await;
                        // A prompt steered in as the loop ended is never lost:
                        // it becomes the run's next loop.
                        for steered in inbox.take_injected() {
                            let queued = engine
                                .store
                                .run(EnqueueLoop {
                                    run_id,
                                    mode: steered.mode.as_str().into(),
                                    model: lp.model.clone(),
                                    prompt: steered.prompt,
                                    config: serde_json::to_value(&steered.flags)
                                        .unwrap_or_default(),
                                })
                                .await;
                            if let Err(e) = queued {
                                tracing::error!(run_id, "could not queue a steered prompt: {e}");
                            }
                        }
                    }
                    // Nothing left unless a loop was queued meanwhile. This
                    // check and the drain's end run in one poll, so an
                    // Enqueue handled later sees no drain and starts one.
                    Ok(None) if inbox.absorb() => {}
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
                            publish_state(
                                &engine,
                                run_id,
                                run.next_turn - 1,
                                RunStatus::Aborted,
                                None,
                            )
                            .await;
                        }
                        break;
                    }
                }
            }
        };
        let handle = ctx.spawn(drain.into_actor(self).map(|(), act, _| {
            act.drain = None;
            act.report_if_idle();
        }));
        self.drain = Some(Drain { handle, events });
    }

    /// A message is done: count it, and tell the registry when idle so its
    /// map does not grow for the life of the process.
    fn settle(&mut self) {
        self.handled += 1;
        self.report_if_idle();
    }

    fn report_if_idle(&self) {
        if self.drain.is_none() {
            self.registry.do_send(Idle {
                run_id: self.run_id,
                handled: self.handled,
            });
        }
    }

    /// Hands an event to the running drain.
    fn to_drain(&self, event: DrainEvent) -> Result<(), RunActorError> {
        match &self.drain {
            Some(d) if d.events.send(event).is_ok() => Ok(()),
            _ => Err(RunActorError::NotRunning(self.alias.clone())),
        }
    }
}

impl Actor for RunActor {
    type Context = Context<Self>;
}

/// Queue a prompt as a new loop; the run starts draining if idle.
#[derive(Message)]
#[rtype(result = "Result<(), RunActorError>")]
pub struct Enqueue {
    pub mode: Mode,
    pub prompt: String,
    pub model: Option<String>,
    pub flags: LoopFlags,
}

impl Handler<Enqueue> for RunActor {
    type Result = ResponseActFuture<Self, Result<(), RunActorError>>;

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
                    let queued = result.map_err(RunActorError::from).and_then(|_| {
                        if act.drain.is_some() {
                            // The drain may be about to end: tell it there is more.
                            act.to_drain(DrainEvent::LoopQueued)
                        } else {
                            act.start_drain(ctx, None);
                            Ok(())
                        }
                    });
                    act.settle();
                    queued
                }),
        )
    }
}

/// Takes up a loop a restart interrupted while it waited on a proposal:
/// the drain waits on the same proposal, then finishes the turn from what
/// was recorded and goes on.
#[derive(Message)]
#[rtype(result = "Result<(), RunActorError>")]
pub struct Resume {
    pub interrupted: LoopRow,
}

impl Handler<Resume> for RunActor {
    type Result = Result<(), RunActorError>;
    fn handle(&mut self, msg: Resume, ctx: &mut Context<Self>) -> Self::Result {
        let started = if self.drain.is_some() {
            Err(RunActorError::AlreadyRunning(self.alias.clone()))
        } else {
            self.start_drain(ctx, Some(msg.interrupted));
            Ok(())
        };
        self.settle();
        started
    }
}

/// Cancel the run: the drain future is dropped now (with its provider
/// request), queued loops end 499 and every client hears `run/state` 499.
/// Answers whether anything was in flight (decided by the store).
#[derive(Message)]
#[rtype(result = "Result<bool, RunActorError>")]
pub struct Abort {
    pub reason: String,
}

impl Handler<Abort> for RunActor {
    type Result = ResponseActFuture<Self, Result<bool, RunActorError>>;

    fn handle(&mut self, msg: Abort, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(drain) = self.drain.take() {
            ctx.cancel_future(drain.handle);
        }
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
                let was_running = aborted.is_some();
                // A wait on a proposal ended with the drain; its proposals
                // are settled as cancelled and every client is told.
                super::proposals::cancel_pending(&engine, run_id).await;
                // Its commands stop with it (a server-run one was killed
                // when the drain dropped its process handle).
                crate::stream::cancel_run(&engine, run_id, "run cancelled").await;
                if let Some(run) = aborted {
                    publish_state(&engine, run_id, run.next_turn - 1, RunStatus::Aborted, None)
                        .await;
                }
                Ok(was_running)
            }
            .into_actor(self)
            .map(|result, act, _| {
                act.settle();
                result
            }),
        )
    }
}

/// Server shutdown: a run waiting on a proposal is left waiting in the
/// store (the drain is dropped, nothing is written), so the next start
/// resumes it; answers true then. Any other run is left to `Abort`.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Suspend;

impl Handler<Suspend> for RunActor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, _: Suspend, _: &mut Context<Self>) -> Self::Result {
        let store = self.engine.store.clone();
        let run_id = self.run_id;
        Box::pin(
            async move { store.run(crate::store::GetRunById(run_id)).await }
                .into_actor(self)
                .map(|run, act, ctx| {
                    let waiting = run.is_ok_and(|r| r.status == RunStatus::Proposed);
                    let suspended = match act.drain.take() {
                        Some(drain) if waiting => {
                            ctx.cancel_future(drain.handle);
                            tracing::info!(run = %act.alias, "left waiting on its proposal for the next start");
                            true
                        }
                        other => {
                            act.drain = other;
                            false
                        }
                    };
                    act.settle();
                    suspended
                }),
        )
    }
}

/// A prompt steered into the running loop (behaviour: the steering issue).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RunActorError>")]
pub struct Inject {
    pub mode: Mode,
    pub prompt: String,
    pub flags: LoopFlags,
}

/// A decision on a pending proposal. The running loop applies it (see
/// `run::proposals`) and answers on `reply`, when one is given.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RunActorError>")]
pub struct Resolve {
    pub path: String,
    pub action: Resolution,
    pub output: Option<String>,
    pub reply: Option<tokio::sync::oneshot::Sender<super::proposals::ResolveReply>>,
}

/// What a client decided about a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Accept,
    Reject,
    Error,
}

macro_rules! forward_to_drain {
    ($msg:ident) => {
        impl Handler<$msg> for RunActor {
            type Result = Result<(), RunActorError>;
            fn handle(&mut self, msg: $msg, _: &mut Context<Self>) -> Self::Result {
                let delivered = self.to_drain(DrainEvent::$msg(msg));
                self.settle();
                delivered
            }
        }
    };
}

forward_to_drain!(Inject);
forward_to_drain!(Resolve);

/// Whether the run is working right now.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsBusy;

impl Handler<IsBusy> for RunActor {
    type Result = bool;
    fn handle(&mut self, _: IsBusy, _: &mut Context<Self>) -> bool {
        let busy = self.drain.is_some();
        self.settle();
        busy
    }
}
