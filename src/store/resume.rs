//! What a run needs to survive a restart: boot recovery, and the recorded
//! state a turn interrupted while waiting on a proposal resumes from (the
//! turn's dispatch plan, its model reply, its error count).

use super::proposals::CancelProposals;
use super::schema::{entries, loops, run_views, runs, turns};
use super::FirstRow;
use super::{store_ops, EntryState, RunStatus, StoreOp, StoreResult};
use diesel::prelude::*;
use diesel::SqliteConnection;

/// Records the log paths RECORD allocated for a turn's commands, in
/// dispatch order, before the first command runs.
pub struct SaveDispatchPlan {
    pub turn_id: i64,
    pub paths: Vec<String>,
}

impl StoreOp for SaveDispatchPlan {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let plan = serde_json::Value::from(self.paths).to_string();
        diesel::update(turns::table.find(self.turn_id))
            .set(turns::dispatch_plan.eq(Some(plan)))
            .execute(conn)?;
        Ok(())
    }
}

/// What boot recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Runs ended 499: they were working when the server stopped.
    pub aborted: usize,
    /// Runs left waiting on a proposal, to be resumed (run ids).
    pub waiting: Vec<i64>,
}

/// Boot recovery after a crash or restart (spec 03 §4.2): a run that was
/// waiting on a proposal keeps waiting (its loop stays active, to be
/// resumed); every other running loop goes back to the queue and every
/// other unfinished run ends 499.
pub struct RecoverInterrupted;

impl StoreOp for RecoverInterrupted {
    type Output = Recovery;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Recovery> {
        let candidates: Vec<i64> = runs::table
            .filter(runs::status.eq(RunStatus::Proposed))
            .select(runs::id)
            .load(conn)?;
        let mut waiting = Vec::new();
        for run_id in candidates {
            if resumable(conn, run_id)? {
                waiting.push(run_id);
            }
        }
        diesel::update(
            loops::table
                .filter(loops::status.eq(RunStatus::Running))
                .filter(loops::run_id.ne_all(&waiting)),
        )
        .set(loops::status.eq(RunStatus::Queued))
        .execute(conn)?;
        let stuck: Vec<i64> = runs::table
            .filter(runs::status.eq_any([
                RunStatus::Queued,
                RunStatus::Running,
                RunStatus::Proposed,
            ]))
            .filter(runs::id.ne_all(&waiting))
            .select(runs::id)
            .load(conn)?;
        for id in &stuck {
            // A proposal of a run that cannot resume (no recorded plan)
            // would wait for ever: it ends with its run.
            CancelProposals {
                run_id: *id,
                outcome: "interrupted".into(),
            }
            .run(conn)?;
            super::runs::set_run_status(conn, *id, RunStatus::Aborted)?;
        }
        Ok(Recovery {
            aborted: stuck.len(),
            waiting,
        })
    }
}

/// A run can resume when it has a pending proposal, an active loop, and
/// its loop's last turn recorded a dispatch plan.
fn resumable(conn: &mut SqliteConnection, run_id: i64) -> StoreResult<bool> {
    let pending: i64 = run_views::table
        .filter(run_views::run_id.eq(run_id))
        .filter(run_views::state.eq(EntryState::Proposed))
        .count()
        .get_result(conn)?;
    if pending == 0 {
        return Ok(false);
    }
    let active: Option<i64> = loops::table
        .filter(loops::run_id.eq(run_id))
        .filter(loops::status.eq(RunStatus::Running))
        .select(loops::id)
        .first_row(conn)
        .optional()?;
    let Some(loop_id) = active else {
        return Ok(false);
    };
    let plan: Option<Option<String>> = turns::table
        .filter(turns::loop_id.eq(loop_id))
        .order(turns::sequence.desc())
        .select(turns::dispatch_plan)
        .first_row(conn)
        .optional()?;
    Ok(matches!(plan, Some(Some(_))))
}

/// The interrupted turn of a run's active loop.
#[derive(Debug, Clone, PartialEq)]
pub struct InterruptedTurn {
    pub turn: i64,
    pub turn_id: i64,
    /// The context size the provider reported for the turn.
    pub context_tokens: i64,
    /// The log paths of the turn's commands, in dispatch order.
    pub plan: Vec<String>,
    /// The model's reply (`assistant://N`), the commands' source.
    pub reply: String,
    /// Error entries the turn has written so far (its strike).
    pub errors: u32,
    /// Turns the loop has run, this one included.
    pub loop_turns: u32,
}

/// Reads the recorded state of the loop's last turn.
pub struct GetInterruptedTurn {
    pub run_id: i64,
    pub loop_id: i64,
}

impl StoreOp for GetInterruptedTurn {
    type Output = Option<InterruptedTurn>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<InterruptedTurn>> {
        let last: Option<(i64, i64, i64, Option<String>)> = turns::table
            .filter(turns::loop_id.eq(self.loop_id))
            .order(turns::sequence.desc())
            .select((
                turns::id,
                turns::sequence,
                turns::context_tokens,
                turns::dispatch_plan,
            ))
            .first_row(conn)
            .optional()?;
        let Some((turn_id, turn, context_tokens, Some(plan))) = last else {
            return Ok(None);
        };
        let Ok(plan) = serde_json::from_str::<Vec<String>>(&plan) else {
            return Ok(None);
        };
        let body = |conn: &mut SqliteConnection, path: String| -> StoreResult<Option<String>> {
            Ok(run_views::table
                .inner_join(entries::table)
                .filter(run_views::run_id.eq(self.run_id))
                .filter(entries::path.eq(path))
                .select(entries::body)
                .first_row(conn)
                .optional()?)
        };
        let Some(reply) = body(conn, format!("assistant://{turn}"))? else {
            return Ok(None);
        };
        let errors: i64 = run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.run_id))
            .filter(entries::path.like(format!("log://turn_{turn}/error/%")))
            .count()
            .get_result(conn)?;
        let loop_turns: i64 = turns::table
            .filter(turns::loop_id.eq(self.loop_id))
            .count()
            .get_result(conn)?;
        Ok(Some(InterruptedTurn {
            turn,
            turn_id,
            context_tokens,
            plan,
            reply,
            errors: u32::try_from(errors).unwrap_or(u32::MAX),
            loop_turns: u32::try_from(loop_turns).unwrap_or(u32::MAX),
        }))
    }
}

store_ops!(
    SaveDispatchPlan => (),
    RecoverInterrupted => Recovery,
    GetInterruptedTurn => Option<InterruptedTurn>,
);
