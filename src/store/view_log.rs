//! The run-view change log: which views of a run changed since a reader
//! last looked, so the turn loop re-reads only those rows instead of the
//! whole run each turn.
//!
//! Temporary triggers on the store's connection append `(run, view)` to a
//! temporary table for every insert, update and delete of a view and every
//! update of an entry's path, scheme, body or attributes (for each view of
//! it). A change to `schemes` logs a sentinel that sends every reader back
//! to a full read, since category and visibility come from there. The log
//! lives in the `temp` schema: the database file never holds it, other
//! processes are unaffected, and a rolled-back operation logs nothing.
//!
//! A reader holds a [`ViewCursor`]. The log's generation changes whenever
//! the log can no longer vouch for what it missed: it was just created (a
//! reopened connection starts without triggers), another connection
//! committed (`PRAGMA data_version` moved), or it grew past its cap and
//! was emptied. A cursor from another generation gets a full read.

use super::{prepared, StoreResult};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::SqliteConnection;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where a reader of the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewCursor {
    generation: i64,
    seq: i64,
}

/// What a reader must re-read.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Everything: the cursor is missing or from another generation.
    All,
    /// The views of the run logged after seq `from` up to `to` (ids,
    /// sorted, unique); they may be gone now.
    Views { views: Vec<i64>, from: i64, to: i64 },
}

/// Past this many logged changes the log is emptied (one full read per
/// reader) rather than kept growing on a long-lived server.
const CAP: i64 = 50_000;

/// The sentinel run id a `schemes` change logs.
const EVERY_RUN: i64 = -1;

/// Generations are unique within the process, so a connection reopened
/// after a failure never reuses one a reader still holds.
static NEXT_GENERATION: AtomicI64 = AtomicI64::new(1);

fn next_generation() -> i64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

const INSTALL: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS rummy_view_log (
        seq INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        view_id INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS temp.idx_rummy_view_log_run ON rummy_view_log (run_id, seq)",
    "CREATE TEMP TABLE IF NOT EXISTS rummy_view_log_state (
        generation INTEGER NOT NULL,
        data_version INTEGER NOT NULL)",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_insert AFTER INSERT ON main.run_views
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (NEW.run_id, NEW.id);
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_update AFTER UPDATE ON main.run_views
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (NEW.run_id, NEW.id);
        INSERT INTO rummy_view_log (run_id, view_id)
        SELECT OLD.run_id, OLD.id WHERE OLD.run_id <> NEW.run_id OR OLD.id <> NEW.id;
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_delete AFTER DELETE ON main.run_views
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (OLD.run_id, OLD.id);
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_entry AFTER UPDATE ON main.entries
     WHEN NEW.body IS NOT OLD.body OR NEW.attributes IS NOT OLD.attributes
       OR NEW.path IS NOT OLD.path OR NEW.scheme IS NOT OLD.scheme
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id)
        SELECT run_id, id FROM main.run_views WHERE entry_id = NEW.id;
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_scheme_insert AFTER INSERT ON main.schemes
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (-1, 0);
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_scheme_update AFTER UPDATE ON main.schemes
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (-1, 0);
     END",
    "CREATE TEMP TRIGGER IF NOT EXISTS rummy_view_log_scheme_delete AFTER DELETE ON main.schemes
     BEGIN
        INSERT INTO rummy_view_log (run_id, view_id) VALUES (-1, 0);
     END",
];

#[derive(QueryableByName)]
struct State {
    #[diesel(sql_type = BigInt)]
    generation: i64,
    #[diesel(sql_type = BigInt)]
    data_version: i64,
    #[diesel(sql_type = BigInt)]
    newest: i64,
}

#[derive(QueryableByName)]
struct Logged {
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = BigInt)]
    view_id: i64,
}

fn data_version(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(prepared("SELECT data_version FROM pragma_data_version")
        .returning::<BigInt>()
        .get_result(conn)?)
}

/// Creates the log on this connection unless it has one; returns whether
/// it had.
fn ensure(conn: &mut SqliteConnection) -> StoreResult<bool> {
    let present: i64 = prepared(
        "SELECT count(*) FROM temp.sqlite_master \
         WHERE type = 'table' AND name = 'rummy_view_log_state'",
    )
    .returning::<BigInt>()
    .get_result(conn)?;
    if present > 0 {
        return Ok(true);
    }
    for sql in INSTALL {
        diesel::sql_query(*sql).execute(conn)?;
    }
    let version = data_version(conn)?;
    prepared("INSERT INTO temp.rummy_view_log_state (generation, data_version) VALUES (?, ?)")
        .int(next_generation())
        .int(version)
        .execute(conn)?;
    Ok(false)
}

/// Empties the log and starts a new generation.
fn restart(conn: &mut SqliteConnection, version: i64) -> StoreResult<i64> {
    let generation = next_generation();
    prepared("DELETE FROM temp.rummy_view_log").execute(conn)?;
    prepared("UPDATE temp.rummy_view_log_state SET generation = ?, data_version = ?")
        .int(generation)
        .int(version)
        .execute(conn)?;
    Ok(generation)
}

/// What changed in `run` since `cursor`, and the cursor to keep for next
/// time. Call inside the transaction of the read that follows, so no write
/// falls between the two.
pub(crate) fn since(
    conn: &mut SqliteConnection,
    run: i64,
    cursor: Option<ViewCursor>,
) -> StoreResult<(Since, ViewCursor)> {
    let had_log = ensure(conn)?;
    let state: State = prepared(
        "SELECT s.generation AS generation, s.data_version AS data_version, \
           coalesce((SELECT max(seq) FROM temp.rummy_view_log), 0) AS newest \
         FROM temp.rummy_view_log_state AS s",
    )
    .get_result(conn)?;
    let version = data_version(conn)?;
    let (generation, newest) = if version != state.data_version || state.newest > CAP {
        (restart(conn, version)?, 0)
    } else {
        (state.generation, state.newest)
    };
    let now = ViewCursor {
        generation,
        seq: newest,
    };
    let from = match cursor {
        Some(c) if had_log && c.generation == generation && c.seq <= newest => c.seq,
        _ => return Ok((Since::All, now)),
    };
    let logged: Vec<Logged> = prepared(
        "SELECT run_id, view_id FROM temp.rummy_view_log \
         WHERE run_id IN (?, -1) AND seq > ? AND seq <= ?",
    )
    .int(run)
    .int(from)
    .int(newest)
    .load(conn)?;
    if logged.iter().any(|l| l.run_id == EVERY_RUN) {
        return Ok((Since::All, now));
    }
    let mut views: Vec<i64> = logged.into_iter().map(|l| l.view_id).collect();
    views.sort_unstable();
    views.dedup();
    Ok((
        Since::Views {
            views,
            from,
            to: newest,
        },
        now,
    ))
}
