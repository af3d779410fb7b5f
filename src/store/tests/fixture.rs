//! The shared fixture: a migrated temporary database, and helpers that run ops the way the
//! store actor does.

use crate::store::schema as s;
use crate::store::schemes::{bootstrap_schemes, RegisterSchemes};
use crate::store::*;
use diesel::prelude::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Runs one op in an immediate transaction, exactly like the store actor.
pub(super) fn exec<O: StoreOp>(conn: &mut SqliteConnection, op: O) -> StoreResult<O::Output> {
    conn.immediate_transaction(|c| op.run(c))
}

/// A migrated database with every boot scheme registered, one project and
/// one run (`r1`, status 100).
pub(super) struct Fx {
    pub(super) _dir: TempDir,
    pub(super) conn: SqliteConnection,
    pub(super) project: i64,
    pub(super) run: i64,
}

pub(super) fn open_db() -> (TempDir, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = crate::store::db::open(&dir.path().join("t.db"), 0).unwrap();
    let mut defs = bootstrap_schemes();
    defs.extend(crate::tools::ToolRegistry::builtin().schemes());
    exec(&mut conn, RegisterSchemes(defs)).unwrap();
    (dir, conn)
}

pub(super) fn fixture() -> Fx {
    let (dir, mut conn) = open_db();
    let project = exec(
        &mut conn,
        UpsertProject {
            name: "p".into(),
            project_root: "/tmp/p".into(),
            config_path: None,
        },
    )
    .unwrap();
    let run = new_run(&mut conn, project, "r1").id;
    Fx {
        _dir: dir,
        conn,
        project,
        run,
    }
}

pub(super) fn create_run(project_id: i64, alias: &str) -> CreateRun {
    CreateRun {
        project_id,
        parent_run_id: None,
        alias: alias.into(),
        model: "fake".into(),
        temperature: Some(0.5),
        persona: None,
        context_limit: None,
        prompt: format!("prompt of {alias}"),
        flags: serde_json::json!({}),
    }
}

pub(super) fn new_run(conn: &mut SqliteConnection, project: i64, alias: &str) -> RunRow {
    exec(conn, create_run(project, alias)).unwrap()
}

pub(super) fn set_status(conn: &mut SqliteConnection, run_id: i64, status: i64) -> StoreResult<()> {
    let status = RunStatus::try_from(status).expect("a run status");
    exec(conn, SetRunStatus { run_id, status })
}

pub(super) fn run_status(conn: &mut SqliteConnection, run_id: i64) -> i64 {
    exec(conn, GetRunById(run_id)).unwrap().status.code()
}

pub(super) fn enqueue(conn: &mut SqliteConnection, run_id: i64, prompt: &str) -> LoopRow {
    exec(
        conn,
        EnqueueLoop {
            run_id,
            mode: "ask".into(),
            model: None,
            prompt: prompt.into(),
            config: json!({}),
        },
    )
    .unwrap()
}

/// `(sequence, status)` of every loop of a run, by sequence.
pub(super) fn loop_statuses(conn: &mut SqliteConnection, run_id: i64) -> Vec<(i64, i64)> {
    s::loops::table
        .filter(s::loops::run_id.eq(run_id))
        .order(s::loops::sequence.asc())
        .select((s::loops::sequence, s::loops::status))
        .load(conn)
        .unwrap()
}

/// A full write with a body and nothing else.
pub(super) fn write(w: EntryWrite, body: &str) -> SetEntry {
    SetEntry(EntryWrite {
        body: Some(body.into()),
        ..w
    })
}

pub(super) fn put(conn: &mut SqliteConnection, run: i64, path: &str, writer: Writer, body: &str) {
    assert!(exec(conn, write(EntryWrite::new(run, path, writer), body)).unwrap());
}

pub(super) fn get(conn: &mut SqliteConnection, run_id: i64, path: &str) -> Option<EntryRow> {
    exec(
        conn,
        GetEntry {
            run_id,
            path: path.into(),
        },
    )
    .unwrap()
}

pub(super) fn attrs(row: &EntryRow) -> Value {
    serde_json::from_str(&row.attributes).unwrap()
}

pub(super) fn write_count(conn: &mut SqliteConnection, run_id: i64, path: &str) -> i64 {
    s::run_views::table
        .inner_join(s::entries::table)
        .filter(s::run_views::run_id.eq(run_id))
        .filter(s::entries::path.eq(path))
        .select(s::run_views::write_count)
        .first(conn)
        .unwrap()
}

pub(super) fn entry_count(conn: &mut SqliteConnection) -> i64 {
    s::entries::table.count().get_result(conn).unwrap()
}

pub(super) fn view_count(conn: &mut SqliteConnection) -> i64 {
    s::run_views::table.count().get_result(conn).unwrap()
}

pub(super) fn change(run_id: i64, pattern: &str, visibility: &str) -> ChangeVisibility {
    ChangeVisibility {
        run_id,
        pattern: pattern.into(),
        body_filter: None,
        visibility: visibility.into(),
        promote_turn: None,
    }
}
