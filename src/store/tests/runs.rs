//! Runs and their status, loops, listing and boot recovery.

use super::fixture::*;
use crate::store::schema as s;
use crate::store::*;
use diesel::prelude::*;
use serde_json::{json, Value};

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
    assert_eq!(entry.state, EntryState::Proposed);
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
        EntryState::Resolved
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
        EntryState::Proposed
    );

    // 499 -> 200: an aborted run can only be restarted (-> 102).
    set_status(&mut fx.conn, fx.run, 499).unwrap();
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.state, EntryState::Cancelled);
    assert_eq!(entry.outcome.as_deref(), Some("status:499"));

    let err = set_status(&mut fx.conn, fx.run, 200).unwrap_err();
    assert!(err.is_constraint(), "{err:?}");
    assert_eq!(run_status(&mut fx.conn, fx.run), 499);
    let entry = get(&mut fx.conn, fx.run, "run://r1").unwrap();
    assert_eq!(entry.state, EntryState::Cancelled);
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
    assert_eq!(entry.state, EntryState::Failed);
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
    assert_eq!(
        (lp.sequence, lp.status.code(), lp.mode.as_str()),
        (4, 100, "ask")
    );
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
                status: RunStatus::Completed,
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
            status: RunStatus::Completed,
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
    assert_eq!(entry.state, EntryState::Cancelled);
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
        .map(|r| {
            (
                r.run.as_str(),
                r.status.code(),
                r.turn,
                r.summary.as_deref(),
            )
        })
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

    // At 202 with nothing pending: nothing to wait for, so it ends too.
    let pending = new_run(&mut fx.conn, fx.project, "pending").id;
    set_status(&mut fx.conn, pending, 102).unwrap();
    set_status(&mut fx.conn, pending, 202).unwrap();

    let recovery = exec(&mut fx.conn, RecoverInterrupted).unwrap();
    assert_eq!(recovery.aborted, 3);
    assert!(recovery.waiting.is_empty());
    assert_eq!(run_status(&mut fx.conn, fx.run), 499);
    assert_eq!(run_status(&mut fx.conn, running), 499);
    assert_eq!(run_status(&mut fx.conn, done), 200);
    assert_eq!(run_status(&mut fx.conn, pending), 499);
    assert_eq!(loop_statuses(&mut fx.conn, running), [(1, 100), (2, 100)]);
    for (id, alias) in [(fx.run, "r1"), (running, "running")] {
        let e = get(&mut fx.conn, id, &format!("run://{alias}")).unwrap();
        assert_eq!(e.state, EntryState::Cancelled, "{alias}");
        assert_eq!(e.outcome.as_deref(), Some("status:499"));
    }
    assert!(exec(&mut fx.conn, ActiveRunIds).unwrap().is_empty());

    // A second recovery finds nothing.
    assert_eq!(exec(&mut fx.conn, RecoverInterrupted).unwrap().aborted, 0);
}

/// A run waiting on a proposal, with its turn's plan recorded: recovery
/// leaves it waiting and its loop active; without a plan it ends 499 and
/// its proposal is cancelled.
#[test]
fn recover_interrupted_keeps_a_run_waiting_on_a_proposal() {
    let mut fx = fixture();
    let waiting_run = |conn: &mut SqliteConnection, alias: &str, plan: bool| {
        let id = new_run(conn, fx.project, alias).id;
        set_status(conn, id, 102).unwrap();
        let lp = enqueue(conn, id, "make a file");
        exec(conn, ClaimNextLoop(id)).unwrap().unwrap();
        let start = exec(
            conn,
            BeginTurn {
                run_id: id,
                loop_id: lp.id,
            },
        )
        .unwrap();
        exec(
            conn,
            SetEntry(EntryWrite {
                body: Some("<set path=\"a.txt\">x</set>".into()),
                turn: start.turn,
                ..EntryWrite::new(id, format!("assistant://{}", start.turn), Writer::System)
            }),
        )
        .unwrap();
        if plan {
            exec(
                conn,
                SaveDispatchPlan {
                    turn_id: start.turn_id,
                    paths: vec!["log://turn_1/set/a.txt".into()],
                },
            )
            .unwrap();
        }
        exec(
            conn,
            SetEntry(EntryWrite {
                body: Some("x".into()),
                state: Some(EntryState::Proposed),
                turn: start.turn,
                ..EntryWrite::new(id, "log://turn_1/set/a.txt", Writer::Plugin)
            }),
        )
        .unwrap();
        set_status(conn, id, 202).unwrap();
        (id, lp.id)
    };
    let (kept, kept_loop) = waiting_run(&mut fx.conn, "kept", true);
    let (lost, _) = waiting_run(&mut fx.conn, "lost", false);

    let recovery = exec(&mut fx.conn, RecoverInterrupted).unwrap();
    assert_eq!(recovery.waiting, [kept]);
    assert_eq!(run_status(&mut fx.conn, kept), 202);
    assert_eq!(loop_statuses(&mut fx.conn, kept), [(1, 102)]);
    let turn = exec(
        &mut fx.conn,
        GetInterruptedTurn {
            run_id: kept,
            loop_id: kept_loop,
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(turn.turn, 1);
    assert_eq!(turn.plan, ["log://turn_1/set/a.txt"]);
    assert_eq!(turn.reply, "<set path=\"a.txt\">x</set>");
    assert_eq!((turn.errors, turn.loop_turns), (0, 1));

    assert_eq!(run_status(&mut fx.conn, lost), 499);
    let e = get(&mut fx.conn, lost, "log://turn_1/set/a.txt").unwrap();
    assert_eq!(e.state, EntryState::Cancelled);
    assert_eq!(e.outcome.as_deref(), Some("interrupted"));
}
