//! `StreamRegistry`: the one holder of every live `StreamProducer`'s
//! address, by (run, log path). The stream RPCs and in-process producers
//! find a stream's producer here; a stream whose entries say it is open but
//! has no producer (none should exist after the boot sweep) gets one on
//! first use, so it can always be finished or cancelled.

use super::producer::{Flush, ProducerSetup, StreamError, StreamProducer};
use crate::hub::Hub;
use crate::store::paths::normalize_path;
use crate::store::streams::{channel_paths, GetStreamStatus, StreamStatus};
use crate::store::{GetRunById, Store};
use actix::prelude::*;
use std::collections::HashMap;

/// One stream: the run and its command's log entry path (normalized).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub run_id: i64,
    pub log_path: String,
}

pub struct StreamRegistry {
    store: Store,
    hub: Addr<Hub>,
    token_divisor: f64,
    producers: HashMap<StreamKey, Addr<StreamProducer>>,
}

impl StreamRegistry {
    pub fn new(store: Store, hub: Addr<Hub>, token_divisor: f64) -> StreamRegistry {
        StreamRegistry {
            store,
            hub,
            token_divisor,
            producers: HashMap::new(),
        }
    }
}

impl Actor for StreamRegistry {
    type Context = Context<Self>;
}

/// The producer of an open stream (started if it has none yet); an error
/// when the path is no stream of the run or the stream has ended.
#[derive(Message)]
#[rtype(result = "Result<Addr<StreamProducer>, StreamError>")]
pub struct Acquire {
    pub key: StreamKey,
}

impl Handler<Acquire> for StreamRegistry {
    type Result = ResponseActFuture<Self, Result<Addr<StreamProducer>, StreamError>>;
    fn handle(&mut self, msg: Acquire, _: &mut Context<Self>) -> Self::Result {
        let key = StreamKey {
            run_id: msg.key.run_id,
            log_path: normalize_path(&msg.key.log_path),
        };
        if let Some(addr) = self.producers.get(&key).filter(|a| a.connected()) {
            return Box::pin(fut::ready(Ok(addr.clone())));
        }
        let store = self.store.clone();
        let lookup = key.clone();
        let store_err = |e: crate::store::StoreError| StreamError::Store(e.to_string());
        Box::pin(
            async move {
                let status = store
                    .run(GetStreamStatus {
                        run_id: lookup.run_id,
                        log_path: lookup.log_path.clone(),
                    })
                    .await
                    .map_err(store_err)?;
                let run = store
                    .run(GetRunById(lookup.run_id))
                    .await
                    .map_err(store_err)?;
                Ok((status, run))
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                let (status, run) = res?;
                match status {
                    StreamStatus::NotAStream => Err(StreamError::NotAStream(key.log_path)),
                    StreamStatus::Finished { state } => Err(StreamError::Finished {
                        path: key.log_path,
                        state: state.to_string(),
                    }),
                    StreamStatus::Open { .. } => {
                        // Another Acquire may have started it meanwhile.
                        if let Some(addr) = act.producers.get(&key).filter(|a| a.connected()) {
                            return Ok(addr.clone());
                        }
                        let channel_paths = channel_paths(&key.log_path)
                            .ok_or_else(|| StreamError::NotAStream(key.log_path.clone()))?;
                        let addr = StreamProducer::new(ProducerSetup {
                            store: act.store.clone(),
                            hub: act.hub.clone(),
                            registry: ctx.address().recipient(),
                            key: key.clone(),
                            project_id: run.project_id,
                            run_alias: run.alias,
                            token_divisor: act.token_divisor,
                            channel_paths,
                        })
                        .start();
                        act.producers.insert(key, addr.clone());
                        Ok(addr)
                    }
                }
            }),
        )
    }
}

/// A producer's stream ended; it is forgotten.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ended {
    pub key: StreamKey,
}

impl Handler<Ended> for StreamRegistry {
    type Result = ();
    fn handle(&mut self, msg: Ended, _: &mut Context<Self>) {
        self.producers.remove(&msg.key);
    }
}

/// Flushes every stream of a run (every stream with `run_id` None, as
/// the server stops); answers once their buffered output is in the store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushRun {
    pub run_id: Option<i64>,
}

impl Handler<FlushRun> for StreamRegistry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: FlushRun, _: &mut Context<Self>) -> Self::Result {
        let producers: Vec<Addr<StreamProducer>> = self
            .producers
            .iter()
            .filter(|(k, _)| msg.run_id.is_none_or(|r| k.run_id == r))
            .map(|(_, a)| a.clone())
            .collect();
        Box::pin(async move {
            let flushes = producers.iter().map(|p| p.send(Flush));
            for res in futures_util::future::join_all(flushes).await {
                // A producer that ended meanwhile has written everything.
                if let Ok(Err(e)) = res {
                    tracing::warn!("could not flush a stream: {e}");
                }
            }
        })
    }
}

/// Cancels every open stream of a run (the run was cancelled).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelRun {
    pub run_id: i64,
    pub reason: String,
}

impl Handler<CancelRun> for StreamRegistry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: CancelRun, _: &mut Context<Self>) -> Self::Result {
        let producers: Vec<Addr<StreamProducer>> = self
            .producers
            .iter()
            .filter(|(k, _)| k.run_id == msg.run_id)
            .map(|(_, a)| a.clone())
            .collect();
        Box::pin(async move {
            for p in producers {
                let cancel = super::producer::Cancel {
                    reason: Some(msg.reason.clone()),
                };
                // A stream that ended meanwhile keeps its end.
                if let Ok(Err(e)) = p.send(cancel).await {
                    tracing::debug!("stream already ended: {e}");
                }
            }
        })
    }
}

/// How many producers are live (tests, diagnostics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveStreams;

impl Handler<LiveStreams> for StreamRegistry {
    type Result = usize;
    fn handle(&mut self, _: LiveStreams, _: &mut Context<Self>) -> usize {
        self.producers.len()
    }
}
