//! The start-up retention purge (`RUMMY_RETENTION_DAYS`).
//!
//! Upstream compares integer statuses with the words `'completed'` and
//! `'aborted'` and so never deletes anything (spec 01 §6); this purge
//! compares integers. A run's age is its last activity (its creation, its
//! newest loop or turn), so a run continued yesterday is kept however old
//! it is. Deleting a run cascades to its views, loops, turns and
//! turn_context; the run-scoped entries no other run still shows go too.

use super::{store_ops, StoreError, StoreOp, StoreResult};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::SqliteConnection;

/// Statuses a run ends in: done, done without content, context too large,
/// refused by the model, aborted, failed.
pub const TERMINAL_STATUSES: [i64; 6] = [200, 204, 413, 422, 499, 500];

/// Removes runs in a terminal status whose last activity is more than
/// `days` days old; answers how many.
pub struct PurgeOldRuns {
    pub days: u32,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl StoreOp for PurgeOldRuns {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        if self.days == 0 {
            return Err(StoreError::Invalid(
                "the retention period must be at least one day".into(),
            ));
        }
        let statuses = TERMINAL_STATUSES
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let old: Vec<Id> = diesel::sql_query(format!(
            "SELECT r.id FROM runs r \
             WHERE r.status IN ({statuses}) \
               AND max(COALESCE(r.created_at, ''), \
                       COALESCE((SELECT max(created_at) FROM loops WHERE run_id = r.id), ''), \
                       COALESCE((SELECT max(created_at) FROM turns WHERE run_id = r.id), '')) \
                   < datetime('now', '-' || ? || ' days')"
        ))
        .bind::<BigInt, _>(i64::from(self.days))
        .load(conn)?;
        for Id { id } in &old {
            diesel::sql_query("DELETE FROM runs WHERE id = ?")
                .bind::<BigInt, _>(id)
                .execute(conn)?;
            diesel::sql_query(
                "DELETE FROM entries WHERE scope = 'run:' || ? \
                 AND NOT EXISTS (SELECT 1 FROM run_views v WHERE v.entry_id = entries.id)",
            )
            .bind::<BigInt, _>(id)
            .execute(conn)?;
        }
        Ok(old.len())
    }
}

store_ops!(PurgeOldRuns => usize);
