//! RECORD then DISPATCH: the policy screen, one log path per command (the
//! plan, saved with the turn), each command through its tool, the wait for
//! its proposals, and the abort of the rest of the turn after a failure. A
//! turn a restart interrupted while it waited resumes from its plan.

use super::actor::DrainInbox;
use super::cycles::command_fingerprint;
use super::policy;
use super::Engine;
use crate::parse::Command;
use crate::store::paths::{is_invalid_target, log_path};
use crate::store::{AllocateLogPaths, EntryState, GetEntry, RunRow, SaveDispatchPlan, StoreError};
use crate::tools::{ToolError, ToolSet, TurnCtx};
use serde_json::json;

/// A turn's recorded commands: what passed the policy screen, the log path
/// RECORD allocated for each (in dispatch order), and the fingerprints of
/// the refused ones.
pub(super) struct Plan {
    commands: Vec<Command>,
    invalid: Vec<bool>,
    paths: Vec<String>,
    refused_prints: Vec<String>,
}

impl Plan {
    /// Every recorded command's fingerprint, refused ones first, for cycle
    /// detection.
    fn prints(&self) -> Vec<String> {
        let mut prints = self.refused_prints.clone();
        prints.extend(
            self.commands
                .iter()
                .zip(&self.invalid)
                .map(|(cmd, invalid)| command_fingerprint(cmd, *invalid)),
        );
        prints
    }
}

fn log_bases(turn: i64, commands: &[Command]) -> (Vec<bool>, Vec<String>) {
    commands
        .iter()
        .map(|c| {
            let target = c.target();
            // Only paths are checked: commands and questions may span lines.
            let invalid = c.path().is_some_and(|p| is_invalid_target(&p));
            let base = if invalid {
                log_path(turn, &c.name, "invalid")
            } else {
                log_path(turn, &c.name, &target)
            };
            (invalid, base)
        })
        .unzip()
}

/// RECORD: the policy screen (refusals get their error entries), one log
/// path per kept command, and the plan saved with the turn so a restart
/// can finish it.
pub(super) async fn record(
    engine: &Engine,
    ctx: &TurnCtx,
    turn_id: i64,
    offer: &ToolSet,
    commands: &[Command],
) -> Result<Plan, String> {
    let err = |e: StoreError| e.to_string();
    let (commands, refused_prints) = refuse_by_policy(ctx, offer, commands).await?;
    let (invalid, bases) = log_bases(ctx.turn, &commands);
    let paths = engine
        .store
        .run(AllocateLogPaths {
            run_id: ctx.run_id,
            bases,
        })
        .await
        .map_err(err)?;
    engine
        .store
        .run(SaveDispatchPlan {
            turn_id,
            paths: paths.clone(),
        })
        .await
        .map_err(err)?;
    Ok(Plan {
        commands,
        invalid,
        paths,
        refused_prints,
    })
}

/// The plan of a turn a restart interrupted, rebuilt from its model reply
/// and its saved log paths (the policy screen is deterministic; its
/// refusals were written the first time).
pub(super) fn replan(
    offer: &ToolSet,
    commands: &[Command],
    turn: i64,
    paths: Vec<String>,
) -> Result<Plan, String> {
    let (kept, refused) = policy::screen(offer, commands);
    let commands: Vec<Command> = kept.into_iter().cloned().collect();
    if commands.len() != paths.len() {
        return Err(format!(
            "cannot resume turn {turn}: its reply has {} commands to dispatch but {} were recorded",
            commands.len(),
            paths.len()
        ));
    }
    let (invalid, _) = log_bases(turn, &commands);
    Ok(Plan {
        commands,
        invalid,
        paths,
        refused_prints: refused
            .into_iter()
            .map(|(cmd, _)| command_fingerprint(cmd, false))
            .collect(),
    })
}

/// What the dispatch of a turn needs besides its plan.
pub(super) struct Dispatcher<'a> {
    pub engine: &'a Engine,
    pub ctx: &'a TurnCtx,
    pub run: &'a RunRow,
    pub yolo: bool,
}

impl Dispatcher<'_> {
    /// DISPATCH, in order. A crash, a refused write or a command whose log
    /// entry ends `failed` aborts the rest of the turn (spec 02 §6.1 step
    /// 7, with 2.0.0's unreachable status check made real). Returns each
    /// recorded command's fingerprint for cycle detection.
    pub(super) async fn dispatch(
        &self,
        plan: &Plan,
        inbox: &mut DrainInbox,
    ) -> Result<Vec<String>, String> {
        self.dispatch_from(plan, 0, None, inbox).await?;
        Ok(plan.prints())
    }

    /// Finishes a turn a restart interrupted: the proposals it waited on
    /// are announced and awaited again, then the commands recorded after
    /// the one that raised them run as they would have.
    pub(super) async fn resume(
        &self,
        plan: &Plan,
        inbox: &mut DrainInbox,
    ) -> Result<Vec<String>, String> {
        let err = |e: StoreError| e.to_string();
        let mut last_done = None;
        for (i, path) in plan.paths.iter().enumerate() {
            if self.entry_exists(path).await.map_err(err)? {
                last_done = Some(i);
            }
        }
        let (next, abort_after) = match last_done {
            Some(i) => {
                let errors_before = self.ctx.error_count();
                let aborted = self
                    .settle_after(&plan.paths[i], &plan.commands[i].name, errors_before, inbox)
                    .await?;
                (i + 1, aborted)
            }
            None => (0, None),
        };
        self.dispatch_from(plan, next, abort_after, inbox).await?;
        Ok(plan.prints())
    }

    async fn entry_exists(&self, path: &str) -> Result<bool, StoreError> {
        Ok(self
            .engine
            .store
            .run(GetEntry {
                run_id: self.run.id,
                path: path.to_string(),
            })
            .await?
            .is_some())
    }

    async fn dispatch_from(
        &self,
        plan: &Plan,
        start: usize,
        mut abort_after: Option<String>,
        inbox: &mut DrainInbox,
    ) -> Result<(), String> {
        let steps = plan
            .commands
            .iter()
            .zip(&plan.invalid)
            .zip(&plan.paths)
            .skip(start);
        for ((cmd, invalid), path) in steps {
            if cmd.name == "think" {
                continue;
            }
            if let Some(tool) = &abort_after {
                self.write_aborted(path, tool).await?;
                continue;
            }
            abort_after = self.dispatch_one(cmd, *invalid, path, inbox).await?;
        }
        Ok(())
    }

    async fn write_aborted(&self, path: &str, tool: &str) -> Result<(), String> {
        let message = format!("Aborted — preceding <{tool}> failed.");
        self.ctx
            .write_log(
                path,
                message.clone(),
                EntryState::Failed,
                Some("aborted".into()),
                None,
                json!({ "error": message }),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs one command; answers the tool's name when it failed (the rest
    /// of the turn is then aborted).
    async fn dispatch_one(
        &self,
        cmd: &Command,
        invalid: bool,
        path: &str,
        inbox: &mut DrainInbox,
    ) -> Result<Option<String>, String> {
        let err = |e: StoreError| e.to_string();
        let ctx = self.ctx;
        if invalid {
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
            return Ok(None);
        }
        let Some(tool) = self
            .engine
            .tools
            .get(&cmd.name)
            .filter(|t| t.doc().is_some())
        else {
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
            return Ok(Some(cmd.name.clone()));
        };
        let errors_before = ctx.error_count();
        match tool.dispatch(ctx, cmd, path).await {
            Ok(()) => {
                self.settle_after(path, &cmd.name, errors_before, inbox)
                    .await
            }
            Err(ToolError::Permission(message)) => {
                // The action fails with outcome `permission` and the 403 is
                // a strike, instead of upstream's crash.
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
                Ok(Some(cmd.name.clone()))
            }
            Err(ToolError::Failed(e)) => {
                ctx.log_error(format!("Dispatch crash in {}: {e}", cmd.name), 500)
                    .await
                    .map_err(err)?;
                Ok(Some(cmd.name.clone()))
            }
        }
    }

    /// After a command's handler ran: the turn waits for each proposal it
    /// raised (spec 03 §4.3 step 8); a rejected one, or a log entry that
    /// ended failed, fails the command. Answers the tool's name then.
    async fn settle_after(
        &self,
        path: &str,
        tool: &str,
        errors_before: u32,
        inbox: &mut DrainInbox,
    ) -> Result<Option<String>, String> {
        let err = |e: StoreError| e.to_string();
        let settled =
            super::proposals::settle(self.engine, self.run, self.ctx.turn, inbox, self.yolo)
                .await?;
        let failure = match entry_failure(self.ctx, path).await.map_err(err)? {
            Some(f) => Some(f),
            None => settled.map(|(message, status)| EntryFailure { message, status }),
        };
        let Some(failure) = failure else {
            return Ok(None);
        };
        // A handler that already reported its failure keeps its one error
        // entry.
        if self.ctx.error_count() == errors_before {
            self.ctx
                .log_error(failure.message, failure.status)
                .await
                .map_err(err)?;
        }
        Ok(Some(tool.to_string()))
    }
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
