//! A run's stored settings after it started: configuring its next loops
//! (model, temperature, persona, context limit, loop flags) and renaming
//! it.

use super::entries::{find_view, write_entry, EntryWrite};
use super::runs::{RunRow, RUN_COLUMNS};
use super::schema::{entries, loops, runs};
use super::FirstRow;
use super::{store_ops, RunStatus, StoreError, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde_json::{json, Map, Value};

/// New stored settings; `None` leaves a setting as it is. `flags` is the
/// whole new flag set (the caller merged it).
pub struct ConfigureRun {
    pub run_id: i64,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    pub flags: Option<Value>,
}

impl StoreOp for ConfigureRun {
    type Output = RunRow;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunRow> {
        let target = runs::table.find(self.run_id);
        if let Some(m) = &self.model {
            diesel::update(target)
                .set(runs::model.eq(m))
                .execute(conn)?;
        }
        if let Some(t) = self.temperature {
            diesel::update(target)
                .set(runs::temperature.eq(t))
                .execute(conn)?;
        }
        if let Some(p) = &self.persona {
            diesel::update(target)
                .set(runs::persona.eq(p))
                .execute(conn)?;
        }
        if let Some(l) = self.context_limit {
            diesel::update(target)
                .set(runs::context_limit.eq(l))
                .execute(conn)?;
        }
        if let Some(f) = &self.flags {
            diesel::update(target)
                .set(runs::flags.eq(f.to_string()))
                .execute(conn)?;
        }
        let row: RunRow = target.select(RUN_COLUMNS).first_row(conn)?;
        // The run:// entry mirrors the settings, as at creation.
        let mut attributes = Map::new();
        if let Some(m) = self.model {
            attributes.insert("model".into(), json!(m));
        }
        if let Some(t) = self.temperature {
            attributes.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.persona {
            attributes.insert("persona".into(), json!(p));
        }
        if let Some(l) = self.context_limit {
            attributes.insert("contextLimit".into(), json!(l));
        }
        if !attributes.is_empty() {
            write_entry(
                conn,
                &EntryWrite {
                    attributes: Some(Value::Object(attributes)),
                    ..EntryWrite::new(row.id, format!("run://{}", row.alias), Writer::System)
                },
            )?;
        }
        Ok(row)
    }
}

/// Gives a run a new alias; its `run://` entry moves with it. Refuses an
/// alias any run holds.
pub struct RenameRun {
    pub run_id: i64,
    pub to: String,
}

impl StoreOp for RenameRun {
    type Output = RunRow;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunRow> {
        let taken: i64 = runs::table
            .filter(runs::alias.eq(&self.to))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(StoreError::Invalid(format!(
                "Run alias '{}' is already taken.",
                self.to
            )));
        }
        let old: String = runs::table
            .find(self.run_id)
            .select(runs::alias)
            .first_row(conn)?;
        // Decided here, in the transaction: a loop queued a moment ago
        // counts even before the run's status shows it.
        let working: i64 = loops::table
            .filter(loops::run_id.eq(self.run_id))
            .filter(loops::status.eq_any([RunStatus::Queued, RunStatus::Running]))
            .count()
            .get_result(conn)?;
        if working > 0 {
            return Err(StoreError::Invalid(format!(
                "Run '{old}' is working; rename it once it has stopped."
            )));
        }
        if let Some((_, entry_id)) = find_view(conn, self.run_id, &format!("run://{old}"))? {
            diesel::update(entries::table.find(entry_id))
                .set(entries::path.eq(format!("run://{}", self.to)))
                .execute(conn)?;
        }
        diesel::update(runs::table.find(self.run_id))
            .set(runs::alias.eq(&self.to))
            .execute(conn)?;
        Ok(runs::table
            .find(self.run_id)
            .select(RUN_COLUMNS)
            .first_row(conn)?)
    }
}

store_ops!(
    ConfigureRun => RunRow,
    RenameRun => RunRow,
);
