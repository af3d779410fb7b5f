//! What a run's turn loop keeps between its turns, so that a turn costs
//! what it changed rather than what the run holds.
//!
//! - the store's copy of the model-visible rows, refreshed from the view
//!   log (`store::incremental`);
//! - each row's projection and `turn_context` record (`context::derived`);
//! - the report's scanned rows, refreshed the same way
//!   (`store::report_scan`);
//! - the run's open `turn_context` rows as last saved
//!   (`store::turn_context`).
//!
//! Every part is only a cache: dropping it (a new loop, a restart) costs
//! the next turn a full read, never a different packet or report.

use crate::context::{DerivedRow, DerivedRows};
use crate::store::{ContextRow, SharedContextRows, SharedSavedContext, SharedScanRows};
use crate::tools::ToolRegistry;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct RunCaches {
    context_rows: SharedContextRows,
    derived: Mutex<DerivedRows>,
    scan: SharedScanRows,
    saved: SharedSavedContext,
}

impl RunCaches {
    /// The handle `CachedModelContext` refreshes.
    pub fn context_rows(&self) -> SharedContextRows {
        Arc::clone(&self.context_rows)
    }

    /// The handle `ReportRun` refreshes.
    pub fn scan(&self) -> SharedScanRows {
        Arc::clone(&self.scan)
    }

    /// The handle `SaveTurnContext` keeps (and `ReportRun` reads).
    pub fn saved(&self) -> SharedSavedContext {
        Arc::clone(&self.saved)
    }

    /// `rows` with their derivations, reusing those of unchanged rows.
    pub fn derive(
        &self,
        rows: Vec<Arc<ContextRow>>,
        tools: &ToolRegistry,
        divisor: f64,
    ) -> Vec<Arc<DerivedRow>> {
        // A panic while deriving leaves the memo half-updated: start afresh.
        let mut memo = self.derived.lock().unwrap_or_else(|poisoned| {
            let mut memo = poisoned.into_inner();
            *memo = DerivedRows::default();
            memo
        });
        memo.derive(rows, tools, divisor)
    }
}
