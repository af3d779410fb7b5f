//! One turn of a loop: materialize, call the model, parse, RECORD,
//! DISPATCH, resolve the update; or the end of a turn a restart
//! interrupted while it waited on a proposal.

use super::actor::DrainInbox;
use super::budget_turn::{self, Gate, Materializer};
use super::cycles::{turn_fingerprint, CycleDetector, LOOP_DETECTED, LOOP_STATUS};
use super::dispatch::{self, Dispatcher};
use super::report::FreshTurn;
use super::turn::{loop_flags, tool_set, ModelBinding};
use super::verdict::TurnResult;
use super::Engine;
use crate::llm::{ChatMessage, CompletionRequest, LlmError, RetryNotice};
use crate::parse::{parse, Command};
use crate::protocol::notifications::{Notification, ProgressStatus, RunProgressNotification};
use crate::store::{
    BeginTurn, EntryState, EntryWrite, InterruptedTurn, LoopRow, PreviousPromptTokens,
    RecordTurnUsage, RunRow, RunStatus, SetEntries, SetEntry, StoreError, TurnUsage, Writer,
};
use crate::tools::update::terminal_status;
use crate::tools::{Mode, ToolSet, TurnCtx};
use serde_json::json;
use std::sync::Arc;

/// What every step of a loop's turns shares.
#[derive(Clone, Copy)]
pub(super) struct TurnSteps<'a> {
    pub engine: &'a Arc<Engine>,
    pub run: &'a RunRow,
    pub lp: &'a LoopRow,
    pub mode: Mode,
    pub binding: &'a ModelBinding,
    pub caches: &'a super::caches::RunCaches,
}

/// What one turn produced, for the verdict.
pub(super) struct TurnOutcome {
    pub turn: i64,
    pub result: TurnResult,
    pub fresh: FreshTurn,
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

impl TurnSteps<'_> {
    /// One new turn: materialize, call the model, parse, RECORD, DISPATCH,
    /// then conclude.
    pub(super) async fn run(
        &self,
        iteration: u32,
        cycles: &mut CycleDetector,
        inbox: &mut DrainInbox,
    ) -> Result<TurnOutcome, String> {
        let TurnSteps {
            engine,
            run,
            lp,
            mode,
            binding,
            ..
        } = *self;
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
        let ctx = self.turn_ctx(turn);
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
        let materializer = self.materializer(turn);
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
                            temperature: binding.chosen_temperature,
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
            temperature: binding.chosen_temperature,
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
        let offer = self.offer();
        let plan = dispatch::record(engine, &ctx, start.turn_id, &offer, &parsed.commands).await?;
        let prints = self.dispatcher(&ctx).dispatch(&plan, inbox).await?;
        self.conclude(
            &ctx,
            &materializer,
            actual,
            &parsed.commands,
            &completion.content,
            prints,
            cycles,
            (fresh, budget_struck),
        )
        .await
    }

    /// Finishes a turn a restart interrupted while it waited on a
    /// proposal, from what it recorded: the reply's commands, the plan's
    /// log paths and the measured context.
    pub(super) async fn resume(
        &self,
        turn: InterruptedTurn,
        cycles: &mut CycleDetector,
        inbox: &mut DrainInbox,
    ) -> Result<TurnOutcome, String> {
        let TurnSteps {
            engine,
            run,
            binding,
            ..
        } = *self;
        tracing::info!(run = %run.alias, turn = turn.turn, "resuming the turn's wait on its proposal");
        let ctx = self.turn_ctx(turn.turn).with_errors(turn.errors);
        let materializer = self.materializer(turn.turn);
        let parsed = parse(&turn.reply, engine.config.max_commands as usize);
        let offer = self.offer();
        let plan = dispatch::replan(&offer, &parsed.commands, turn.turn, turn.plan)?;
        let prints = self.dispatcher(&ctx).resume(&plan, inbox).await?;
        let fresh = FreshTurn {
            model: None,
            temperature: binding.chosen_temperature,
            assembled_tokens: turn.context_tokens,
        };
        self.conclude(
            &ctx,
            &materializer,
            turn.context_tokens,
            &parsed.commands,
            &turn.reply,
            prints,
            cycles,
            (fresh, false),
        )
        .await
    }

    fn turn_ctx(&self, turn: i64) -> TurnCtx {
        TurnCtx::new(
            self.engine.store.clone(),
            self.engine.config.clone(),
            self.run.id,
            self.lp.id,
            turn,
            self.mode,
        )
        .with_editor(self.engine.editor.get())
    }

    /// What the loop offers the model (its mode, flags and RUMMY_THINK).
    fn offer(&self) -> ToolSet {
        tool_set(self.mode, self.lp, self.engine.config.think)
    }

    fn materializer(&self, turn: i64) -> Materializer<'_> {
        Materializer {
            engine: self.engine,
            run: self.run,
            lp: self.lp,
            turn,
            tool_set: self.offer(),
            context_size: self.binding.context_size,
            caches: self.caches,
        }
    }

    fn dispatcher<'a>(&'a self, ctx: &'a TurnCtx) -> Dispatcher<'a> {
        Dispatcher {
            engine: self.engine,
            ctx,
            run: self.run,
            yolo: self.engine.config.yolo || loop_flags(self.lp).yolo == Some(true),
        }
    }

    /// After DISPATCH: post-dispatch budget, the update, cycle detection.
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        ctx: &TurnCtx,
        materializer: &Materializer<'_>,
        actual: i64,
        commands: &[Command],
        content: &str,
        prints: Vec<String>,
        cycles: &mut CycleDetector,
        (fresh, budget_struck): (FreshTurn, bool),
    ) -> Result<TurnOutcome, String> {
        let err = |e: StoreError| e.to_string();
        let demoted = budget_turn::post_dispatch(materializer, actual).await?;
        let terminal_status = resolve_update(ctx, commands, content).await.map_err(err)?;
        // Checked after the update resolves, as upstream's verdict does; a
        // turn with no recorded command is left out of the history.
        let loop_detected = turn_fingerprint(&prints)
            .and_then(|fp| cycles.push(fp))
            .is_some();
        if loop_detected {
            ctx.log_error(LOOP_DETECTED, LOOP_STATUS)
                .await
                .map_err(err)?;
        }
        Ok(TurnOutcome {
            turn: ctx.turn,
            result: TurnResult {
                strike: ctx.error_count() > 0 || demoted || budget_struck,
                terminal_status,
                loop_detected,
            },
            fresh,
        })
    }
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
    let mut writes = vec![
        a("system", system.to_string()),
        a("user", user.to_string()),
        a("assistant", completion.content.clone()),
    ];
    if let Some(r) = reasoning {
        writes.push(a("reasoning", r));
    }
    let content: String = completion.content.chars().take(4096).collect();
    let model = json!({
        "content": content,
        "reasoning_content": completion.reasoning,
        "usage": completion.usage,
        "model": completion.model,
    });
    writes.push(a("model", model.to_string()));
    engine
        .store
        .run(SetEntries(writes))
        .await
        .map_err(|e| e.to_string())
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
