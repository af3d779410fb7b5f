//! Turns and their usage, and the run report.

use super::fixture::*;
use crate::store::schema as s;
use crate::store::*;
use diesel::prelude::*;

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
            scan: None,
            saved: None,
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
            scan: None,
            saved: None,
        },
    )
    .unwrap();
    assert_eq!(report.usage.total_tokens, 0);
    assert_eq!(report.usage.last_context_tokens, 0);
    assert_eq!(report.usage.cost, 0.0);
}
