//! Store operation tests on a real temporary database.
//!
//! Every operation runs through [`exec`], which wraps it in the same
//! immediate transaction `EntryStore::execute` uses, so "refused and changes
//! nothing" is checked with production's all-or-nothing semantics.

use super::schema as s;
use super::schemes::{bootstrap_schemes, RegisterSchemes};
use super::*;
use diesel::prelude::*;
use serde_json::{json, Map, Value};
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Fixture and helpers
// ---------------------------------------------------------------------------

/// Runs one op in an immediate transaction, exactly like the store actor.
fn exec<O: StoreOp>(conn: &mut SqliteConnection, op: O) -> StoreResult<O::Output> {
    conn.immediate_transaction(|c| op.run(c))
}

/// A migrated database with every boot scheme registered, one project and
/// one run (`r1`, status 100).
struct Fx {
    _dir: TempDir,
    conn: SqliteConnection,
    project: i64,
    run: i64,
}

fn open_db() -> (TempDir, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = super::db::open(&dir.path().join("t.db"), 0).unwrap();
    let mut defs = bootstrap_schemes();
    defs.extend(crate::tools::ToolRegistry::builtin().schemes());
    exec(&mut conn, RegisterSchemes(defs)).unwrap();
    (dir, conn)
}

fn fixture() -> Fx {
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

fn create_run(project_id: i64, alias: &str) -> CreateRun {
    CreateRun {
        project_id,
        parent_run_id: None,
        alias: alias.into(),
        model: "fake".into(),
        temperature: Some(0.5),
        persona: None,
        context_limit: None,
        prompt: format!("prompt of {alias}"),
    }
}

fn new_run(conn: &mut SqliteConnection, project: i64, alias: &str) -> RunRow {
    exec(conn, create_run(project, alias)).unwrap()
}

fn set_status(conn: &mut SqliteConnection, run_id: i64, status: i64) -> StoreResult<()> {
    exec(conn, SetRunStatus { run_id, status })
}

fn run_status(conn: &mut SqliteConnection, run_id: i64) -> i64 {
    exec(conn, GetRunById(run_id)).unwrap().status
}

fn enqueue(conn: &mut SqliteConnection, run_id: i64, prompt: &str) -> LoopRow {
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
fn loop_statuses(conn: &mut SqliteConnection, run_id: i64) -> Vec<(i64, i64)> {
    s::loops::table
        .filter(s::loops::run_id.eq(run_id))
        .order(s::loops::sequence.asc())
        .select((s::loops::sequence, s::loops::status))
        .load(conn)
        .unwrap()
}

/// A full write with a body and nothing else.
fn write(w: EntryWrite, body: &str) -> SetEntry {
    SetEntry(EntryWrite {
        body: Some(body.into()),
        ..w
    })
}

fn put(conn: &mut SqliteConnection, run: i64, path: &str, writer: Writer, body: &str) {
    assert!(exec(conn, write(EntryWrite::new(run, path, writer), body)).unwrap());
}

fn get(conn: &mut SqliteConnection, run_id: i64, path: &str) -> Option<EntryRow> {
    exec(
        conn,
        GetEntry {
            run_id,
            path: path.into(),
        },
    )
    .unwrap()
}

fn attrs(row: &EntryRow) -> Value {
    serde_json::from_str(&row.attributes).unwrap()
}

fn write_count(conn: &mut SqliteConnection, run_id: i64, path: &str) -> i64 {
    s::run_views::table
        .inner_join(s::entries::table)
        .filter(s::run_views::run_id.eq(run_id))
        .filter(s::entries::path.eq(path))
        .select(s::run_views::write_count)
        .first(conn)
        .unwrap()
}

fn entry_count(conn: &mut SqliteConnection) -> i64 {
    s::entries::table.count().get_result(conn).unwrap()
}

fn view_count(conn: &mut SqliteConnection) -> i64 {
    s::run_views::table.count().get_result(conn).unwrap()
}

fn change(run_id: i64, pattern: &str, visibility: &str) -> ChangeVisibility {
    ChangeVisibility {
        run_id,
        pattern: pattern.into(),
        body_filter: None,
        visibility: visibility.into(),
        promote_turn: None,
    }
}

// ---------------------------------------------------------------------------
// Projects and models
// ---------------------------------------------------------------------------

#[test]
fn upsert_project_same_name_returns_same_id_updates_root_and_keeps_config() {
    let (_dir, mut conn) = open_db();
    let first = exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/a".into(),
            config_path: Some("/a/rummy.toml".into()),
        },
    )
    .unwrap();
    let second = exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/b".into(),
            config_path: None,
        },
    )
    .unwrap();
    assert_eq!(first, second);
    let row: (Option<String>, Option<String>) = s::projects::table
        .find(first)
        .select((s::projects::project_root, s::projects::config_path))
        .first(&mut conn)
        .unwrap();
    assert_eq!(row, (Some("/b".into()), Some("/a/rummy.toml".into())));

    // A new non-null config path wins.
    exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/b".into(),
            config_path: Some("/b/rummy.toml".into()),
        },
    )
    .unwrap();
    let config: Option<String> = s::projects::table
        .find(first)
        .select(s::projects::config_path)
        .first(&mut conn)
        .unwrap();
    assert_eq!(config.as_deref(), Some("/b/rummy.toml"));

    let other = exec(
        &mut conn,
        UpsertProject {
            name: "other".into(),
            project_root: "/c".into(),
            config_path: None,
        },
    )
    .unwrap();
    assert_ne!(other, first);
}

#[test]
fn upsert_model_keeps_the_window_only_for_the_same_model() {
    let (_dir, mut conn) = open_db();
    let upsert = |alias: &str, actual: &str, context_length: Option<i64>| UpsertModel {
        alias: alias.into(),
        actual: actual.into(),
        context_length,
    };
    let id = exec(&mut conn, upsert("fast", "vendor/a", Some(8192))).unwrap();
    let again = exec(&mut conn, upsert("fast", "vendor/a", None)).unwrap();
    assert_eq!(id, again);
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(
        (
            row.id,
            row.alias.as_str(),
            row.actual.as_str(),
            row.context_length
        ),
        (id, "fast", "vendor/a", Some(8192))
    );

    // Another model under the alias: the old window no longer applies.
    exec(&mut conn, upsert("fast", "vendor/b", None)).unwrap();
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(
        (row.actual.as_str(), row.context_length),
        ("vendor/b", None)
    );

    exec(&mut conn, upsert("fast", "vendor/c", Some(4096))).unwrap();
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(row.actual, "vendor/c");
    assert_eq!(row.context_length, Some(4096));

    assert_eq!(exec(&mut conn, GetModel("nope".into())).unwrap(), None);
}

#[test]
fn list_models_sorted_by_alias_with_limit_and_offset() {
    let (_dir, mut conn) = open_db();
    for alias in ["charlie", "alpha", "bravo"] {
        exec(
            &mut conn,
            UpsertModel {
                alias: alias.into(),
                actual: format!("x/{alias}"),
                context_length: None,
            },
        )
        .unwrap();
    }
    let aliases = |conn: &mut SqliteConnection, limit, offset| -> Vec<String> {
        exec(conn, ListModels { limit, offset })
            .unwrap()
            .into_iter()
            .map(|m| m.alias)
            .collect()
    };
    assert_eq!(
        aliases(&mut conn, None, None),
        ["alpha", "bravo", "charlie"]
    );
    assert_eq!(aliases(&mut conn, Some(2), None), ["alpha", "bravo"]);
    assert_eq!(aliases(&mut conn, Some(2), Some(1)), ["bravo", "charlie"]);
    assert_eq!(aliases(&mut conn, None, Some(2)), ["charlie"]);
    assert!(aliases(&mut conn, Some(5), Some(3)).is_empty());
}

#[test]
fn remove_model_returns_rows_removed_and_zero_for_unknown_alias() {
    let (_dir, mut conn) = open_db();
    exec(
        &mut conn,
        UpsertModel {
            alias: "m".into(),
            actual: "x/m".into(),
            context_length: Some(2048),
        },
    )
    .unwrap();
    assert_eq!(exec(&mut conn, RemoveModel("unknown".into())).unwrap(), 0);
    assert!(exec(&mut conn, GetModel("m".into())).unwrap().is_some());
    assert_eq!(exec(&mut conn, RemoveModel("m".into())).unwrap(), 1);
    assert_eq!(exec(&mut conn, GetModel("m".into())).unwrap(), None);
    assert_eq!(exec(&mut conn, RemoveModel("m".into())).unwrap(), 0);
}

// ---------------------------------------------------------------------------
// Runs and their status
// ---------------------------------------------------------------------------

#[test]
fn create_run_is_queued_with_a_proposed_run_entry() {
    let mut fx = fixture();
    let run = exec(&mut fx.conn, GetRunById(fx.run)).unwrap();
    assert_eq!(run.status, 100);
    assert_eq!(run.alias, "r1");
    assert_eq!(run.project_id, fx.project);
    assert_eq!(run.model.as_deref(), Some("fake"));
    assert_eq!((run.next_turn, run.next_loop), (1, 1));

    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.scheme.as_deref(), Some("run"));
    assert_eq!(entry.state, "proposed");
    assert_eq!(entry.outcome, None);
    assert_eq!(entry.body, "prompt of r1");
    assert_eq!(entry.visibility, "visible");
    let a = attrs(&entry);
    assert_eq!(a["model"], "fake");
    assert_eq!(a["projectId"], fx.project);
    assert_eq!(a["temperature"], 0.5);
    assert_eq!(a["parentRunId"], Value::Null);

    let by_alias = exec(
        &mut fx.conn,
        GetRun {
            alias: "r1".into(),
            project_id: Some(fx.project),
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(by_alias.id, fx.run);
}

#[test]
fn create_run_refuses_a_taken_alias() {
    let mut fx = fixture();
    let runs_before: i64 = s::runs::table.count().get_result(&mut fx.conn).unwrap();
    let err = exec(&mut fx.conn, create_run(fx.project, "r1")).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(err.to_string(), "Run alias 'r1' is already taken.");
    let runs_after: i64 = s::runs::table.count().get_result(&mut fx.conn).unwrap();
    assert_eq!(runs_before, runs_after);
    // The original run's entry is untouched.
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.body, "prompt of r1");
}

#[test]
fn set_run_status_running_then_completed_mirrors_the_run_entry() {
    let mut fx = fixture();
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    assert_eq!(run_status(&mut fx.conn, fx.run), 102);
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!((entry.state.as_str(), entry.outcome), ("streaming", None));

    set_status(&mut fx.conn, fx.run, 200).unwrap();
    assert_eq!(run_status(&mut fx.conn, fx.run), 200);
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!((entry.state.as_str(), entry.outcome), ("resolved", None));
    // The status mirror never touches the prompt body.
    assert_eq!(entry.body, "prompt of r1");
}

#[test]
fn set_run_status_to_the_same_status_is_a_no_op() {
    let mut fx = fixture();
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    set_status(&mut fx.conn, fx.run, 200).unwrap();
    set_status(&mut fx.conn, fx.run, 200).unwrap();
    assert_eq!(run_status(&mut fx.conn, fx.run), 200);
    assert_eq!(
        get(&mut fx.conn, fx.run, "run://r1").unwrap().state,
        "resolved"
    );
}

#[test]
fn set_run_status_refuses_illegal_transitions_and_changes_nothing() {
    let mut fx = fixture();
    // 100 -> 200 skips running.
    let err = set_status(&mut fx.conn, fx.run, 200).unwrap_err();
    assert!(err.is_constraint(), "{err:?}");
    assert!(err.to_string().contains("invalid run state transition"));
    assert_eq!(run_status(&mut fx.conn, fx.run), 100);
    assert_eq!(
        get(&mut fx.conn, fx.run, "run://r1").unwrap().state,
        "proposed"
    );

    // 499 -> 200: an aborted run can only be restarted (-> 102).
    set_status(&mut fx.conn, fx.run, 499).unwrap();
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.state, "cancelled");
    assert_eq!(entry.outcome.as_deref(), Some("status:499"));

    let err = set_status(&mut fx.conn, fx.run, 200).unwrap_err();
    assert!(err.is_constraint(), "{err:?}");
    assert_eq!(run_status(&mut fx.conn, fx.run), 499);
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.state, "cancelled");
    assert_eq!(entry.outcome.as_deref(), Some("status:499"));

    // The legal way out.
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!((entry.state.as_str(), entry.outcome), ("streaming", None));
}

#[test]
fn set_run_status_allows_running_to_204_and_422() {
    let mut fx = fixture();
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    set_status(&mut fx.conn, fx.run, 204).unwrap();
    assert_eq!(run_status(&mut fx.conn, fx.run), 204);
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!((entry.state.as_str(), entry.outcome), ("resolved", None));
    // 204 runs may be continued like 200 runs.
    set_status(&mut fx.conn, fx.run, 102).unwrap();

    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    set_status(&mut fx.conn, other, 102).unwrap();
    set_status(&mut fx.conn, other, 422).unwrap();
    assert_eq!(run_status(&mut fx.conn, other), 422);
    let entry = get(&mut fx.conn, other, "run://r2").unwrap();
    assert_eq!(entry.state, "failed");
    assert_eq!(entry.outcome.as_deref(), Some("status:422"));
    set_status(&mut fx.conn, other, 499).unwrap();
}

// ---------------------------------------------------------------------------
// Loops
// ---------------------------------------------------------------------------

#[test]
fn enqueue_loop_assigns_sequences_one_two_three() {
    let mut fx = fixture();
    let seqs: Vec<i64> = ["a", "b", "c"]
        .into_iter()
        .map(|p| enqueue(&mut fx.conn, fx.run, p).sequence)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let lp = enqueue(&mut fx.conn, fx.run, "d");
    assert_eq!((lp.sequence, lp.status, lp.mode.as_str()), (4, 100, "ask"));
    assert_eq!(lp.config.as_deref(), Some("{}"));
    assert_eq!(exec(&mut fx.conn, GetRunById(fx.run)).unwrap().next_loop, 5);

    // Sequences are per run.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    assert_eq!(enqueue(&mut fx.conn, other, "x").sequence, 1);
}

#[test]
fn claim_next_loop_is_fifo_and_none_when_the_queue_is_empty() {
    let mut fx = fixture();
    for p in ["first", "second", "third"] {
        enqueue(&mut fx.conn, fx.run, p);
    }
    let mut claimed = Vec::new();
    while let Some(lp) = exec(&mut fx.conn, ClaimNextLoop(fx.run)).unwrap() {
        assert_eq!(lp.status, 102);
        claimed.push(lp.prompt.clone());
        exec(
            &mut fx.conn,
            CompleteLoop {
                loop_id: lp.id,
                status: 200,
                result: json!({"ok": true}),
            },
        )
        .unwrap();
    }
    assert_eq!(claimed, ["first", "second", "third"]);
    assert_eq!(
        loop_statuses(&mut fx.conn, fx.run),
        [(1, 200), (2, 200), (3, 200)]
    );
    let result: Option<String> = s::loops::table
        .filter(s::loops::run_id.eq(fx.run))
        .select(s::loops::result)
        .first(&mut fx.conn)
        .unwrap();
    assert_eq!(result.as_deref(), Some(r#"{"ok":true}"#));
}

#[test]
fn claim_next_loop_while_one_is_running_claims_nothing() {
    let mut fx = fixture();
    enqueue(&mut fx.conn, fx.run, "first");
    enqueue(&mut fx.conn, fx.run, "second");
    let running = exec(&mut fx.conn, ClaimNextLoop(fx.run)).unwrap().unwrap();
    assert_eq!(running.sequence, 1);

    // One active loop per run: a second claim finds nothing to claim.
    assert!(exec(&mut fx.conn, ClaimNextLoop(fx.run)).unwrap().is_none());
    assert_eq!(loop_statuses(&mut fx.conn, fx.run), [(1, 102), (2, 100)]);

    // Another run's queue is independent.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    enqueue(&mut fx.conn, other, "x");
    assert!(exec(&mut fx.conn, ClaimNextLoop(other)).unwrap().is_some());
}

#[test]
fn abort_run_ends_queued_and_running_loops_and_the_run_at_499() {
    let mut fx = fixture();
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    for p in ["done", "running", "queued"] {
        enqueue(&mut fx.conn, fx.run, p);
    }
    let done = exec(&mut fx.conn, ClaimNextLoop(fx.run)).unwrap().unwrap();
    exec(
        &mut fx.conn,
        CompleteLoop {
            loop_id: done.id,
            status: 200,
            result: json!({}),
        },
    )
    .unwrap();
    exec(&mut fx.conn, ClaimNextLoop(fx.run)).unwrap().unwrap();

    let run = exec(
        &mut fx.conn,
        AbortRun {
            run_id: fx.run,
            reason: "user".into(),
        },
    )
    .unwrap()
    .expect("a run with loops in flight is aborted");
    assert_eq!(run.status, 499);
    assert_eq!(
        loop_statuses(&mut fx.conn, fx.run),
        [(1, 200), (2, 499), (3, 499)]
    );
    let results: Vec<Option<String>> = s::loops::table
        .filter(s::loops::run_id.eq(fx.run))
        .filter(s::loops::status.eq(499))
        .select(s::loops::result)
        .load(&mut fx.conn)
        .unwrap();
    for r in results {
        let v: Value = serde_json::from_str(r.as_deref().unwrap()).unwrap();
        assert_eq!(v, json!({"reason": "user"}));
    }
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.state, "cancelled");
    assert_eq!(entry.outcome.as_deref(), Some("status:499"));

    // Aborting an aborted run does nothing.
    let again = exec(
        &mut fx.conn,
        AbortRun {
            run_id: fx.run,
            reason: "again".into(),
        },
    )
    .unwrap();
    assert!(again.is_none());
    assert_eq!(get_run_status(&mut fx.conn, fx.run), 499);
}

fn get_run_status(conn: &mut SqliteConnection, run_id: i64) -> i64 {
    s::runs::table
        .find(run_id)
        .select(s::runs::status)
        .first(conn)
        .unwrap()
}

#[test]
fn abort_leaves_a_finished_run_alone() {
    let mut fx = fixture();
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    set_status(&mut fx.conn, fx.run, 200).unwrap();
    let aborted = exec(
        &mut fx.conn,
        AbortRun {
            run_id: fx.run,
            reason: "late".into(),
        },
    )
    .unwrap();
    assert!(aborted.is_none());
    assert_eq!(get_run_status(&mut fx.conn, fx.run), 200);
}

#[test]
fn abort_run_of_a_queued_run_works() {
    let mut fx = fixture();
    enqueue(&mut fx.conn, fx.run, "queued");
    let run = exec(
        &mut fx.conn,
        AbortRun {
            run_id: fx.run,
            reason: "stop".into(),
        },
    )
    .unwrap()
    .expect("a queued run is aborted");
    assert_eq!(run.status, 499);
    assert_eq!(loop_statuses(&mut fx.conn, fx.run), [(1, 499)]);
}

// ---------------------------------------------------------------------------
// Turns and usage
// ---------------------------------------------------------------------------

#[test]
fn begin_turn_numbers_are_run_wide_across_loops() {
    let mut fx = fixture();
    let l1 = enqueue(&mut fx.conn, fx.run, "a").id;
    let l2 = enqueue(&mut fx.conn, fx.run, "b").id;
    let begin = |conn: &mut SqliteConnection, loop_id| {
        exec(
            conn,
            BeginTurn {
                run_id: fx.run,
                loop_id,
            },
        )
        .unwrap()
    };
    let t1 = begin(&mut fx.conn, l1);
    let t2 = begin(&mut fx.conn, l1);
    let t3 = begin(&mut fx.conn, l2);
    assert_eq!((t1.turn, t2.turn, t3.turn), (1, 2, 3));
    assert_eq!(exec(&mut fx.conn, GetRunById(fx.run)).unwrap().next_turn, 4);

    let rows: Vec<(i64, i64, i64)> = s::turns::table
        .filter(s::turns::run_id.eq(fx.run))
        .order(s::turns::id.asc())
        .select((s::turns::id, s::turns::loop_id, s::turns::sequence))
        .load(&mut fx.conn)
        .unwrap();
    assert_eq!(
        rows,
        [
            (t1.turn_id, l1, 1),
            (t2.turn_id, l1, 2),
            (t3.turn_id, l2, 3)
        ]
    );
}

#[test]
fn record_turn_usage_stores_the_numbers() {
    let mut fx = fixture();
    let lp = enqueue(&mut fx.conn, fx.run, "a").id;
    let t = exec(
        &mut fx.conn,
        BeginTurn {
            run_id: fx.run,
            loop_id: lp,
        },
    )
    .unwrap();
    exec(
        &mut fx.conn,
        RecordTurnUsage {
            turn_id: t.turn_id,
            usage: TurnUsage {
                context_tokens: 1234,
                prompt_tokens: 1000,
                cached_tokens: 200,
                completion_tokens: 50,
                reasoning_tokens: 7,
                total_tokens: 1050,
                cost: 0.25,
                reasoning_content: Some("thinking".into()),
            },
        },
    )
    .unwrap();
    type Row = (i64, i64, i64, i64, i64, i64, f64, Option<String>);
    let row: Row = s::turns::table
        .find(t.turn_id)
        .select((
            s::turns::context_tokens,
            s::turns::prompt_tokens,
            s::turns::cached_tokens,
            s::turns::completion_tokens,
            s::turns::reasoning_tokens,
            s::turns::total_tokens,
            s::turns::cost,
            s::turns::reasoning_content,
        ))
        .first(&mut fx.conn)
        .unwrap();
    assert_eq!(
        row,
        (1234, 1000, 200, 50, 7, 1050, 0.25, Some("thinking".into()))
    );

    // Negative provider numbers are clamped instead of tripping the CHECKs.
    exec(
        &mut fx.conn,
        RecordTurnUsage {
            turn_id: t.turn_id,
            usage: TurnUsage {
                prompt_tokens: -3,
                cost: -1.0,
                ..TurnUsage::default()
            },
        },
    )
    .unwrap();
    let (prompt, cost): (i64, f64) = s::turns::table
        .find(t.turn_id)
        .select((s::turns::prompt_tokens, s::turns::cost))
        .first(&mut fx.conn)
        .unwrap();
    assert_eq!((prompt, cost), (0, 0.0));
}

#[test]
fn report_run_sums_usage_and_keeps_the_newest_nonzero_context_tokens() {
    let mut fx = fixture();
    let lp = enqueue(&mut fx.conn, fx.run, "a").id;
    let usages = [(100, 10, 0.5), (250, 20, 0.25), (0, 30, 0.0)];
    for (context_tokens, prompt_tokens, cost) in usages {
        let t = exec(
            &mut fx.conn,
            BeginTurn {
                run_id: fx.run,
                loop_id: lp,
            },
        )
        .unwrap();
        exec(
            &mut fx.conn,
            RecordTurnUsage {
                turn_id: t.turn_id,
                usage: TurnUsage {
                    context_tokens,
                    prompt_tokens,
                    cached_tokens: 1,
                    completion_tokens: 2,
                    reasoning_tokens: 3,
                    total_tokens: prompt_tokens + 2,
                    cost,
                    reasoning_content: None,
                },
            },
        )
        .unwrap();
    }
    // Another run's usage does not leak in.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    let olp = enqueue(&mut fx.conn, other, "x").id;
    let ot = exec(
        &mut fx.conn,
        BeginTurn {
            run_id: other,
            loop_id: olp,
        },
    )
    .unwrap();
    exec(
        &mut fx.conn,
        RecordTurnUsage {
            turn_id: ot.turn_id,
            usage: TurnUsage {
                context_tokens: 9999,
                prompt_tokens: 9999,
                ..TurnUsage::default()
            },
        },
    )
    .unwrap();

    let report = exec(
        &mut fx.conn,
        ReportRun {
            run_id: fx.run,
            turn: 3,
            token_divisor: 4.0,
        },
    )
    .unwrap();
    let u = report.usage;
    assert_eq!(u.prompt_tokens, 60);
    assert_eq!(u.cached_tokens, 3);
    assert_eq!(u.completion_tokens, 6);
    assert_eq!(u.reasoning_tokens, 9);
    assert_eq!(u.total_tokens, 66);
    assert!((u.cost - 0.75).abs() < 1e-9, "{}", u.cost);
    assert_eq!(u.last_context_tokens, 250);

    // A run without turns reports zeros.
    let empty = new_run(&mut fx.conn, fx.project, "r3").id;
    let report = exec(
        &mut fx.conn,
        ReportRun {
            run_id: empty,
            turn: 1,
            token_divisor: 4.0,
        },
    )
    .unwrap();
    assert_eq!(report.usage.total_tokens, 0);
    assert_eq!(report.usage.last_context_tokens, 0);
    assert_eq!(report.usage.cost, 0.0);
}

// ---------------------------------------------------------------------------
// SetEntry: full writes
// ---------------------------------------------------------------------------

#[test]
fn set_entry_full_write_defaults_to_resolved_turn_zero_and_empty_attributes() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "body");
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.state, "resolved");
    assert_eq!(e.outcome, None);
    assert_eq!(e.turn, 0);
    assert_eq!(e.body, "body");
    assert_eq!(attrs(&e), json!({}));
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);

    // "" is a valid body; explicit state/turn are stored.
    assert!(exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some(String::new()),
            state: Some("proposed".into()),
            turn: 4,
            ..EntryWrite::new(fx.run, "known://empty", Writer::Plugin)
        }),
    )
    .unwrap());
    let e = get(&mut fx.conn, fx.run, "known://empty").unwrap();
    assert_eq!(
        (e.body.as_str(), e.state.as_str(), e.turn),
        ("", "proposed", 4)
    );
}

#[test]
fn set_entry_default_visibility_comes_from_the_scheme() {
    let mut fx = fixture();
    let cases = [
        ("known://k", Writer::Model, "summarized"),
        ("unknown://u", Writer::Model, "visible"),
        ("log://turn_1/set/x", Writer::Model, "visible"),
        ("src/main.rs", Writer::Model, "visible"),
        ("prompt://1", Writer::Plugin, "visible"),
        ("unregistered://z", Writer::Model, "visible"),
    ];
    for (path, writer, expected) in cases {
        put(&mut fx.conn, fx.run, path, writer, "b");
        let e = get(&mut fx.conn, fx.run, path).unwrap();
        assert_eq!(e.visibility, expected, "{path}");
    }
    assert_eq!(
        get(&mut fx.conn, fx.run, "src/main.rs").unwrap().scheme,
        None
    );

    // An explicit visibility beats the scheme default.
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            visibility: Some("visible".into()),
            ..EntryWrite::new(fx.run, "known://explicit", Writer::Model)
        }),
    )
    .unwrap();
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://explicit")
            .unwrap()
            .visibility,
        "visible"
    );
}

#[test]
fn set_entry_rewrite_increments_write_count_and_replaces_the_body() {
    let mut fx = fixture();
    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        put(&mut fx.conn, fx.run, "known://x", Writer::Model, body);
        assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), i as i64 + 1);
    }
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://x").unwrap().body,
        "three"
    );
    assert_eq!(entry_count(&mut fx.conn), 2); // run://r1 and known://x
    assert_eq!(view_count(&mut fx.conn), 2);
}

#[test]
fn set_entry_attributes_are_replaced_when_given_and_kept_when_none() {
    let mut fx = fixture();
    let with_attrs = |body: &str, a: Option<Value>| {
        SetEntry(EntryWrite {
            body: Some(body.into()),
            attributes: a,
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        })
    };
    exec(&mut fx.conn, with_attrs("1", Some(json!({"a": 1, "b": 2})))).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"a": 1, "b": 2}));

    exec(&mut fx.conn, with_attrs("2", Some(json!({"c": 3})))).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"c": 3}));

    exec(&mut fx.conn, with_attrs("3", None)).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.body, "3");
    assert_eq!(attrs(&e), json!({"c": 3}));
}

#[test]
fn set_entry_log_write_with_attributes_gets_action_injected() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("set known://a".into()),
            attributes: Some(json!({"path": "known://a"})),
            ..EntryWrite::new(fx.run, "log://turn_2/set/known%3A//a", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "log://turn_2/set/known%3A//a").unwrap();
    assert_eq!(attrs(&e), json!({"path": "known://a", "action": "set"}));

    // No attributes: nothing injected.
    put(
        &mut fx.conn,
        fx.run,
        "log://turn_2/get/src",
        Writer::Model,
        "x",
    );
    let e = get(&mut fx.conn, fx.run, "log://turn_2/get/src").unwrap();
    assert_eq!(attrs(&e), json!({}));

    // Non-log schemes never get an action.
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("k".into()),
            attributes: Some(json!({"x": 1})),
            ..EntryWrite::new(fx.run, "known://turn_2/set/x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://turn_2/set/x").unwrap();
    assert_eq!(attrs(&e), json!({"x": 1}));
}

#[test]
fn set_entry_client_write_to_known_is_refused_with_the_exact_message() {
    let mut fx = fixture();
    // Pin `known` to the plain tool row (model, plugin): which tiers the
    // tool registry lets write it is policy; this tests the store's check.
    exec(
        &mut fx.conn,
        RegisterSchemes(vec![super::SchemeDef::tool("known", "data")]),
    )
    .unwrap();
    let entries_before = entry_count(&mut fx.conn);
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "known://x", Writer::Client), "b"),
    )
    .unwrap_err();
    match &err {
        StoreError::Permission {
            writer,
            scheme,
            allowed,
        } => {
            assert_eq!(
                (writer.as_str(), scheme.as_str(), allowed.as_str()),
                ("client", "known", "model, plugin")
            );
        }
        other => panic!("expected Permission, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"403: writer "client" not permitted for scheme "known" (allowed: model, plugin)"#
    );
    assert!(get(&mut fx.conn, fx.run, "known://x").is_none());
    assert_eq!(entry_count(&mut fx.conn), entries_before);

    // System is not a model/plugin tier either.
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "known://x", Writer::System), "b"),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Permission { .. }), "{err:?}");
}

#[test]
fn set_entry_bare_path_permission_error_names_the_file_scheme() {
    let mut fx = fixture();
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "src/main.rs", Writer::Client), "fn"),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Permission { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"403: writer "client" not permitted for scheme "file" (allowed: model, plugin)"#
    );
    assert!(get(&mut fx.conn, fx.run, "src/main.rs").is_none());
}

#[test]
fn set_entry_audit_schemes_are_writable_by_system_only() {
    let mut fx = fixture();
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "system://1", Writer::Model), "s"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"403: writer "model" not permitted for scheme "system" (allowed: system)"#
    );
    put(&mut fx.conn, fx.run, "system://1", Writer::System, "s");
}

#[test]
fn set_entry_full_write_normalizes_the_path() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "KNOWN://a b", Writer::Model, "spaced");
    let e = get(&mut fx.conn, fx.run, "known://a%20b").unwrap();
    assert_eq!(e.path, "known://a%20b");
    assert_eq!(e.scheme.as_deref(), Some("known"));
    assert_eq!(e.body, "spaced");
    // The raw spelling finds the same entry, and rewriting it does not
    // create a second one.
    assert_eq!(
        get(&mut fx.conn, fx.run, "KNOWN://a b").unwrap().path,
        e.path
    );
    put(
        &mut fx.conn,
        fx.run,
        "known://a%20b",
        Writer::Model,
        "again",
    );
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://a%20b"), 2);
    assert_eq!(entry_count(&mut fx.conn), 2);
}

#[test]
fn set_entry_views_are_per_run() {
    let mut fx = fixture();
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "mine");
    assert!(get(&mut fx.conn, other, "known://x").is_none());
    put(&mut fx.conn, other, "known://x", Writer::Model, "theirs");
    assert_eq!(get(&mut fx.conn, fx.run, "known://x").unwrap().body, "mine");
    assert_eq!(
        get(&mut fx.conn, other, "known://x").unwrap().body,
        "theirs"
    );
    let listed: Vec<String> = exec(&mut fx.conn, ListEntries(fx.run))
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(listed, ["known://x", "run://r1"]);
}

// ---------------------------------------------------------------------------
// SetEntry: body-less writes
// ---------------------------------------------------------------------------

#[test]
fn set_entry_bodyless_state_change_sets_and_clears_the_outcome() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            turn: 3,
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some("failed".into()),
            outcome: Some("status:500".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    assert!(changed);
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.state, "failed");
    assert_eq!(e.outcome.as_deref(), Some("status:500"));
    // Body, visibility, turn and write count are untouched.
    assert_eq!(
        (e.body.as_str(), e.visibility.as_str(), e.turn),
        ("b", "summarized", 3)
    );
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);

    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some("resolved".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!((e.state.as_str(), e.outcome), ("resolved", None));
}

#[test]
fn set_entry_bodyless_visibility_change_alone() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            state: Some("failed".into()),
            outcome: Some("x".into()),
            attributes: Some(json!({"k": 1})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    assert!(exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            visibility: Some("archived".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap());
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.visibility, "archived");
    assert_eq!(e.state, "failed");
    assert_eq!(e.outcome.as_deref(), Some("x"));
    assert_eq!(e.body, "b");
    assert_eq!(attrs(&e), json!({"k": 1}));
}

#[test]
fn set_entry_bodyless_attributes_are_merged_and_null_deletes_a_key() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            attributes: Some(json!({"a": 1, "b": 2, "n": {"x": 1, "y": 2}})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            attributes: Some(json!({"b": null, "c": 3, "n": {"y": null}})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"a": 1, "c": 3, "n": {"x": 1}}));
    assert_eq!(e.state, "resolved");
    assert_eq!(e.visibility, "summarized");
}

#[test]
fn set_entry_bodyless_on_a_missing_entry_is_a_no_op() {
    let mut fx = fixture();
    let entries_before = entry_count(&mut fx.conn);
    let views_before = view_count(&mut fx.conn);
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some("resolved".into()),
            visibility: Some("visible".into()),
            attributes: Some(json!({"a": 1})),
            ..EntryWrite::new(fx.run, "known://missing", Writer::Model)
        }),
    )
    .unwrap();
    assert!(!changed);
    assert!(get(&mut fx.conn, fx.run, "known://missing").is_none());
    assert_eq!(entry_count(&mut fx.conn), entries_before);
    assert_eq!(view_count(&mut fx.conn), views_before);

    // Another run's entry of that path is not reached either.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    put(&mut fx.conn, other, "known://theirs", Writer::Model, "b");
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some("failed".into()),
            ..EntryWrite::new(fx.run, "known://theirs", Writer::Model)
        }),
    )
    .unwrap();
    assert!(!changed);
    assert_eq!(
        get(&mut fx.conn, other, "known://theirs").unwrap().state,
        "resolved"
    );
}

#[test]
fn set_entry_refuses_invalid_state_and_visibility() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "b");
    let bad = [
        EntryWrite {
            state: Some("done".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        },
        EntryWrite {
            visibility: Some("hidden".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        },
        EntryWrite {
            body: Some("new".into()),
            state: Some("RESOLVED".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        },
        EntryWrite {
            body: Some("new".into()),
            visibility: Some("".into()),
            ..EntryWrite::new(fx.run, "known://y", Writer::Model)
        },
    ];
    for w in bad {
        let err = exec(&mut fx.conn, SetEntry(w.clone())).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{w:?}: {err:?}");
    }
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(
        (e.body.as_str(), e.state.as_str(), e.visibility.as_str()),
        ("b", "resolved", "summarized")
    );
    assert!(get(&mut fx.conn, fx.run, "known://y").is_none());
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);
}

// ---------------------------------------------------------------------------
// ChangeVisibility
// ---------------------------------------------------------------------------

#[test]
fn change_visibility_exact_path() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://a", Writer::Model, "a");
    put(&mut fx.conn, fx.run, "known://ab", Writer::Model, "ab");
    let matched = exec(&mut fx.conn, change(fx.run, "known://a", "visible")).unwrap();
    assert_eq!(matched, ["known://a"]);
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://a").unwrap().visibility,
        "visible"
    );
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://ab").unwrap().visibility,
        "summarized"
    );
    // An exact pattern is normalized like a path.
    let matched = exec(&mut fx.conn, change(fx.run, "KNOWN://ab", "archived")).unwrap();
    assert_eq!(matched, ["known://ab"]);
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://ab").unwrap().visibility,
        "archived"
    );
}

#[test]
fn change_visibility_glob_right_after_the_scheme_spans_segments() {
    let mut fx = fixture();
    for path in ["known://a", "known://a/b", "known://a/b/c", "unknown://a"] {
        put(&mut fx.conn, fx.run, path, Writer::Model, "x");
    }
    let matched = exec(&mut fx.conn, change(fx.run, "known://*", "archived")).unwrap();
    assert_eq!(matched, ["known://a", "known://a/b", "known://a/b/c"]);
    for path in ["known://a", "known://a/b", "known://a/b/c"] {
        assert_eq!(
            get(&mut fx.conn, fx.run, path).unwrap().visibility,
            "archived"
        );
    }
    assert_eq!(
        get(&mut fx.conn, fx.run, "unknown://a").unwrap().visibility,
        "visible"
    );
}

#[test]
fn change_visibility_glob_inside_a_segment_stays_in_it() {
    let mut fx = fixture();
    for path in ["known://plan_a", "known://plan_a/b", "known://planb"] {
        put(&mut fx.conn, fx.run, path, Writer::Model, "x");
    }
    let matched = exec(&mut fx.conn, change(fx.run, "known://plan_*", "visible")).unwrap();
    assert_eq!(matched, ["known://plan_a"]);
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://plan_a/b")
            .unwrap()
            .visibility,
        "summarized"
    );
}

#[test]
fn change_visibility_promote_resolves_clears_outcome_and_sets_turn() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("x".into()),
            state: Some("failed".into()),
            outcome: Some("status:500".into()),
            turn: 1,
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("y".into()),
            state: Some("proposed".into()),
            turn: 1,
            ..EntryWrite::new(fx.run, "known://y", Writer::Model)
        }),
    )
    .unwrap();
    let matched = exec(
        &mut fx.conn,
        ChangeVisibility {
            promote_turn: Some(5),
            ..change(fx.run, "known://*", "visible")
        },
    )
    .unwrap();
    assert_eq!(matched, ["known://x", "known://y"]);
    for path in ["known://x", "known://y"] {
        let e = get(&mut fx.conn, fx.run, path).unwrap();
        assert_eq!(
            (e.visibility.as_str(), e.state.as_str(), e.outcome, e.turn),
            ("visible", "resolved", None, 5),
            "{path}"
        );
    }
    // Without promote_turn, state/outcome/turn stay.
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some("failed".into()),
            outcome: Some("o".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    exec(&mut fx.conn, change(fx.run, "known://x", "summarized")).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(
        (
            e.visibility.as_str(),
            e.state.as_str(),
            e.outcome.as_deref(),
            e.turn
        ),
        ("summarized", "failed", Some("o"), 5)
    );
}

#[test]
fn change_visibility_without_a_match_returns_empty() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://a", Writer::Model, "a");
    assert!(
        exec(&mut fx.conn, change(fx.run, "known://nope", "visible"))
            .unwrap()
            .is_empty()
    );
    assert!(exec(&mut fx.conn, change(fx.run, "sh://*", "visible"))
        .unwrap()
        .is_empty());
    // Another run's entries never match.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    assert!(exec(&mut fx.conn, change(other, "known://*", "visible"))
        .unwrap()
        .is_empty());
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://a").unwrap().visibility,
        "summarized"
    );
    let err = exec(&mut fx.conn, change(fx.run, "known://a", "hidden")).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[test]
fn change_visibility_exact_path_with_brackets_is_literal() {
    let mut fx = fixture();
    // A Next.js-style file path; spec 01 §4: `file[12].js` is literal.
    put(&mut fx.conn, fx.run, "src/[id].tsx", Writer::Model, "page");
    put(&mut fx.conn, fx.run, "src/i.tsx", Writer::Model, "other");
    let matched = exec(&mut fx.conn, change(fx.run, "src/[id].tsx", "visible")).unwrap();
    assert_eq!(matched, ["src/[id].tsx"]);
}

#[test]
fn change_visibility_file_dot_star_is_literal() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "file.*", Writer::Model, "x");
    put(&mut fx.conn, fx.run, "file.js", Writer::Model, "x");
    let matched = exec(&mut fx.conn, change(fx.run, "file.*", "archived")).unwrap();
    assert_eq!(matched, ["file.*"]);
}

// ---------------------------------------------------------------------------
// Log paths and error records
// ---------------------------------------------------------------------------

#[test]
fn allocate_log_paths_suffixes_used_and_repeated_bases() {
    let mut fx = fixture();
    put(
        &mut fx.conn,
        fx.run,
        "log://turn_1/set/a",
        Writer::System,
        "x",
    );
    let paths = exec(
        &mut fx.conn,
        AllocateLogPaths {
            run_id: fx.run,
            bases: vec![
                "log://turn_1/set/a".into(),
                "log://turn_1/get/b".into(),
                "log://turn_1/get/b".into(),
                "log://turn_1/get/b".into(),
            ],
        },
    )
    .unwrap();
    assert_eq!(
        paths,
        [
            "log://turn_1/set/a_1",
            "log://turn_1/get/b",
            "log://turn_1/get/b_1",
            "log://turn_1/get/b_2",
        ]
    );
    // Allocation reserves nothing in the database.
    assert!(get(&mut fx.conn, fx.run, "log://turn_1/get/b").is_none());

    // A taken suffix is skipped too.
    put(
        &mut fx.conn,
        fx.run,
        "log://turn_1/set/a_1",
        Writer::System,
        "x",
    );
    let paths = exec(
        &mut fx.conn,
        AllocateLogPaths {
            run_id: fx.run,
            bases: vec!["log://turn_1/set/a".into()],
        },
    )
    .unwrap();
    assert_eq!(paths, ["log://turn_1/set/a_2"]);

    // Another run's paths do not count.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    let paths = exec(
        &mut fx.conn,
        AllocateLogPaths {
            run_id: other,
            bases: vec!["log://turn_1/set/a".into()],
        },
    )
    .unwrap();
    assert_eq!(paths, ["log://turn_1/set/a"]);
}

fn log_error(run_id: i64, turn: i64, message: &str, status: i64) -> LogError {
    LogError {
        run_id,
        turn,
        loop_id: None,
        message: message.into(),
        status,
        attributes: Map::new(),
    }
}

#[test]
fn log_error_writes_a_failed_visible_record() {
    let mut fx = fixture();
    let lp = enqueue(&mut fx.conn, fx.run, "a").id;
    let mut extra = Map::new();
    extra.insert("tool".into(), json!("set"));
    let path = exec(
        &mut fx.conn,
        LogError {
            loop_id: Some(lp),
            attributes: extra,
            ..log_error(fx.run, 3, "boom: bad thing", 500)
        },
    )
    .unwrap();
    assert_eq!(path, "log://turn_3/error/boom%3A%20bad%20thing");
    let e = get(&mut fx.conn, fx.run, &path).unwrap();
    assert_eq!(e.scheme.as_deref(), Some("log"));
    assert_eq!(e.body, "boom: bad thing");
    assert_eq!(e.state, "failed");
    assert_eq!(e.outcome.as_deref(), Some("status:500"));
    assert_eq!(e.visibility, "visible");
    assert_eq!(e.turn, 3);
    assert_eq!(
        attrs(&e),
        json!({"tool": "set", "status": 500, "action": "error"})
    );

    // The same message again gets its own entry.
    let second = exec(&mut fx.conn, log_error(fx.run, 3, "boom: bad thing", 413)).unwrap();
    assert_eq!(second, "log://turn_3/error/boom%3A%20bad%20thing_1");
    let e = get(&mut fx.conn, fx.run, &second).unwrap();
    assert_eq!(e.outcome.as_deref(), Some("status:413"));
    assert_eq!(attrs(&e)["status"], 413);
}

#[test]
fn log_error_with_a_huge_message_keeps_the_path_under_the_limit() {
    let mut fx = fixture();
    for (i, unit) in ["x", "é", "🦀", "/", "%"].into_iter().enumerate() {
        let message = unit.repeat(5000);
        let path = exec(&mut fx.conn, log_error(fx.run, 7, &message, 500)).unwrap();
        assert!(path.len() < 2048, "{unit}: {}", path.len());
        assert!(path.starts_with("log://turn_7/error/"), "{path}");
        let e = get(&mut fx.conn, fx.run, &path).unwrap();
        assert_eq!(e.body, message, "body is stored whole");
        assert_eq!(e.state, "failed");
        assert_eq!(
            exec(&mut fx.conn, ListEntries(fx.run)).unwrap().len(),
            i + 2
        );
    }
}

// ---------------------------------------------------------------------------
// Model context and turn context
// ---------------------------------------------------------------------------

#[test]
fn model_context_excludes_archived_and_audit_rows() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://kept", Writer::Model, "k");
    put(&mut fx.conn, fx.run, "known://gone", Writer::Model, "g");
    put(&mut fx.conn, fx.run, "system://1", Writer::System, "sys");
    put(&mut fx.conn, fx.run, "unregistered://z", Writer::Model, "z");
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            visibility: Some("archived".into()),
            ..EntryWrite::new(fx.run, "known://gone", Writer::Model)
        }),
    )
    .unwrap();
    let paths: Vec<String> = exec(&mut fx.conn, ModelContext(fx.run))
        .unwrap()
        .into_iter()
        .map(|r| r.path)
        .collect();
    // run://r1 is model-invisible, unregistered schemes have no row.
    assert_eq!(paths, ["known://kept"]);

    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    assert!(exec(&mut fx.conn, ModelContext(other)).unwrap().is_empty());
}

#[test]
fn model_context_orders_data_then_logging_then_prompt() {
    let mut fx = fixture();
    // Written in reverse of the expected order.
    put(
        &mut fx.conn,
        fx.run,
        "prompt://1",
        Writer::Plugin,
        "question",
    );
    put(&mut fx.conn, fx.run, "unknown://u", Writer::Model, "u");
    put(
        &mut fx.conn,
        fx.run,
        "log://turn_1/set/x",
        Writer::Model,
        "log",
    );
    put(&mut fx.conn, fx.run, "src/main.rs", Writer::Model, "file");
    put(&mut fx.conn, fx.run, "known://k", Writer::Model, "k");
    let rows = exec(&mut fx.conn, ModelContext(fx.run)).unwrap();
    let got: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.category.as_str(), r.ordinal))
        .collect();
    assert_eq!(
        got,
        [
            ("known://k", "data", 1), // summarized before visible
            ("src/main.rs", "data", 2),
            ("log://turn_1/set/x", "logging", 3),
            ("unknown://u", "unknown", 4),
            ("prompt://1", "prompt", 5),
        ]
    );
    assert_eq!(rows[1].scheme, None);
}

fn tc_row(ordinal: i64, path: &str) -> TurnContextRow {
    TurnContextRow {
        ordinal,
        path: path.into(),
        state: "resolved".into(),
        outcome: None,
        visibility: "visible".into(),
        body: format!("body of {path}"),
        attributes: "{}".into(),
        category: "data".into(),
        source_turn: 0,
    }
}

#[test]
fn save_turn_context_replaces_the_rows_of_one_turn() {
    let mut fx = fixture();
    let lp = enqueue(&mut fx.conn, fx.run, "a").id;
    let save = |turn, rows| SaveTurnContext {
        run_id: fx.run,
        loop_id: lp,
        turn,
        rows,
    };
    exec(
        &mut fx.conn,
        save(1, vec![tc_row(1, "known://a"), tc_row(2, "known://b")]),
    )
    .unwrap();
    exec(&mut fx.conn, save(2, vec![tc_row(1, "known://c")])).unwrap();
    exec(&mut fx.conn, save(1, vec![tc_row(1, "known://d")])).unwrap();

    let rows: Vec<(i64, i64, String, Option<String>)> = s::turn_context::table
        .filter(s::turn_context::run_id.eq(fx.run))
        .order((s::turn_context::turn.asc(), s::turn_context::ordinal.asc()))
        .select((
            s::turn_context::turn,
            s::turn_context::ordinal,
            s::turn_context::path,
            s::turn_context::scheme,
        ))
        .load(&mut fx.conn)
        .unwrap();
    assert_eq!(
        rows,
        [
            (1, 1, "known://d".into(), Some("known".into())),
            (2, 1, "known://c".into(), Some("known".into())),
        ]
    );

    // An empty snapshot clears the turn; the distribution reads it.
    exec(&mut fx.conn, save(1, vec![])).unwrap();
    let report = exec(
        &mut fx.conn,
        ReportRun {
            run_id: fx.run,
            turn: 2,
            token_divisor: 4.0,
        },
    )
    .unwrap();
    assert_eq!(report.distribution.len(), 1);
    assert_eq!(report.distribution[0].bucket, "data");
    assert_eq!(report.distribution[0].entries, 1);
    let left: i64 = s::turn_context::table
        .filter(s::turn_context::turn.eq(1))
        .count()
        .get_result(&mut fx.conn)
        .unwrap();
    assert_eq!(left, 0);
}

// ---------------------------------------------------------------------------
// ListRuns and recovery
// ---------------------------------------------------------------------------

fn update(conn: &mut SqliteConnection, run: i64, path: &str, body: &str, status: i64) {
    exec(
        conn,
        SetEntry(EntryWrite {
            body: Some(body.into()),
            attributes: Some(json!({"status": status})),
            ..EntryWrite::new(run, path, Writer::System)
        }),
    )
    .unwrap();
}

#[test]
fn list_runs_newest_first_with_latest_update_summary_and_turn() {
    let mut fx = fixture();
    let r2 = new_run(&mut fx.conn, fx.project, "r2").id;
    new_run(&mut fx.conn, fx.project, "r3");
    let lp = enqueue(&mut fx.conn, r2, "a").id;
    for _ in 0..2 {
        exec(
            &mut fx.conn,
            BeginTurn {
                run_id: r2,
                loop_id: lp,
            },
        )
        .unwrap();
    }
    update(
        &mut fx.conn,
        r2,
        "log://turn_1/update/working",
        "working",
        102,
    );
    update(
        &mut fx.conn,
        r2,
        "log://turn_2/update/done",
        "all done",
        200,
    );
    // Other projects' runs are not listed.
    let p2 = exec(
        &mut fx.conn,
        UpsertProject {
            name: "p2".into(),
            project_root: "/tmp/p2".into(),
            config_path: None,
        },
    )
    .unwrap();
    new_run(&mut fx.conn, p2, "elsewhere");

    let list = exec(
        &mut fx.conn,
        ListRuns {
            project_id: fx.project,
            limit: None,
            offset: None,
        },
    )
    .unwrap();
    let got: Vec<(&str, i64, i64, Option<&str>)> = list
        .iter()
        .map(|r| (r.run.as_str(), r.status, r.turn, r.summary.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("r3", 100, 0, None),
            ("r2", 100, 2, Some("all done")),
            ("r1", 100, 0, None),
        ]
    );
    assert!(list.iter().all(|r| r.created.is_some()));

    let page = exec(
        &mut fx.conn,
        ListRuns {
            project_id: fx.project,
            limit: Some(1),
            offset: Some(1),
        },
    )
    .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].run, "r2");
}

#[test]
fn recover_interrupted_ends_unfinished_runs_and_requeues_running_loops() {
    let mut fx = fixture();
    // r1 stays queued (100).
    let running = new_run(&mut fx.conn, fx.project, "running").id;
    set_status(&mut fx.conn, running, 102).unwrap();
    enqueue(&mut fx.conn, running, "a");
    enqueue(&mut fx.conn, running, "b");
    exec(&mut fx.conn, ClaimNextLoop(running)).unwrap().unwrap();

    let done = new_run(&mut fx.conn, fx.project, "done").id;
    set_status(&mut fx.conn, done, 102).unwrap();
    set_status(&mut fx.conn, done, 200).unwrap();

    let pending = new_run(&mut fx.conn, fx.project, "pending").id;
    set_status(&mut fx.conn, pending, 102).unwrap();
    set_status(&mut fx.conn, pending, 202).unwrap();

    let n = exec(&mut fx.conn, RecoverInterrupted).unwrap();
    assert_eq!(n, 2);
    assert_eq!(run_status(&mut fx.conn, fx.run), 499);
    assert_eq!(run_status(&mut fx.conn, running), 499);
    assert_eq!(run_status(&mut fx.conn, done), 200);
    assert_eq!(run_status(&mut fx.conn, pending), 202);
    assert_eq!(loop_statuses(&mut fx.conn, running), [(1, 100), (2, 100)]);
    for (id, alias) in [(fx.run, "r1"), (running, "running")] {
        let e = get(&mut fx.conn, id, &format!("run://{alias}")).unwrap();
        assert_eq!(e.state, "cancelled", "{alias}");
        assert_eq!(e.outcome.as_deref(), Some("status:499"));
    }
    assert_eq!(
        exec(&mut fx.conn, ActiveRunIds).unwrap(),
        [pending],
        "only the 202 run is still in flight"
    );

    // A second recovery finds nothing.
    assert_eq!(exec(&mut fx.conn, RecoverInterrupted).unwrap(), 0);
}

#[test]
fn pattern_operations_handle_more_matches_than_sqlite_binds_at_once() {
    let mut fx = fixture();
    // Seeded in bulk with SQL: 33,000 file entries and their views.
    diesel::sql_query(format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 32999) \
         INSERT INTO entries (scope, path, body) SELECT 'run:{run}', 'src/f' || i || '.rs', '' FROM n",
        run = fx.run
    ))
    .execute(&mut fx.conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO run_views (run_id, entry_id, visibility) \
         SELECT {run}, id, 'archived' FROM entries WHERE path LIKE 'src/f%'",
        run = fx.run
    ))
    .execute(&mut fx.conn)
    .unwrap();
    let promoted = exec(&mut fx.conn, change(fx.run, "src/**", "visible")).unwrap();
    assert_eq!(promoted.len(), 33_000);
    let removed = exec(
        &mut fx.conn,
        RemoveEntries {
            run_id: fx.run,
            path: "src/**".into(),
            body_filter: None,
            writer: Writer::Plugin,
        },
    )
    .unwrap();
    assert_eq!(removed.len(), 33_000);
}
