//! What a packet derives from each row alone (its projection, token
//! figures and `turn_context` record), computed once per row version.
//!
//! A run's context grows by a few rows a turn while the rest stay as they
//! were; projecting and measuring every row again each turn made a turn's
//! cost grow with the run. [`DerivedRows`] keeps each row's derivation for
//! as long as the store hands back the same row (`Arc::ptr_eq`: the
//! store's row cache replaces a row's `Arc` exactly when the row changed),
//! so only new and changed rows are projected.

use super::sections::RowRender;
use super::{project_row, ProjectedRow};
use crate::fast_map::{self, FastMap};
use crate::store::{ContextRow, SnapshotRow, TurnContextRow};
use crate::tools::ToolRegistry;
use serde_json::Value;
use std::sync::Arc;

/// One context row and what the packet derives from it alone.
#[derive(Debug)]
pub struct DerivedRow {
    pub source: Arc<ContextRow>,
    pub projected: ProjectedRow,
    /// The row's `turn_context` record (placed at ordinal 0; the packet
    /// places it).
    pub saved: TurnContextRow,
    /// Its section items, rendered once.
    pub render: RowRender,
}

impl DerivedRow {
    pub fn new(source: Arc<ContextRow>, tools: &ToolRegistry, divisor: f64) -> DerivedRow {
        let projected = project_row(&source, tools, divisor);
        let saved = TurnContextRow::new(
            0,
            SnapshotRow {
                sort_key: projected.sort_key.clone(),
                path: projected.path.clone(),
                state: projected.state,
                outcome: projected.outcome.clone(),
                visibility: projected.visibility.clone(),
                body: projected.body.clone(),
                attributes: Value::Object(projected.attributes.clone()).to_string(),
                category: projected.category.clone(),
                source_turn: projected.turn,
            },
        );
        let render = RowRender::of(&projected);
        DerivedRow {
            source,
            projected,
            saved,
            render,
        }
    }
}

/// Derives every row afresh (one-off packets: benches, tools, tests).
pub fn derive_rows(
    rows: &[ContextRow],
    tools: &ToolRegistry,
    divisor: f64,
) -> Vec<Arc<DerivedRow>> {
    rows.iter()
        .map(|r| Arc::new(DerivedRow::new(Arc::new(r.clone()), tools, divisor)))
        .collect()
}

/// The derivations of one run's rows, kept between its turns. A memo of a
/// pure function of the row, the tool registry and the token divisor: an
/// engine holds one registry and one divisor, so the row decides.
#[derive(Debug, Default)]
pub struct DerivedRows {
    by_view: FastMap<i64, Arc<DerivedRow>>,
}

impl DerivedRows {
    /// `rows` (in packet order) with their derivations: kept ones where the
    /// row is the one derived from, new ones otherwise. Rows no longer
    /// present are forgotten.
    pub fn derive(
        &mut self,
        rows: Vec<Arc<ContextRow>>,
        tools: &ToolRegistry,
        divisor: f64,
    ) -> Vec<Arc<DerivedRow>> {
        let mut kept = fast_map::with_capacity(rows.len());
        let derived: Vec<Arc<DerivedRow>> = rows
            .into_iter()
            .map(|row| {
                let view = row.view_id;
                let d = match self.by_view.remove(&view) {
                    Some(d) if Arc::ptr_eq(&d.source, &row) => d,
                    _ => Arc::new(DerivedRow::new(row, tools, divisor)),
                };
                kept.insert(view, Arc::clone(&d));
                d
            })
            .collect();
        self.by_view = kept;
        derived
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntryState;

    fn row(view_id: i64, body: &str) -> Arc<ContextRow> {
        Arc::new(ContextRow {
            view_id,
            path: format!("known://{view_id}"),
            scheme: Some("known".into()),
            visibility: "visible".into(),
            state: EntryState::Resolved,
            outcome: None,
            body: body.into(),
            attributes: "{\"summary\":\"s\"}".into(),
            category: "data".into(),
            turn: 1,
            ordinal: 0,
            sort_key: format!("2{view_id:012}"),
        })
    }

    #[test]
    fn an_unchanged_row_keeps_its_derivation_and_a_changed_one_is_redone() {
        let tools = ToolRegistry::builtin();
        let mut memo = DerivedRows::default();
        let a = row(1, "alpha");
        let b = row(2, "beta");
        let first = memo.derive(vec![a.clone(), b.clone()], &tools, 2.0);
        let b2 = row(2, "beta, rewritten");
        let second = memo.derive(vec![a.clone(), b2], &tools, 2.0);
        assert!(Arc::ptr_eq(&first[0], &second[0]), "row 1 did not change");
        assert!(!Arc::ptr_eq(&first[1], &second[1]), "row 2 changed");
        assert!(second[1].projected.body.contains("rewritten"));
        // Each derivation equals a fresh one.
        for (d, fresh) in second.iter().zip(derive_rows(
            &[(*a).clone(), (*second[1].source).clone()],
            &tools,
            2.0,
        )) {
            assert_eq!(d.projected.body, fresh.projected.body);
            assert_eq!(d.projected.v_tokens, fresh.projected.v_tokens);
            assert_eq!(*d.saved, *fresh.saved);
        }
        // A row that left is forgotten: bringing an equal row back derives anew.
        let third = memo.derive(vec![b.clone()], &tools, 2.0);
        assert!(!Arc::ptr_eq(&third[0], &first[1]));
        assert_eq!(memo.by_view.len(), 1);
    }
}
