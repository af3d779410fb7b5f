//! The run's model-visible rows, kept by the reader between turns and
//! brought up to date from the view log, so a turn reads what changed
//! rather than the whole run.
//!
//! The reader (the turn loop) owns a [`ContextRowCache`] and hands it to
//! every [`CachedModelContext`]; the store thread applies the changes the
//! log reports inside the read's transaction. Rows are shared (`Arc`) and
//! an unchanged row keeps its `Arc`, so the reader can tell an unchanged
//! row by pointer and keep what it derived from it.

use super::reads::{model_context_sql, ContextRow};
use super::view_log::{self, Since, ViewCursor};
use super::{prepared, store_ops, StoreOp, StoreResult};
use crate::fast_map::FastMap;
use diesel::prelude::*;
use diesel::SqliteConnection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A reader's copy of one run's model-visible rows.
#[derive(Debug, Default)]
pub struct ContextRowCache {
    run_id: Option<i64>,
    cursor: Option<ViewCursor>,
    by_view: FastMap<i64, Arc<ContextRow>>,
    /// Packet order: the sort key (unique, it ends with the view id).
    order: BTreeMap<String, i64>,
}

/// Shared between the reader and the store thread that refreshes it.
pub type SharedContextRows = Arc<Mutex<ContextRowCache>>;

/// Rows of the views the log lists for (run, after seq, up to seq).
const MODEL_CONTEXT_OF_LOGGED: &str = concat!(
    model_context_sql!(),
    " AND v.id IN (SELECT view_id FROM temp.rummy_view_log \
       WHERE run_id = ? AND seq > ? AND seq <= ?)"
);

impl ContextRowCache {
    fn clear(&mut self) {
        self.cursor = None;
        self.by_view.clear();
        self.order.clear();
    }

    fn remove(&mut self, view: i64) {
        if let Some(old) = self.by_view.remove(&view) {
            self.order.remove(&old.sort_key);
        }
    }

    fn put(&mut self, row: ContextRow) {
        let view = row.view_id;
        if let Some(old) = self.by_view.get(&view) {
            if **old == row {
                return;
            }
            self.order.remove(&old.sort_key);
        }
        self.order.insert(row.sort_key.clone(), view);
        self.by_view.insert(view, Arc::new(row));
    }

    fn refresh(&mut self, conn: &mut SqliteConnection, run: i64) -> StoreResult<()> {
        if self.run_id != Some(run) {
            self.clear();
            self.run_id = Some(run);
        }
        let (since, cursor) = view_log::since(conn, run, self.cursor)?;
        match since {
            Since::All => {
                let rows: Vec<ContextRow> =
                    prepared(super::reads::MODEL_CONTEXT).int(run).load(conn)?;
                self.clear();
                for r in rows {
                    self.put(r);
                }
            }
            Since::Views { views, from, to } => {
                if !views.is_empty() {
                    let rows: Vec<ContextRow> = prepared(MODEL_CONTEXT_OF_LOGGED)
                        .int(run)
                        .int(run)
                        .int(from)
                        .int(to)
                        .load(conn)?;
                    let present: std::collections::HashSet<i64> =
                        rows.iter().map(|r| r.view_id).collect();
                    for v in views.iter().filter(|v| !present.contains(v)) {
                        self.remove(*v);
                    }
                    for r in rows {
                        self.put(r);
                    }
                }
            }
        }
        self.cursor = Some(cursor);
        Ok(())
    }

    /// The rows in packet order (their `ordinal` is left at 0: a row's
    /// place is its index plus one).
    pub fn rows(&self) -> Vec<Arc<ContextRow>> {
        self.order
            .values()
            .filter_map(|v| self.by_view.get(v).cloned())
            .collect()
    }
}

/// A poisoned cache (a panic mid-refresh) is emptied, not trusted.
fn lock(cache: &Mutex<ContextRowCache>) -> MutexGuard<'_, ContextRowCache> {
    match cache.lock() {
        Ok(g) => g,
        Err(poisoned) => {
            let mut g = poisoned.into_inner();
            g.clear();
            g
        }
    }
}

/// `ModelContext` through the reader's cache: the same rows in the same
/// order, read incrementally.
pub struct CachedModelContext {
    pub run_id: i64,
    pub cache: SharedContextRows,
}

impl StoreOp for CachedModelContext {
    type Output = Vec<Arc<ContextRow>>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Self::Output> {
        let mut cache = lock(&self.cache);
        if let Err(e) = cache.refresh(conn, self.run_id) {
            // The transaction rolls back; start over next time.
            cache.clear();
            return Err(e);
        }
        Ok(cache.rows())
    }
}

store_ops!(CachedModelContext => Vec<Arc<ContextRow>>);
