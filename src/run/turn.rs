//! One loop of a run, turn by turn: materialize, call the model, parse,
//! RECORD, DISPATCH, resolve the update, decide.

use super::actor::DrainInbox;
use super::cycles::CycleDetector;
use super::report::{run_state, FreshTurn};
use super::step::TurnSteps;
use super::verdict::{decide, Verdict};
use super::{Engine, LoopFlags};
use crate::llm::Provider;
use crate::store::RunStatus;
use crate::store::{
    FinishLoop, GetInterruptedTurn, GetModel, GetRunById, LogError, LoopRow, RunRow,
    SetModelContextLength, SetRunStatus, StoreError,
};
use crate::tools::{Mode, ToolSet};
use futures_util::FutureExt;
use serde_json::json;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// How a loop ended: the status it leaves the run in, and what the final
/// `run/state` reports.
#[derive(Debug, Clone)]
pub struct LoopEnd {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub turn: i64,
    pub fresh: Option<FreshTurn>,
}

/// What a run needs to call its model.
pub(super) struct ModelBinding {
    pub provider: Arc<dyn Provider>,
    pub wire_model: String,
    pub context_size: Option<i64>,
    pub temperature: Option<f64>,
    /// The temperature the run or loop asked for, without the
    /// `RUMMY_TEMPERATURE` fallback: what `run/state` reports ("only if
    /// set", as upstream).
    pub chosen_temperature: Option<f64>,
}

/// How a loop begins: claimed from the queue, or taken up after a restart
/// interrupted it while its last turn waited on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopStart {
    Fresh,
    Resumed,
}

/// Runs one claimed loop to its end and records the outcome. A panic
/// anywhere in the loop ends this run 500 and nothing else: the server and
/// every other run go on.
pub async fn execute_loop(
    engine: Arc<Engine>,
    run_id: i64,
    lp: LoopRow,
    start: LoopStart,
    inbox: &mut DrainInbox,
) -> LoopEnd {
    let driven = AssertUnwindSafe(drive_loop(&engine, run_id, &lp, start, inbox))
        .catch_unwind()
        .await;
    let failure = match driven {
        Ok(Ok(end)) => Ok(end),
        Ok(Err(message)) => Err(message),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(run_id, "loop panicked: {what}");
            Err(format!("Internal error: the run's loop panicked: {what}"))
        }
    };
    let end = match failure {
        Ok(end) => end,
        Err(message) => {
            tracing::warn!(run_id, "loop failed: {message}");
            failed_end(&engine, run_id, &lp, message).await
        }
    };
    finish_loop(&engine, run_id, &lp, &end).await;
    end
}

/// Records a loop's failure as a 500 error entry; the run ends 500.
async fn failed_end(engine: &Engine, run_id: i64, lp: &LoopRow, message: String) -> LoopEnd {
    let turn = match engine.store.run(GetRunById(run_id)).await {
        Ok(run) => (run.next_turn - 1).max(0),
        Err(_) => 0,
    };
    if let Err(e) = engine
        .store
        .run(LogError {
            run_id,
            turn,
            loop_id: Some(lp.id),
            message: message.clone(),
            status: 500,
            attributes: Default::default(),
        })
        .await
    {
        tracing::error!(run_id, "could not record the loop's failure: {e}");
    }
    LoopEnd {
        status: RunStatus::Failed,
        reason: Some(message),
        turn,
        fresh: None,
    }
}

/// Sets the run's final status and completes the loop in one store
/// operation, then tells every client. A loop left at 102 would block every
/// later loop of the run, so a failed write (a busy database) is retried.
async fn finish_loop(engine: &Engine, run_id: i64, lp: &LoopRow, end: &LoopEnd) {
    let result = json!({ "status": end.status, "reason": end.reason });
    for attempt in 1..=3u64 {
        match engine
            .store
            .run(FinishLoop {
                run_id,
                loop_id: lp.id,
                status: end.status,
                result: result.clone(),
            })
            .await
        {
            Ok(true) => {
                publish_state(engine, run_id, end.turn, end.status, end.fresh.as_ref()).await;
                return;
            }
            // An abort ended the loop first and has told the clients.
            Ok(false) => return,
            Err(e) => {
                tracing::error!(
                    run_id,
                    "could not finish loop {} (attempt {attempt}): {e}",
                    lp.id
                );
                tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
            }
        }
    }
}

/// Publishes `run/state` for a run to its project.
pub async fn publish_state(
    engine: &Engine,
    run_id: i64,
    turn: i64,
    status: RunStatus,
    fresh: Option<&FreshTurn>,
) {
    publish_state_from(engine, run_id, turn, status, fresh, None).await
}

/// `publish_state` from the turn loop, which keeps the run's scanned rows.
async fn publish_state_from(
    engine: &Engine,
    run_id: i64,
    turn: i64,
    status: RunStatus,
    fresh: Option<&FreshTurn>,
    caches: Option<&super::caches::RunCaches>,
) {
    let result = async {
        let run = engine.store.run(GetRunById(run_id)).await?;
        let state = run_state(engine, &run, turn, status, fresh, caches).await?;
        Ok::<_, StoreError>((run.project_id, state))
    }
    .await;
    let sent = result
        .map_err(|e| e.to_string())
        .and_then(|(project, state)| {
            engine
                .publish_payload(project, &state)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = sent {
        tracing::error!(run_id, "could not build run/state: {e}");
    }
}

async fn bind_model(
    engine: &Engine,
    run: &RunRow,
    flags: &LoopFlags,
) -> Result<ModelBinding, String> {
    let alias = run.model.clone().unwrap_or_default();
    let model = engine
        .store
        .run(GetModel(alias.clone()))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "Unknown model alias '{alias}'. Define RUMMY_MODEL_{alias} in your environment."
            )
        })?;
    let (provider, wire_model) = engine
        .providers
        .resolve(&model.actual)
        .map_err(|e| e.to_string())?;
    let discovered = match model.context_length {
        Some(n) => Some(n),
        None => {
            let found = engine
                .providers
                .context_size(provider.as_ref(), &wire_model)
                .await
                .map_err(|e| {
                    format!(
                        "Could not determine the context size of {}: {e}",
                        model.actual
                    )
                })?;
            if let Some(n) = found {
                engine
                    .store
                    .run(SetModelContextLength {
                        alias: alias.clone(),
                        context_length: n,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            found
        }
    };
    let context_size = match (discovered, run.context_limit) {
        (Some(c), Some(l)) => Some(c.min(l)),
        (c, l) => c.or(l),
    };
    Ok(ModelBinding {
        provider,
        wire_model,
        context_size,
        temperature: flags
            .temperature
            .or(run.temperature)
            .or(engine.config.temperature),
        chosen_temperature: flags.temperature.or(run.temperature),
    })
}

async fn drive_loop(
    engine: &Arc<Engine>,
    run_id: i64,
    lp: &LoopRow,
    start: LoopStart,
    inbox: &mut DrainInbox,
) -> Result<LoopEnd, String> {
    let err = |e: StoreError| e.to_string();
    let run = engine.store.run(GetRunById(run_id)).await.map_err(err)?;
    // A resumed loop is still waiting on its proposal: its run stays 202.
    if run.status != RunStatus::Running && start == LoopStart::Fresh {
        engine
            .store
            .run(SetRunStatus {
                run_id,
                status: RunStatus::Running,
            })
            .await
            .map_err(err)?;
    }
    let flags: LoopFlags = lp
        .config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let mode = Mode::parse(&lp.mode).unwrap_or(Mode::Ask);
    let binding = bind_model(engine, &run, &flags).await?;
    let mut interrupted = match start {
        LoopStart::Fresh => {
            if !flags.no_repo.unwrap_or(false) {
                scan_project(engine, &run).await?;
            }
            super::editor::attach(engine, &run).await;
            None
        }
        LoopStart::Resumed => Some(
            engine
                .store
                .run(GetInterruptedTurn {
                    run_id,
                    loop_id: lp.id,
                })
                .await
                .map_err(err)?
                .ok_or("cannot resume the loop: its interrupted turn left no record")?,
        ),
    };
    let first = interrupted.as_ref().map_or(1, |t| t.loop_turns.max(1));
    // Strikes and fingerprints are kept per loop, as upstream's error
    // plugin does (a resumed loop starts them afresh).
    let mut streak = 0;
    let mut cycles = CycleDetector::new(engine.config.min_cycles, engine.config.max_cycle_period);
    let caches = super::caches::RunCaches::default();
    for iteration in first..=engine.config.max_turns.max(first) {
        let steps = TurnSteps {
            engine,
            run: &run,
            lp,
            mode,
            binding: &binding,
            caches: &caches,
        };
        let outcome = match interrupted.take() {
            Some(turn) => steps.resume(turn, &mut cycles, inbox).await?,
            None => steps.run(iteration, &mut cycles, inbox).await?,
        };
        let verdict = decide(outcome.result, &mut streak, engine.config.max_strikes);
        match verdict {
            Verdict::Continue => {
                publish_state_from(
                    engine,
                    run_id,
                    outcome.turn,
                    RunStatus::Running,
                    Some(&outcome.fresh),
                    Some(&caches),
                )
                .await;
            }
            Verdict::End { status, reason } => {
                if let Some(r) = &reason {
                    engine
                        .store
                        .run(LogError {
                            run_id,
                            turn: outcome.turn,
                            loop_id: Some(lp.id),
                            message: r.clone(),
                            status: 400,
                            attributes: Default::default(),
                        })
                        .await
                        .map_err(err)?;
                }
                return Ok(LoopEnd {
                    status,
                    reason,
                    turn: outcome.turn,
                    fresh: Some(outcome.fresh),
                });
            }
        }
    }
    // The per-loop turn cap ends runaway loops without an error entry.
    let turn = engine
        .store
        .run(GetRunById(run_id))
        .await
        .map_err(err)?
        .next_turn
        - 1;
    Ok(LoopEnd {
        status: RunStatus::Aborted,
        reason: Some(format!("Turn limit ({}) reached.", engine.config.max_turns)),
        turn,
        fresh: None,
    })
}

/// Brings the project's files into the run (only what changed since the
/// last scan). The walk runs on a blocking thread.
async fn scan_project(engine: &Engine, run: &RunRow) -> Result<(), String> {
    let err = |e: StoreError| e.to_string();
    let Some(root) = engine
        .store
        .run(crate::store::ProjectRoot(run.project_id))
        .await
        .map_err(err)?
    else {
        return Ok(());
    };
    let root = std::path::PathBuf::from(root);
    if !root.is_dir() {
        tracing::debug!(run = %run.alias, "project root {} is not a directory; no files scanned", root.display());
        return Ok(());
    }
    let constraints = engine
        .store
        .run(crate::store::ListConstraints(run.project_id))
        .await
        .map_err(err)?;
    let known = engine
        .store
        .run(crate::store::FileIndex(run.id))
        .await
        .map_err(err)?;
    let scan = tokio::task::spawn_blocking(move || crate::files::scan(&root, &known, &constraints))
        .await
        .map_err(|e| format!("project scan failed: {e}"))?;
    tracing::debug!(
        run = %run.alias,
        changed = scan.changed.len(),
        unchanged = scan.unchanged,
        removed = scan.removed.len(),
        "project scanned"
    );
    engine
        .store
        .run(crate::store::IngestFiles {
            run_id: run.id,
            turn: (run.next_turn - 1).max(0),
            files: scan.changed,
            constraints: scan.constraints,
            removed: scan.removed,
        })
        .await
        .map_err(err)?;
    Ok(())
}

/// The flags a client chose for this loop (stored with the loop).
pub(super) fn loop_flags(lp: &LoopRow) -> LoopFlags {
    lp.config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

pub(super) fn tool_set(mode: Mode, lp: &LoopRow, think: bool) -> ToolSet {
    let flags = loop_flags(lp);
    ToolSet {
        no_interaction: flags.no_interaction.unwrap_or(false),
        no_web: flags.no_web.unwrap_or(false),
        no_proposals: flags.no_proposals.unwrap_or(false),
        ..ToolSet::new(mode, think)
    }
}
