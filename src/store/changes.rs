//! Entry-change reporting for the `run/changed` pulse.
//!
//! The store owns every write, so it is the one place that can see them
//! all. While someone listens (a [`WatchChanges`] sink is set), temporary
//! triggers on this connection record each changed view into a temporary
//! table; after every successful operation the store drains it and sends
//! the changes to the sink. With nobody listening the triggers do not
//! exist, so writes pay nothing. The triggers live in the `temp` schema:
//! the database file never holds them, and other processes are unaffected.

use super::{EntryStore, StoreResult};
use crate::protocol::notifications::ChangeType;
use actix::prelude::*;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;

/// One changed entry of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryChange {
    pub run_id: i64,
    pub run: String,
    pub project_id: i64,
    pub path: String,
    pub change: ChangeType,
}

/// The entries one store operation changed, in the order first changed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct EntriesChanged(pub Vec<EntryChange>);

/// Starts (`Some`) or stops (`None`) reporting changes.
#[derive(Message)]
#[rtype(result = "StoreResult<()>")]
pub struct WatchChanges {
    pub sink: Option<Recipient<EntriesChanged>>,
}

impl Handler<WatchChanges> for EntryStore {
    type Result = StoreResult<()>;
    fn handle(&mut self, msg: WatchChanges, _: &mut Self::Context) -> Self::Result {
        self.change_sink = msg.sink;
        let synced = self.sync_change_triggers();
        if let Err(e) = &synced {
            // The hub sends this without waiting; say why no pulse will come.
            tracing::warn!("could not switch entry-change recording: {e}");
        }
        synced
    }
}

// Full writes bump write_count (or repoint entry_id), so they read as
// upserts; the entries triggers catch body-only and attribute changes, and
// skip the fold of appended chunks (reported once, as `append`, when the
// chunk arrived).
const INSTALL: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS rummy_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL,
        path TEXT,
        change TEXT NOT NULL)",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_insert AFTER INSERT ON main.run_views
     BEGIN
        INSERT INTO rummy_changes (run_id, path, change)
        VALUES (NEW.run_id, (SELECT path FROM entries WHERE id = NEW.entry_id), 'upsert');
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_delete AFTER DELETE ON main.run_views
     BEGIN
        INSERT INTO rummy_changes (run_id, path, change)
        VALUES (OLD.run_id, (SELECT path FROM entries WHERE id = OLD.entry_id), 'remove');
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_update AFTER UPDATE ON main.run_views
     WHEN NEW.entry_id <> OLD.entry_id OR NEW.write_count <> OLD.write_count
       OR NEW.state <> OLD.state OR NEW.outcome IS NOT OLD.outcome
       OR NEW.visibility <> OLD.visibility
     BEGIN
        INSERT INTO rummy_changes (run_id, path, change)
        VALUES (NEW.run_id, (SELECT path FROM entries WHERE id = NEW.entry_id),
          CASE
            WHEN NEW.entry_id <> OLD.entry_id OR NEW.write_count <> OLD.write_count THEN 'upsert'
            WHEN NEW.state <> OLD.state OR NEW.outcome IS NOT OLD.outcome THEN 'resolve'
            WHEN NEW.visibility = 'visible' THEN 'promote'
            ELSE 'demote'
          END);
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_entry_update AFTER UPDATE ON main.entries
     WHEN (NEW.body IS NOT OLD.body OR NEW.attributes IS NOT OLD.attributes)
       AND NOT EXISTS (SELECT 1 FROM entry_chunks WHERE entry_id = NEW.id)
     BEGIN
        INSERT INTO rummy_changes (run_id, path, change)
        SELECT run_id, NEW.path,
          CASE WHEN NEW.body IS NOT OLD.body THEN 'body' ELSE 'attributes' END
        FROM run_views WHERE entry_id = NEW.id;
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_chunk_insert AFTER INSERT ON main.entry_chunks
     BEGIN
        INSERT INTO rummy_changes (run_id, path, change)
        SELECT run_id, (SELECT path FROM entries WHERE id = NEW.entry_id), 'append'
        FROM run_views WHERE entry_id = NEW.entry_id;
     END",
];

const UNINSTALL: &[&str] = &[
    "DROP TRIGGER IF EXISTS temp.rummy_view_insert",
    "DROP TRIGGER IF EXISTS temp.rummy_view_delete",
    "DROP TRIGGER IF EXISTS temp.rummy_view_update",
    "DROP TRIGGER IF EXISTS temp.rummy_entry_update",
    "DROP TRIGGER IF EXISTS temp.rummy_chunk_insert",
    "DROP TABLE IF EXISTS temp.rummy_changes",
];

/// Creates the recording triggers on this connection.
pub(crate) fn install(conn: &mut SqliteConnection) -> StoreResult<()> {
    for sql in INSTALL {
        diesel::sql_query(*sql).execute(conn)?;
    }
    Ok(())
}

/// Removes them (and anything recorded).
pub(crate) fn uninstall(conn: &mut SqliteConnection) -> StoreResult<()> {
    for sql in UNINSTALL {
        diesel::sql_query(*sql).execute(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = Text)]
    alias: String,
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = Text)]
    change: String,
}

/// How much a change says: a whole write or a removal says everything, so
/// it absorbs the smaller changes the same operation made to that path.
fn weight(c: ChangeType) -> u8 {
    match c {
        ChangeType::Upsert | ChangeType::Remove => 0,
        ChangeType::Body => 1,
        ChangeType::Append => 2,
        ChangeType::Resolve => 3,
        ChangeType::Promote | ChangeType::Demote => 4,
        ChangeType::Attributes => 5,
    }
}

fn parse_change(s: &str) -> ChangeType {
    match s {
        "remove" => ChangeType::Remove,
        "body" => ChangeType::Body,
        "append" => ChangeType::Append,
        "resolve" => ChangeType::Resolve,
        "promote" => ChangeType::Promote,
        "demote" => ChangeType::Demote,
        "attributes" => ChangeType::Attributes,
        _ => ChangeType::Upsert,
    }
}

/// Takes what the triggers recorded, one change per run and path (runs
/// deleted meanwhile drop out).
pub(crate) fn drain(conn: &mut SqliteConnection) -> StoreResult<Vec<EntryChange>> {
    let rows: Vec<Recorded> = diesel::sql_query(
        "SELECT c.run_id, r.alias, r.project_id, c.path, c.change \
         FROM temp.rummy_changes c JOIN runs r ON r.id = c.run_id \
         WHERE c.path IS NOT NULL ORDER BY c.seq",
    )
    .load(conn)?;
    diesel::sql_query("DELETE FROM temp.rummy_changes").execute(conn)?;
    Ok(merge(rows.into_iter().map(|r| EntryChange {
        run_id: r.run_id,
        run: r.alias,
        project_id: r.project_id,
        path: r.path,
        change: parse_change(&r.change),
    })))
}

/// One change per (run, path), in first-seen order; the weightiest wins,
/// and between equals (a removal and a rewrite) the later one.
fn merge(changes: impl Iterator<Item = EntryChange>) -> Vec<EntryChange> {
    // Indexed by (run, path): a bulk operation may change thousands of rows.
    let mut index: std::collections::HashMap<(i64, String), usize> =
        std::collections::HashMap::new();
    let mut out: Vec<EntryChange> = Vec::new();
    for c in changes {
        match index.get(&(c.run_id, c.path.clone())) {
            Some(&i) => {
                if let Some(o) = out
                    .get_mut(i)
                    .filter(|o| weight(c.change) <= weight(o.change))
                {
                    o.change = c.change;
                }
            }
            None => {
                index.insert((c.run_id, c.path.clone()), out.len());
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, change: ChangeType) -> EntryChange {
        EntryChange {
            run_id: 1,
            run: "r".into(),
            project_id: 1,
            path: path.into(),
            change,
        }
    }

    #[test]
    fn one_change_per_path_the_weightiest_winning() {
        let merged = merge(
            [
                change("a", ChangeType::Body),
                change("b", ChangeType::Attributes),
                change("a", ChangeType::Upsert),
                change("a", ChangeType::Resolve),
                change("b", ChangeType::Remove),
                change("b", ChangeType::Upsert),
            ]
            .into_iter(),
        );
        assert_eq!(
            merged,
            vec![
                change("a", ChangeType::Upsert),
                change("b", ChangeType::Upsert)
            ]
        );
    }
}
