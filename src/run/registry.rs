//! `RunRegistry`: which `RunActor` serves which run. Every message for a
//! run goes through here ([`ToRun`]), so the registry holds the only
//! address of each actor and can forget an idle one without a message
//! being lost on its way: an actor is forgotten only when it has handled
//! everything the registry forwarded to it.

use super::actor::{Abort, IsBusy, RunActor, Suspend};
use super::Engine;
use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

struct Entry {
    alias: String,
    addr: Addr<RunActor>,
    forwarded: u64,
}

pub struct RunRegistry {
    engine: Arc<Engine>,
    runs: HashMap<i64, Entry>,
}

impl RunRegistry {
    pub fn new(engine: Arc<Engine>) -> Self {
        RunRegistry {
            engine,
            runs: HashMap::new(),
        }
    }
}

impl Actor for RunRegistry {
    type Context = Context<Self>;
}

/// A message for one run's actor, started on first use.
pub struct ToRun<M> {
    pub run_id: i64,
    pub alias: String,
    pub msg: M,
}

impl<M> Message for ToRun<M>
where
    M: Message + Send + 'static,
    M::Result: Send + 'static,
{
    type Result = Result<M::Result, MailboxError>;
}

impl<M> Handler<ToRun<M>> for RunRegistry
where
    M: Message + Send + 'static,
    M::Result: Send + 'static,
    RunActor: Handler<M>,
    <RunActor as Actor>::Context: ToEnvelope<RunActor, M>,
{
    type Result = ResponseFuture<Result<M::Result, MailboxError>>;

    fn handle(&mut self, msg: ToRun<M>, ctx: &mut Context<Self>) -> Self::Result {
        let registry = ctx.address();
        let engine = self.engine.clone();
        let entry = self.runs.entry(msg.run_id).or_insert_with(|| Entry {
            alias: msg.alias.clone(),
            addr: RunActor::new(engine, registry, msg.run_id, msg.alias).start(),
            forwarded: 0,
        });
        entry.forwarded += 1;
        let addr = entry.addr.clone();
        Box::pin(async move { addr.send(msg.msg).await })
    }
}

/// A run actor has no drain and has handled `handled` messages.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Idle {
    pub run_id: i64,
    pub handled: u64,
}

impl Handler<Idle> for RunRegistry {
    type Result = ();
    fn handle(&mut self, msg: Idle, _: &mut Context<Self>) {
        let caught_up = self
            .runs
            .get(&msg.run_id)
            .is_some_and(|e| e.forwarded == msg.handled);
        if caught_up {
            self.runs.remove(&msg.run_id);
        }
    }
}

/// Shutdown: abort every busy run so nothing is left half-done, except a
/// run waiting on a proposal, which waits again after the next start.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AbortAllRuns {
    pub reason: String,
}

impl Handler<AbortAllRuns> for RunRegistry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: AbortAllRuns, ctx: &mut Context<Self>) -> Self::Result {
        let runs: Vec<(i64, String)> = self
            .runs
            .iter()
            .map(|(id, e)| (*id, e.alias.clone()))
            .collect();
        let registry = ctx.address();
        Box::pin(async move {
            for (run_id, alias) in runs {
                let busy = registry
                    .send(ToRun {
                        run_id,
                        alias: alias.clone(),
                        msg: IsBusy,
                    })
                    .await;
                if !matches!(busy, Ok(Ok(true))) {
                    continue;
                }
                let suspended = registry
                    .send(ToRun {
                        run_id,
                        alias: alias.clone(),
                        msg: Suspend,
                    })
                    .await;
                if !matches!(suspended, Ok(Ok(true))) {
                    let _ = registry
                        .send(ToRun {
                            run_id,
                            alias,
                            msg: Abort {
                                reason: msg.reason.clone(),
                            },
                        })
                        .await;
                }
            }
        })
    }
}

/// How many run actors are alive (diagnostics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ActiveRunActors;

impl Handler<ActiveRunActors> for RunRegistry {
    type Result = usize;
    fn handle(&mut self, _: ActiveRunActors, _: &mut Context<Self>) -> usize {
        self.runs.len()
    }
}
