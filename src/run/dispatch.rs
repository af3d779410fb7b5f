//! RECORD then DISPATCH: the policy screen, one log path per command, each
//! command through its tool, the wait for its proposals, and the abort of
//! the rest of the turn after a failure.

use super::actor::DrainInbox;
use super::cycles::command_fingerprint;
use super::policy;
use super::turn::publish_state;
use super::Engine;
use crate::parse::Command;
use crate::store::paths::{is_invalid_target, log_path};
use crate::store::{AllocateLogPaths, EntryState, GetEntry, RunRow, RunStatus, StoreError};
use crate::tools::{ToolError, ToolSet, TurnCtx};
use serde_json::json;

/// RECORD then DISPATCH, in order. A crash, a refused write or a command
/// whose log entry ends `failed` aborts the rest of the turn (spec 02 §6.1
/// step 7, with 2.0.0's unreachable status check made real). Returns each
/// recorded command's fingerprint for cycle detection.
pub(super) async fn dispatch_all(
    engine: &Engine,
    ctx: &TurnCtx,
    run: &RunRow,
    offer: &ToolSet,
    yolo: bool,
    commands: &[Command],
    inbox: &mut DrainInbox,
) -> Result<Vec<String>, String> {
    let err = |e: StoreError| e.to_string();
    let (commands, refused_prints) = refuse_by_policy(ctx, offer, commands).await?;
    let commands = &commands[..];
    let targets: Vec<(bool, String)> = commands
        .iter()
        .map(|c| {
            let target = c.target();
            // Only paths are checked: commands and questions may span lines.
            let invalid = c.path().is_some_and(|p| is_invalid_target(&p));
            let base = if invalid {
                log_path(ctx.turn, &c.name, "invalid")
            } else {
                log_path(ctx.turn, &c.name, &target)
            };
            (invalid, base)
        })
        .collect();
    let paths = engine
        .store
        .run(AllocateLogPaths {
            run_id: run.id,
            bases: targets.iter().map(|(_, b)| b.clone()).collect(),
        })
        .await
        .map_err(err)?;
    let mut prints = refused_prints;
    let mut abort_after: Option<String> = None;
    for ((cmd, (invalid, _)), path) in commands.iter().zip(&targets).zip(&paths) {
        prints.push(command_fingerprint(cmd, *invalid));
        if cmd.name == "think" {
            continue;
        }
        if let Some(tool) = &abort_after {
            let message = format!("Aborted — preceding <{tool}> failed.");
            ctx.write_log(
                path,
                message.clone(),
                EntryState::Failed,
                Some("aborted".into()),
                None,
                json!({ "error": message }),
            )
            .await
            .map_err(err)?;
            continue;
        }
        if *invalid {
            // A refused recording: no error, no strike, no abort (02 §6.1 step 6).
            ctx.write_log(
                path,
                "Invalid path: too long or contains non-printing characters",
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({}),
            )
            .await
            .map_err(err)?;
            continue;
        }
        match engine.tools.get(&cmd.name).filter(|t| t.doc().is_some()) {
            None => {
                let message = format!("<{}> is not available in this run.", cmd.name);
                ctx.write_log(
                    path,
                    message.clone(),
                    EntryState::Failed,
                    Some("unavailable".into()),
                    None,
                    json!({ "error": message }),
                )
                .await
                .map_err(err)?;
                ctx.log_error(message, 400).await.map_err(err)?;
                abort_after = Some(cmd.name.clone());
            }
            Some(tool) => {
                let errors_before = ctx.error_count();
                match tool.dispatch(ctx, cmd, path).await {
                    Ok(()) => {
                        // The turn waits here for each proposal the command
                        // raised (spec 03 §4.3 step 8); a rejected one fails.
                        let settled = super::proposals::settle(engine, run, inbox, yolo).await?;
                        let failure = match entry_failure(ctx, path).await.map_err(err)? {
                            Some(f) => Some(f),
                            None => {
                                settled.map(|(message, status)| EntryFailure { message, status })
                            }
                        };
                        if let Some(failure) = failure {
                            // A handler that already reported its failure
                            // keeps its one error entry.
                            if ctx.error_count() == errors_before {
                                ctx.log_error(failure.message, failure.status)
                                    .await
                                    .map_err(err)?;
                            }
                            abort_after = Some(cmd.name.clone());
                        }
                    }
                    Err(ToolError::Permission(message)) => {
                        // The action fails with outcome `permission` and the
                        // 403 is a strike, instead of upstream's crash.
                        let attributes = json!({ "path": cmd.path(), "error": message });
                        ctx.write_log(
                            path,
                            message.clone(),
                            EntryState::Failed,
                            Some("permission".into()),
                            None,
                            attributes,
                        )
                        .await
                        .map_err(err)?;
                        ctx.log_error(message, 403).await.map_err(err)?;
                        abort_after = Some(cmd.name.clone());
                    }
                    Err(ToolError::Failed(e)) => {
                        ctx.log_error(format!("Dispatch crash in {}: {e}", cmd.name), 500)
                            .await
                            .map_err(err)?;
                        abort_after = Some(cmd.name.clone());
                    }
                }
            }
        }
        publish_state(engine, run.id, ctx.turn, RunStatus::Running, None).await;
    }
    Ok(prints)
}

/// The policy filter of RECORD (spec 02 §6.1 step 6): each refused command
/// gets its 400 error entry (a strike) and is dropped unstored; the rest go
/// on. Refused commands still count for cycle detection, as upstream keeps
/// them among the turn's recorded commands. Returns the kept commands and
/// the refused ones' fingerprints.
async fn refuse_by_policy(
    ctx: &TurnCtx,
    offer: &ToolSet,
    commands: &[Command],
) -> Result<(Vec<Command>, Vec<String>), String> {
    let (kept, refused) = policy::screen(offer, commands);
    let mut prints = Vec::with_capacity(refused.len());
    for (cmd, refusal) in refused {
        tracing::info!(run_id = ctx.run_id, turn = ctx.turn, tool = %cmd.name, rule = ?refusal.rule, "refused by policy: {}", refusal.message);
        ctx.log_error(refusal.message, policy::REFUSAL_STATUS)
            .await
            .map_err(|e| e.to_string())?;
        prints.push(command_fingerprint(cmd, false));
    }
    Ok((kept.into_iter().cloned().collect(), prints))
}

/// A command's failure as its error entry reports it.
struct EntryFailure {
    message: String,
    status: i64,
}

/// Reads a command's log entry back after its handler ran: `failed` means
/// the command failed, whichever tool wrote it. The error text is the
/// entry's `error` attribute, else its body; the status comes from its
/// outcome's kind.
async fn entry_failure(ctx: &TurnCtx, path: &str) -> Result<Option<EntryFailure>, StoreError> {
    let Some(row) = ctx
        .store
        .run(GetEntry {
            run_id: ctx.run_id,
            path: path.to_string(),
        })
        .await?
    else {
        return Ok(None);
    };
    if row.state != EntryState::Failed {
        return Ok(None);
    }
    let error = serde_json::from_str::<serde_json::Value>(&row.attributes)
        .ok()
        .and_then(|a| a.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .filter(|e| !e.trim().is_empty());
    let message = error
        .or_else(|| Some(row.body.clone()).filter(|b| !b.trim().is_empty()))
        .unwrap_or_else(|| format!("{path} failed."));
    Ok(Some(EntryFailure {
        message,
        status: row.state.outcome_status(row.outcome.as_deref()),
    }))
}
