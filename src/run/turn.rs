//! One loop of a run, turn by turn: materialize, call the model, parse,
//! RECORD, DISPATCH, resolve the update, decide.

use super::actor::DrainInbox;
use super::budget_turn::{self, Gate, Materializer};
use super::cycles::{turn_fingerprint, CycleDetector, LOOP_DETECTED, LOOP_STATUS};
use super::report::{run_state, FreshTurn};
use super::verdict::{decide, TurnResult, Verdict};
use super::{Engine, LoopFlags};
use crate::llm::{ChatMessage, CompletionRequest, LlmError, Provider, RetryNotice};
use crate::parse::{parse, Command};
use crate::protocol::notifications::{Notification, ProgressStatus, RunProgressNotification};
use crate::store::{
    BeginTurn, EntryWrite, FinishLoop, GetModel, GetRunById, LogError, LoopRow,
    PreviousPromptTokens, RecordTurnUsage, RunRow, SetEntry, SetModelContextLength, SetRunStatus,
    StoreError, TurnUsage, Writer,
};
use crate::store::{EntryState, RunStatus};
use crate::tools::update::terminal_status;
use crate::tools::{Mode, ToolSet, TurnCtx};
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
struct ModelBinding {
    provider: Arc<dyn Provider>,
    wire_model: String,
    context_size: Option<i64>,
    temperature: Option<f64>,
}

/// Runs one claimed loop to its end and records the outcome. A panic
/// anywhere in the loop ends this run 500 and nothing else: the server and
/// every other run go on.
pub async fn execute_loop(
    engine: Arc<Engine>,
    run_id: i64,
    lp: LoopRow,
    inbox: &mut DrainInbox,
) -> LoopEnd {
    let driven = AssertUnwindSafe(drive_loop(&engine, run_id, &lp, inbox))
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
    let result = async {
        let run = engine.store.run(GetRunById(run_id)).await?;
        let state = run_state(engine, &run, turn, status, fresh).await?;
        Ok::<_, StoreError>((run.project_id, state))
    }
    .await;
    let sent = result
        .map_err(|e| e.to_string())
        .and_then(|(project, state)| {
            let n = Notification::of(&state).map_err(|e| e.to_string())?;
            engine.publish(project, n.method, n.params);
            Ok(())
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
    })
}

async fn drive_loop(
    engine: &Arc<Engine>,
    run_id: i64,
    lp: &LoopRow,
    inbox: &mut DrainInbox,
) -> Result<LoopEnd, String> {
    let err = |e: StoreError| e.to_string();
    let run = engine.store.run(GetRunById(run_id)).await.map_err(err)?;
    if run.status != RunStatus::Running {
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
    if !flags.no_repo.unwrap_or(false) {
        scan_project(engine, &run).await?;
    }
    let mut streak = 0;
    // Fingerprints are kept per loop, as upstream's error plugin does.
    let mut cycles = CycleDetector::new(engine.config.min_cycles, engine.config.max_cycle_period);
    for iteration in 1..=engine.config.max_turns {
        let outcome = run_turn(
            engine,
            &run,
            lp,
            iteration,
            mode,
            &binding,
            &mut cycles,
            inbox,
        )
        .await?;
        let verdict = decide(outcome.result, &mut streak, engine.config.max_strikes);
        match verdict {
            Verdict::Continue => {
                publish_state(
                    engine,
                    run_id,
                    outcome.turn,
                    RunStatus::Running,
                    Some(&outcome.fresh),
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

struct TurnOutcome {
    turn: i64,
    result: TurnResult,
    fresh: FreshTurn,
}

async fn write(engine: &Engine, w: EntryWrite) -> Result<(), String> {
    engine
        .store
        .run(SetEntry(w))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One audit record (`system://N` and friends): archived, resolved, system.
fn audit(run_id: i64, loop_id: i64, path: String, body: String, turn: i64) -> EntryWrite {
    EntryWrite {
        body: Some(body),
        visibility: Some("archived".into()),
        turn,
        loop_id: Some(loop_id),
        ..EntryWrite::new(run_id, path, Writer::System)
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_turn(
    engine: &Arc<Engine>,
    run: &RunRow,
    lp: &LoopRow,
    iteration: u32,
    mode: Mode,
    binding: &ModelBinding,
    cycles: &mut CycleDetector,
    inbox: &mut DrainInbox,
) -> Result<TurnOutcome, String> {
    let err = |e: StoreError| e.to_string();
    let start = engine
        .store
        .run(BeginTurn {
            run_id: run.id,
            loop_id: lp.id,
        })
        .await
        .map_err(err)?;
    let turn = start.turn;
    let ctx = TurnCtx::new(
        engine.store.clone(),
        engine.config.clone(),
        run.id,
        lp.id,
        turn,
        mode,
    );
    // The loop's own prompt opens its first turn; prompts steered into the
    // running loop join a later one (several at once become one prompt).
    let prompt = if iteration == 1 {
        Some(lp.prompt.clone())
    } else {
        let steered: Vec<String> = inbox
            .take_injected()
            .into_iter()
            .map(|i| i.prompt)
            .collect();
        (!steered.is_empty()).then(|| steered.join("\n\n"))
    };
    if let Some(prompt) = prompt {
        write(
            engine,
            EntryWrite {
                body: Some(prompt),
                attributes: Some(json!({ "mode": mode.as_str() })),
                turn,
                loop_id: Some(lp.id),
                ..EntryWrite::new(run.id, format!("prompt://{turn}"), Writer::Plugin)
            },
        )
        .await?;
    }
    let materializer = Materializer {
        engine,
        run,
        lp,
        turn,
        tool_set: tool_set(mode, lp, engine.config.think),
        context_size: binding.context_size,
    };
    let previous = engine
        .store
        .run(PreviousPromptTokens {
            run_id: run.id,
            turn,
        })
        .await
        .map_err(err)?;
    let packet = materializer.packet(previous.unwrap_or(0)).await?;
    progress(engine, run, turn, ProgressStatus::Thinking);
    let (packet, budget_struck) =
        match budget_turn::pre_llm(&materializer, iteration, packet).await? {
            Gate::Send { packet, struck } => (packet, struck),
            Gate::Skip { measured } => {
                // A skipped turn still records its measure, so nothing later
                // mistakes an older turn's figure for this one.
                engine
                    .store
                    .run(RecordTurnUsage {
                        turn_id: start.turn_id,
                        usage: TurnUsage {
                            context_tokens: measured,
                            ..TurnUsage::default()
                        },
                    })
                    .await
                    .map_err(err)?;
                return Ok(TurnOutcome {
                    turn,
                    result: TurnResult {
                        strike: true,
                        ..TurnResult::default()
                    },
                    fresh: FreshTurn {
                        model: None,
                        temperature: binding.temperature,
                        assembled_tokens: measured,
                    },
                });
            }
        };
    let messages = [
        ChatMessage {
            role: "system",
            content: packet.system.clone(),
        },
        ChatMessage {
            role: "user",
            content: packet.user.clone(),
        },
    ];
    let mut fresh = FreshTurn {
        model: None,
        temperature: binding.temperature,
        assembled_tokens: packet.total_tokens,
    };
    let request = CompletionRequest {
        model: &binding.wire_model,
        messages: &messages,
        temperature: binding.temperature,
        context_size: binding.context_size,
    };
    // Waits between retries are announced, never written: an abort drops
    // this future and leaves nothing of the call behind.
    let on_retry = |n: &RetryNotice| {
        publish_progress(
            engine,
            run,
            RunProgressNotification {
                run: run.alias.clone(),
                turn,
                status: ProgressStatus::Retrying,
                attempt: Some(n.attempt),
                error: Some(n.error.clone()),
                delay_ms: Some(u64::try_from(n.delay.as_millis()).unwrap_or(u64::MAX)),
            },
        );
    };
    let completion = match engine
        .providers
        .complete(binding.provider.as_ref(), &request, &on_retry)
        .await
    {
        Ok(c) => c,
        Err(LlmError::ContextExceeded { message }) => {
            ctx.log_error(format!("LLM context exceeded: {message}"), 413)
                .await
                .map_err(err)?;
            return Ok(TurnOutcome {
                turn,
                result: TurnResult {
                    strike: true,
                    ..TurnResult::default()
                },
                fresh,
            });
        }
        Err(e) => return Err(e.to_string()),
    };
    progress(engine, run, turn, ProgressStatus::Processing);
    fresh.model = completion.model.clone();
    let parsed = parse(&completion.content, engine.config.max_commands as usize);
    let thoughts: Vec<String> = parsed
        .commands
        .iter()
        .filter(|c| c.name == "think")
        .map(Command::text)
        .collect();
    let reasoning: Vec<String> = completion
        .reasoning
        .iter()
        .cloned()
        .chain(thoughts)
        .collect();
    let reasoning = (!reasoning.is_empty()).then(|| reasoning.join("\n"));
    let actual = budget_turn::actual_tokens(completion.usage.prompt_tokens, &packet);
    let usage = TurnUsage {
        context_tokens: actual,
        reasoning_content: reasoning.clone(),
        ..completion.usage.clone()
    };
    engine
        .store
        .run(RecordTurnUsage {
            turn_id: start.turn_id,
            usage,
        })
        .await
        .map_err(err)?;
    record_audit(
        engine,
        run,
        lp,
        turn,
        &packet.system,
        &packet.user,
        &completion,
        reasoning,
    )
    .await?;
    for w in &parsed.warnings {
        ctx.log_error(w.clone(), 422).await.map_err(err)?;
    }
    if !parsed.unparsed.is_empty() {
        write(
            engine,
            // Unlike the other audit records, upstream leaves the unparsed
            // text visible.
            EntryWrite {
                state: Some(EntryState::Failed),
                outcome: Some("unparsed".into()),
                visibility: Some("visible".into()),
                ..audit(
                    run.id,
                    lp.id,
                    format!("content://{turn}"),
                    parsed.unparsed.clone(),
                    turn,
                )
            },
        )
        .await?;
        if parsed.commands.is_empty() && parsed.warnings.is_empty() {
            ctx.log_error("Response contained no actionable tags.", 422)
                .await
                .map_err(err)?;
        }
    }
    let offer = tool_set(mode, lp, engine.config.think);
    let yolo = engine.config.yolo || loop_flags(lp).yolo == Some(true);
    let prints =
        super::dispatch::dispatch_all(engine, &ctx, run, &offer, yolo, &parsed.commands, inbox)
            .await?;
    let demoted = budget_turn::post_dispatch(&materializer, actual).await?;
    let terminal_status = resolve_update(&ctx, &parsed.commands, &completion.content)
        .await
        .map_err(err)?;
    // Checked after the update resolves, as upstream's verdict does; a turn
    // with no recorded command is left out of the history.
    let loop_detected = turn_fingerprint(&prints)
        .and_then(|fp| cycles.push(fp))
        .is_some();
    if loop_detected {
        ctx.log_error(LOOP_DETECTED, LOOP_STATUS)
            .await
            .map_err(err)?;
    }
    Ok(TurnOutcome {
        turn,
        result: TurnResult {
            strike: ctx.error_count() > 0 || demoted || budget_struck,
            terminal_status,
            loop_detected,
        },
        fresh,
    })
}

fn progress(engine: &Engine, run: &RunRow, turn: i64, status: ProgressStatus) {
    publish_progress(
        engine,
        run,
        RunProgressNotification {
            run: run.alias.clone(),
            turn,
            status,
            attempt: None,
            error: None,
            delay_ms: None,
        },
    );
}

fn publish_progress(engine: &Engine, run: &RunRow, payload: RunProgressNotification) {
    match Notification::of(&payload) {
        Ok(n) => engine.publish(run.project_id, n.method, n.params),
        Err(e) => tracing::error!(run = run.alias, "could not encode run/progress: {e}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn record_audit(
    engine: &Engine,
    run: &RunRow,
    lp: &LoopRow,
    turn: i64,
    system: &str,
    user: &str,
    completion: &crate::llm::Completion,
    reasoning: Option<String>,
) -> Result<(), String> {
    let a =
        |scheme: &str, body: String| audit(run.id, lp.id, format!("{scheme}://{turn}"), body, turn);
    write(engine, a("system", system.to_string())).await?;
    write(engine, a("user", user.to_string())).await?;
    write(engine, a("assistant", completion.content.clone())).await?;
    if let Some(r) = reasoning {
        write(engine, a("reasoning", r)).await?;
    }
    let content: String = completion.content.chars().take(4096).collect();
    let model = json!({
        "content": content,
        "reasoning_content": completion.reasoning,
        "usage": completion.usage,
        "model": completion.model,
    });
    write(engine, a("model", model.to_string())).await
}

/// The last `<update>` decides (spec 02 §6.5); returns a terminal status.
async fn resolve_update(
    ctx: &TurnCtx,
    commands: &[Command],
    content: &str,
) -> Result<Option<RunStatus>, StoreError> {
    let Some(update) = commands.iter().rev().find(|c| c.name == "update") else {
        let message = if content.trim().is_empty() {
            "Response empty - Update with status 500 if unable to fulfill request."
        } else {
            "Missing update"
        };
        ctx.log_error(message, 422).await?;
        return Ok(None);
    };
    let text = update.text();
    match update.status() {
        Some(s) if terminal_status(s).is_some() => {
            if text.is_empty() {
                ctx.log_error("Missing update", 422).await?;
                Ok(None)
            } else {
                Ok(terminal_status(s))
            }
        }
        Some(s) if (100..=199).contains(&s) => {
            if text.is_empty() {
                ctx.log_error("Missing update", 422).await?;
            }
            Ok(None)
        }
        _ => {
            let shown = update.attr("status").unwrap_or_default();
            ctx.log_error(
                format!(
                    "Invalid status {shown} on update — use 1xx to continue or 200 to conclude."
                ),
                422,
            )
            .await?;
            Ok(None)
        }
    }
}

/// What the loop offers the model: its mode, `RUMMY_THINK` and the
/// client's flags stored with the loop.
/// The flags a client chose for this loop (stored with the loop).
fn loop_flags(lp: &LoopRow) -> LoopFlags {
    lp.config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

fn tool_set(mode: Mode, lp: &LoopRow, think: bool) -> ToolSet {
    let flags = loop_flags(lp);
    ToolSet {
        no_interaction: flags.no_interaction.unwrap_or(false),
        no_web: flags.no_web.unwrap_or(false),
        no_proposals: flags.no_proposals.unwrap_or(false),
        ..ToolSet::new(mode, think)
    }
}
