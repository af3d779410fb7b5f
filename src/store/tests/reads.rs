//! The model's context and the saved turn context.

use super::fixture::*;
use crate::store::schema as s;
use crate::store::*;
use diesel::prelude::*;

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
        state: EntryState::Resolved,
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
