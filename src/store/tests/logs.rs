//! Log path allocation and error records.

use super::fixture::*;
use crate::store::*;
use serde_json::{json, Map};

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
    assert_eq!(e.state, EntryState::Failed);
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
        assert_eq!(e.state, EntryState::Failed);
        assert_eq!(
            exec(&mut fx.conn, ListEntries(fx.run)).unwrap().len(),
            i + 2
        );
    }
}
