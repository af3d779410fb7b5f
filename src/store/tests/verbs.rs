//! Pattern verbs: `ChangeVisibility` and bulk operations over many matches.

use super::fixture::*;
use crate::store::*;
use diesel::prelude::*;

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
            state: Some(EntryState::Failed),
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
            state: Some(EntryState::Proposed),
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
            state: Some(EntryState::Failed),
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
