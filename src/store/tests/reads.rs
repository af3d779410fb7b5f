//! The model's context and the saved turn context.

use super::fixture::*;
use crate::store::schema as s;
use crate::store::turn_context::TurnSnapshotSchemes;
use crate::store::*;
use diesel::prelude::*;
use diesel::SqliteConnection;

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
    TurnContextRow::new(
        ordinal,
        SnapshotRow {
            sort_key: format!("2{path}"),
            path: path.into(),
            state: EntryState::Resolved,
            outcome: None,
            visibility: "visible".into(),
            body: format!("body of {path}"),
            attributes: "{}".into(),
            category: "data".into(),
            source_turn: 0,
        },
    )
}

/// (path, turn, until_turn) of every stored row, by path then turn.
fn spans(conn: &mut SqliteConnection, run: i64) -> Vec<(String, i64, Option<i64>)> {
    s::turn_context::table
        .filter(s::turn_context::run_id.eq(run))
        .order((s::turn_context::path.asc(), s::turn_context::turn.asc()))
        .select((
            s::turn_context::path,
            s::turn_context::turn,
            s::turn_context::until_turn,
        ))
        .load(conn)
        .unwrap()
}

fn snapshot(conn: &mut SqliteConnection, run: i64, turn: i64) -> Vec<String> {
    exec(conn, TurnSnapshotSchemes { run_id: run, turn })
        .unwrap()
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn save_turn_context_writes_only_what_changed_and_keeps_every_turn_readable() {
    let mut fx = fixture();
    let lp = enqueue(&mut fx.conn, fx.run, "a").id;
    let save = |turn, rows: Vec<TurnContextRow>| SaveTurnContext {
        run_id: fx.run,
        loop_id: lp,
        turn,
        rows: rows.into(),
        token_divisor: 4.0,
        saved: None,
    };
    exec(
        &mut fx.conn,
        save(1, vec![tc_row(1, "known://a"), tc_row(2, "known://b")]),
    )
    .unwrap();
    // Turn 2: a unchanged (its ordinal moved), b gone, c new.
    exec(
        &mut fx.conn,
        save(2, vec![tc_row(2, "known://a"), tc_row(1, "known://c")]),
    )
    .unwrap();
    assert_eq!(
        spans(&mut fx.conn, fx.run),
        [
            ("known://a".into(), 1, None),
            ("known://b".into(), 1, Some(1)),
            ("known://c".into(), 2, None),
        ]
    );
    assert_eq!(
        snapshot(&mut fx.conn, fx.run, 1),
        ["known://a", "known://b"]
    );
    assert_eq!(
        snapshot(&mut fx.conn, fx.run, 2),
        ["known://a", "known://c"]
    );

    // Turn 2 saved again (post-dispatch) with a changed: the old a ends
    // with turn 1; then once more without it, and turn 2's own a goes.
    let changed = TurnContextRow::new(
        1,
        SnapshotRow {
            body: "new body".into(),
            ..(*tc_row(1, "known://a")).clone()
        },
    );
    exec(&mut fx.conn, save(2, vec![changed, tc_row(2, "known://c")])).unwrap();
    exec(&mut fx.conn, save(2, vec![tc_row(1, "known://c")])).unwrap();
    assert_eq!(
        spans(&mut fx.conn, fx.run),
        [
            ("known://a".into(), 1, Some(1)),
            ("known://b".into(), 1, Some(1)),
            ("known://c".into(), 2, None),
        ]
    );
    assert_eq!(
        snapshot(&mut fx.conn, fx.run, 1),
        ["known://a", "known://b"]
    );
    assert_eq!(snapshot(&mut fx.conn, fx.run, 2), ["known://c"]);

    // An older turn cannot be saved over a newer one; nothing changes.
    let before = spans(&mut fx.conn, fx.run);
    assert!(exec(&mut fx.conn, save(1, vec![tc_row(1, "known://d")])).is_err());
    assert_eq!(spans(&mut fx.conn, fx.run), before);

    // The distribution reads the turn's own rows.
    let report = |conn: &mut SqliteConnection, turn| {
        exec(
            conn,
            ReportRun {
                run_id: fx.run,
                turn,
                token_divisor: 4.0,
                scan: None,
                saved: None,
            },
        )
        .unwrap()
    };
    let r1 = report(&mut fx.conn, 1);
    assert_eq!(r1.distribution.len(), 1);
    assert_eq!(r1.distribution[0].bucket, "data");
    assert_eq!(r1.distribution[0].entries, 2);
    // "body of known://a" is 17 characters: ceil(17 / 4) = 5 tokens each.
    assert_eq!(r1.distribution[0].tokens, 10);
    assert_eq!(report(&mut fx.conn, 2).distribution[0].entries, 1);

    // An empty snapshot clears the latest turn.
    exec(&mut fx.conn, save(3, vec![])).unwrap();
    assert!(snapshot(&mut fx.conn, fx.run, 3).is_empty());
    assert!(report(&mut fx.conn, 3).distribution.is_empty());
    assert_eq!(snapshot(&mut fx.conn, fx.run, 2), ["known://c"]);
}

#[derive(diesel::QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// A write looks up the run's view of its path; that must go through the
/// path index, not walk every view of the run (the planner statistics).
#[test]
fn the_view_of_a_path_is_found_through_the_path_index() {
    let mut fx = fixture();
    let plan: Vec<String> = diesel::sql_query(
        "EXPLAIN QUERY PLAN SELECT run_views.visibility FROM run_views \
         INNER JOIN entries ON entries.id = run_views.entry_id \
         WHERE run_views.run_id = 1 AND entries.path = 'known://x'",
    )
    .load::<PlanRow>(&mut fx.conn)
    .unwrap()
    .into_iter()
    .map(|r| r.detail)
    .collect();
    assert!(
        plan[0].contains("entries") && plan[0].contains("idx_entries_path"),
        "{plan:?}"
    );
    assert!(plan[1].contains("idx_run_views_run_entry"), "{plan:?}");
}
