//! The budget's demote verbs and the previous turn's provider count.

use super::fixture::*;
use crate::store::*;

fn visible_at(
    conn: &mut diesel::SqliteConnection,
    run: i64,
    path: &str,
    turn: i64,
    state: EntryState,
) {
    let writer = if path.starts_with("system://") {
        Writer::System
    } else {
        Writer::Plugin
    };
    exec(
        conn,
        SetEntry(EntryWrite {
            body: Some(format!("body of {path}")),
            visibility: Some("visible".into()),
            state: Some(state),
            turn,
            ..EntryWrite::new(run, path, writer)
        }),
    )
    .unwrap();
}

fn visibility(conn: &mut diesel::SqliteConnection, run: i64, path: &str) -> String {
    get(conn, run, path).expect(path).visibility
}

#[test]
fn turn_demotion_reports_files_and_spares_notes() {
    let mut fx = fixture();
    let run = fx.run;
    visible_at(&mut fx.conn, run, "src/big.rs", 3, EntryState::Resolved);
    visible_at(
        &mut fx.conn,
        run,
        "log://turn_3/get/big.rs",
        3,
        EntryState::Resolved,
    );
    visible_at(&mut fx.conn, run, "known://note", 3, EntryState::Resolved);
    visible_at(&mut fx.conn, run, "unknown://q", 3, EntryState::Resolved);
    visible_at(
        &mut fx.conn,
        run,
        "log://turn_3/error/x",
        3,
        EntryState::Failed,
    );
    visible_at(&mut fx.conn, run, "src/old.rs", 2, EntryState::Resolved);
    let demoted = exec(
        &mut fx.conn,
        DemoteTurnEntries {
            run_id: run,
            turn: 3,
        },
    )
    .unwrap();
    let paths: Vec<&str> = demoted.iter().map(|d| d.path.as_str()).collect();
    // The bare file is demoted and reported (upstream left it out).
    assert_eq!(paths, ["src/big.rs", "log://turn_3/get/big.rs"]);
    assert_eq!(demoted[0].body, "body of src/big.rs");
    assert_eq!(visibility(&mut fx.conn, run, "src/big.rs"), "summarized");
    for kept in [
        "known://note",
        "unknown://q",
        "log://turn_3/error/x",
        "src/old.rs",
    ] {
        assert_eq!(visibility(&mut fx.conn, run, kept), "visible", "{kept}");
    }
    // State is left alone.
    assert_eq!(
        get(&mut fx.conn, run, "src/big.rs").unwrap().state,
        EntryState::Resolved
    );
    // Nothing left to demote in that turn.
    assert!(exec(
        &mut fx.conn,
        DemoteTurnEntries {
            run_id: run,
            turn: 3
        }
    )
    .unwrap()
    .is_empty());
}

#[test]
fn run_wide_demotion_takes_every_visible_entry_by_turn() {
    let mut fx = fixture();
    let run = fx.run;
    visible_at(&mut fx.conn, run, "known://late", 5, EntryState::Resolved);
    visible_at(&mut fx.conn, run, "src/early.rs", 1, EntryState::Resolved);
    visible_at(
        &mut fx.conn,
        run,
        "log://turn_2/error/x",
        2,
        EntryState::Failed,
    );
    visible_at(
        &mut fx.conn,
        run,
        "log://turn_4/set/y",
        4,
        EntryState::Cancelled,
    );
    // Model-invisible schemes cost the packet nothing and are left alone.
    visible_at(&mut fx.conn, run, "system://1", 1, EntryState::Resolved);
    let other = new_run(&mut fx.conn, fx.project, "other").id;
    visible_at(
        &mut fx.conn,
        other,
        "known://theirs",
        1,
        EntryState::Resolved,
    );
    let demoted = exec(&mut fx.conn, DemoteRunVisibleEntries { run_id: run }).unwrap();
    let got: Vec<(&str, i64)> = demoted.iter().map(|d| (d.path.as_str(), d.turn)).collect();
    assert_eq!(got, [("src/early.rs", 1), ("known://late", 5)]);
    assert_eq!(visibility(&mut fx.conn, run, "known://late"), "summarized");
    assert_eq!(
        visibility(&mut fx.conn, run, "log://turn_2/error/x"),
        "visible"
    );
    assert_eq!(visibility(&mut fx.conn, other, "known://theirs"), "visible");
}

#[test]
fn previous_prompt_tokens_come_from_the_turn_before_only() {
    let mut fx = fixture();
    let run = fx.run;
    let lp = enqueue(&mut fx.conn, run, "p");
    let first = exec(
        &mut fx.conn,
        BeginTurn {
            run_id: run,
            loop_id: lp.id,
        },
    )
    .unwrap();
    assert_eq!(
        exec(
            &mut fx.conn,
            PreviousPromptTokens {
                run_id: run,
                turn: first.turn
            }
        )
        .unwrap(),
        None
    );
    exec(
        &mut fx.conn,
        RecordTurnUsage {
            turn_id: first.turn_id,
            usage: TurnUsage {
                context_tokens: 900,
                prompt_tokens: 800,
                ..TurnUsage::default()
            },
        },
    )
    .unwrap();
    let second = exec(
        &mut fx.conn,
        BeginTurn {
            run_id: run,
            loop_id: lp.id,
        },
    )
    .unwrap();
    assert_eq!(
        exec(
            &mut fx.conn,
            PreviousPromptTokens {
                run_id: run,
                turn: second.turn
            }
        )
        .unwrap(),
        Some(800)
    );
    // A skipped turn (no provider count) hides the older figure.
    let third = exec(
        &mut fx.conn,
        BeginTurn {
            run_id: run,
            loop_id: lp.id,
        },
    )
    .unwrap();
    assert_eq!(
        exec(
            &mut fx.conn,
            PreviousPromptTokens {
                run_id: run,
                turn: third.turn
            }
        )
        .unwrap(),
        None
    );
}
