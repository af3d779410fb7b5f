//! Proposals in the store: the run's entries waiting on a client's
//! decision, and the sweep that cancels them when the run is cancelled.

use super::entries::{find_view, write_entry, EntryRow, EntryWrite};
use super::schema::{entries, run_views, runs};
use super::{store_ops, EntryState, RunStatus, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde_json::json;

/// The attribute a settled proposal carries: how it was settled
/// (`accepted`, `rejected`, `error`, `cancelled`). It is how a second
/// resolution of the same entry is told apart from an ordinary write.
pub const RESOLUTION_ATTR: &str = "resolution";

/// The run's `proposed` entries, oldest first (the order they were written).
pub struct PendingProposals(pub i64);

impl StoreOp for PendingProposals {
    type Output = Vec<EntryRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<EntryRow>> {
        Ok(run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.0))
            .filter(run_views::state.eq(EntryState::Proposed))
            .order(run_views::id.asc())
            .select(super::entries::ENTRY_COLUMNS)
            .load(conn)?)
    }
}

/// The proposals waiting in a project's runs, by run alias, oldest first
/// (what a client that says hello is told again).
pub struct ProjectPendingProposals(pub i64);

impl StoreOp for ProjectPendingProposals {
    type Output = Vec<(String, EntryRow)>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<(String, EntryRow)>> {
        let waiting: Vec<(i64, String)> = runs::table
            .filter(runs::project_id.eq(self.0))
            .filter(runs::status.eq(RunStatus::Proposed))
            .order(runs::id.asc())
            .select((runs::id, runs::alias))
            .load(conn)?;
        let mut out = Vec::new();
        for (run_id, alias) in waiting {
            for row in PendingProposals(run_id).run(conn)? {
                out.push((alias.clone(), row));
            }
        }
        Ok(out)
    }
}

/// Cancels every proposal of a run (the run was cancelled); answers the
/// paths cancelled, so clients can be told.
pub struct CancelProposals {
    pub run_id: i64,
    pub outcome: String,
}

impl StoreOp for CancelProposals {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        let pending = PendingProposals(self.run_id).run(conn)?;
        for row in &pending {
            write_entry(
                conn,
                &EntryWrite {
                    state: Some(EntryState::Cancelled),
                    outcome: Some(self.outcome.clone()),
                    attributes: Some(json!({ RESOLUTION_ATTR: "cancelled" })),
                    ..EntryWrite::new(self.run_id, row.path.clone(), Writer::Plugin)
                },
            )?;
        }
        Ok(pending.into_iter().map(|r| r.path).collect())
    }
}

/// Removes one entry's view from a run by its exact path (an accepted
/// `rm` or a moved file); true when there was one.
pub struct RemoveView {
    pub run_id: i64,
    pub path: String,
}

impl StoreOp for RemoveView {
    type Output = bool;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        match find_view(conn, self.run_id, &self.path)? {
            Some((view_id, _)) => {
                diesel::delete(run_views::table.find(view_id)).execute(conn)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

store_ops!(
    PendingProposals => Vec<EntryRow>,
    ProjectPendingProposals => Vec<(String, EntryRow)>,
    CancelProposals => Vec<String>,
    RemoveView => bool,
);
