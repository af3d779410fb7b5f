//! The incrementally kept model context equals a fresh read after every
//! kind of change, and the view log sends readers back to a full read
//! whenever it cannot vouch for what they missed.

use super::fixture::*;
use crate::store::schemes::RegisterSchemes;
use crate::store::view_log::{since, Since};
use crate::store::*;
use diesel::prelude::*;
use proptest::prelude::*;
use std::sync::Arc;

/// The cached read, with ordinals numbered as a fresh read numbers them.
fn cached(conn: &mut SqliteConnection, run: i64, cache: &SharedContextRows) -> Vec<ContextRow> {
    exec(
        conn,
        CachedModelContext {
            run_id: run,
            cache: Arc::clone(cache),
        },
    )
    .unwrap()
    .iter()
    .enumerate()
    .map(|(i, r)| ContextRow {
        ordinal: i as i64 + 1,
        ..(**r).clone()
    })
    .collect()
}

fn assert_fresh(conn: &mut SqliteConnection, run: i64, cache: &SharedContextRows, step: &str) {
    let fresh = exec(conn, ModelContext(run)).unwrap();
    assert_eq!(cached(conn, run, cache), fresh, "after {step}");
}

/// A report, printed: `RunReport` is compared as a whole.
fn report(conn: &mut SqliteConnection, run: i64, scan: Option<&SharedScanRows>) -> String {
    let r = exec(
        conn,
        ReportRun {
            run_id: run,
            turn: 1,
            token_divisor: 2.0,
            scan: scan.map(Arc::clone),
            saved: None,
        },
    )
    .unwrap();
    format!("{r:?}")
}

/// Every view carries its entry's path (the `view_paths` triggers).
fn assert_paths_mirror(conn: &mut SqliteConnection, step: &str) {
    let stale: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM run_views v JOIN entries e ON e.id = v.entry_id \
         WHERE v.path IS NOT e.path",
    )
    .get_result::<Count>(conn)
    .unwrap()
    .n;
    assert_eq!(
        stale, 0,
        "views whose path differs from their entry's, after {step}"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn set(run: i64, path: &str, f: impl FnOnce(&mut EntryWrite)) -> SetEntry {
    let writer = if path.starts_with("log://") {
        Writer::Plugin
    } else {
        Writer::Model
    };
    let mut w = EntryWrite::new(run, path, writer);
    f(&mut w);
    SetEntry(w)
}

#[test]
fn the_cached_context_follows_every_kind_of_change() {
    let mut fx = fixture();
    let (run, conn) = (fx.run, &mut fx.conn);
    let cache = SharedContextRows::default();
    assert_fresh(conn, run, &cache, "nothing");
    put(conn, run, "known://a", Writer::Model, "alpha");
    put(conn, run, "known://b", Writer::Model, "beta");
    put(conn, run, "unknown://q", Writer::Model, "what?");
    assert_fresh(conn, run, &cache, "new entries");
    exec(
        conn,
        set(run, "known://a", |w| w.body = Some("alpha 2".into())),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "a body rewrite");
    exec(
        conn,
        set(run, "known://b", |w| {
            w.attributes = Some(serde_json::json!({"summary": "b things"}))
        }),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "an attribute change");
    exec(
        conn,
        set(run, "known://b", |w| {
            w.visibility = Some("summarized".into())
        }),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "a demotion");
    exec(
        conn,
        set(run, "known://a", |w| w.visibility = Some("archived".into())),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "archiving");
    exec(
        conn,
        set(run, "known://a", |w| w.visibility = Some("visible".into())),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "promotion back");
    exec(
        conn,
        set(run, "known://b", |w| {
            w.state = Some(EntryState::Failed);
            w.outcome = Some("status:500".into());
            w.turn = 3;
        }),
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "a state, outcome and turn change");
    exec(
        conn,
        AppendEntry {
            run_id: run,
            path: "known://a".into(),
            chunk: " and more".into(),
            writer: Writer::Model,
        },
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "an append");
    exec(
        conn,
        RemoveEntries {
            run_id: run,
            path: "unknown://q".into(),
            body_filter: None,
            writer: Writer::Model,
        },
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "a removal");
    exec(
        conn,
        ChangeVisibility {
            run_id: run,
            pattern: "known://*".into(),
            body_filter: None,
            visibility: "summarized".into(),
            promote_turn: None,
        },
    )
    .unwrap();
    assert_fresh(conn, run, &cache, "a pattern demotion");

    // Another run's writes change nothing here, and its own cache agrees.
    let other = new_run(conn, fx.project, "r2").id;
    let other_cache = SharedContextRows::default();
    exec(
        conn,
        ForkViews {
            parent_run_id: run,
            child_run_id: other,
        },
    )
    .unwrap();
    assert_fresh(conn, other, &other_cache, "a fork");
    assert_paths_mirror(conn, "a fork");
    put(conn, other, "known://a", Writer::Model, "the child's own a");
    assert_fresh(conn, other, &other_cache, "a child write");
    // An append to an inherited entry copies it into the child's scope and
    // repoints the child's view.
    exec(
        conn,
        AppendEntry {
            run_id: other,
            path: "known://b".into(),
            chunk: " (child)".into(),
            writer: Writer::Model,
        },
    )
    .unwrap();
    assert_fresh(conn, other, &other_cache, "a child append (copy on write)");
    assert_fresh(conn, run, &cache, "the child's writes");
    assert_paths_mirror(conn, "copy on write");
    exec(
        conn,
        RenameRun {
            run_id: other,
            to: "renamed".into(),
        },
    )
    .unwrap();
    assert_paths_mirror(conn, "a rename");
    assert!(
        exec(
            conn,
            GetEntry {
                run_id: other,
                path: "run://renamed".into()
            }
        )
        .unwrap()
        .is_some(),
        "the renamed run's entry is found by its new path"
    );

    // Scheme changes re-rank and re-filter everything: a full read.
    let mut defs = crate::store::schemes::bootstrap_schemes();
    defs.extend(crate::tools::ToolRegistry::builtin().schemes());
    for d in defs.iter_mut().filter(|d| d.name == "known") {
        d.model_visible = false;
    }
    exec(conn, RegisterSchemes(defs)).unwrap();
    let fresh = exec(conn, ModelContext(run)).unwrap();
    assert!(fresh.iter().all(|r| r.scheme.as_deref() != Some("known")));
    assert_fresh(conn, run, &cache, "a scheme change");

    // The same cache handed another run starts over for that run.
    assert_fresh(conn, other, &cache, "switching runs");
}

#[test]
fn a_write_from_another_connection_sends_readers_to_a_full_read() {
    let mut fx = fixture();
    let run = fx.run;
    let cache = SharedContextRows::default();
    put(&mut fx.conn, run, "known://a", Writer::Model, "alpha");
    assert_fresh(&mut fx.conn, run, &cache, "a first write");
    // No trigger of ours sees this connection's write.
    let mut other = crate::store::db::open(&fx._dir.path().join("t.db"), 0).unwrap();
    put(&mut other, run, "known://b", Writer::Model, "beta");
    exec(
        &mut other,
        set(run, "known://a", |w| {
            w.body = Some("changed elsewhere".into())
        }),
    )
    .unwrap();
    assert_fresh(&mut fx.conn, run, &cache, "another connection's writes");
}

#[test]
fn the_log_reports_only_the_runs_views_and_restarts_when_it_cannot_vouch() {
    let mut fx = fixture();
    let run = fx.run;
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    let conn = &mut fx.conn;
    let (first, cursor) = conn.immediate_transaction(|c| since(c, run, None)).unwrap();
    assert_eq!(first, Since::All, "no cursor: a full read");
    put(conn, run, "known://a", Writer::Model, "a");
    put(conn, other, "known://z", Writer::Model, "z");
    let (seen, next) = conn
        .immediate_transaction(|c| since(c, run, Some(cursor)))
        .unwrap();
    let Since::Views { views, .. } = seen else {
        panic!("a current cursor reads the log: {seen:?}");
    };
    let view_of_a: i64 = crate::store::schema::run_views::table
        .inner_join(crate::store::schema::entries::table)
        .filter(crate::store::schema::run_views::run_id.eq(run))
        .filter(crate::store::schema::entries::path.eq("known://a"))
        .select(crate::store::schema::run_views::id)
        .first(conn)
        .unwrap();
    assert_eq!(views, [view_of_a], "only this run's view, once");
    let (nothing, _) = conn
        .immediate_transaction(|c| since(c, run, Some(next)))
        .unwrap();
    assert!(
        matches!(&nothing, Since::Views { views, .. } if views.is_empty()),
        "nothing changed since: {nothing:?}"
    );
    // A connection without the log (reopened) gives a stale cursor a full read.
    let mut reopened = crate::store::db::open(&fx._dir.path().join("t.db"), 0).unwrap();
    let (stale, _) = reopened
        .immediate_transaction(|c| since(c, run, Some(next)))
        .unwrap();
    assert_eq!(stale, Since::All);
}

#[derive(Debug, Clone)]
enum Op {
    Put { run: usize, path: usize, body: u8 },
    Attr { run: usize, path: usize, n: u8 },
    Visibility { run: usize, path: usize, v: usize },
    Remove { run: usize, path: usize },
    Append { run: usize, path: usize },
    Read { run: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let run = 0..2usize;
    let path = 0..8usize;
    prop_oneof![
        (run.clone(), path.clone(), any::<u8>()).prop_map(|(run, path, body)| Op::Put {
            run,
            path,
            body
        }),
        (run.clone(), path.clone(), any::<u8>()).prop_map(|(run, path, n)| Op::Attr {
            run,
            path,
            n
        }),
        (run.clone(), path.clone(), 0..3usize).prop_map(|(run, path, v)| Op::Visibility {
            run,
            path,
            v
        }),
        (run.clone(), path.clone()).prop_map(|(run, path)| Op::Remove { run, path }),
        (run.clone(), path.clone()).prop_map(|(run, path)| Op::Append { run, path }),
        run.prop_map(|run| Op::Read { run }),
    ]
}

const PATHS: [&str; 8] = [
    "known://a",
    "known://b",
    "unknown://c",
    "log://turn_1/set/known%3A//a",
    "prompt://1",
    "src/main.rs",
    "log://turn_2/update/done",
    "reasoning://1",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_changes_reads_as_a_fresh_read(ops in proptest::collection::vec(op(), 1..40)) {
        let mut fx = fixture();
        let runs = [fx.run, new_run(&mut fx.conn, fx.project, "r2").id];
        let caches = [SharedContextRows::default(), SharedContextRows::default()];
        let scans = [SharedScanRows::default(), SharedScanRows::default()];
        let conn = &mut fx.conn;
        for (step, op) in ops.iter().enumerate() {
            // Refusals (a removed path, a scheme's writer rules) change nothing.
            let _ = match op.clone() {
                Op::Put { run, path, body } => exec(conn, set(runs[run], PATHS[path], |w| {
                    w.body = Some(format!("body {body}"));
                    w.turn = i64::from(body % 4);
                })).map(|_| ()),
                Op::Attr { run, path, n } => exec(conn, set(runs[run], PATHS[path], |w| {
                    let status = if n % 2 == 0 { 200 } else { 102 };
                    w.attributes = Some(serde_json::json!({"summary": format!("s{n}"), "status": status}));
                })).map(|_| ()),
                Op::Visibility { run, path, v } => exec(conn, set(runs[run], PATHS[path], |w| {
                    w.visibility = Some(VISIBILITIES[v].into());
                })).map(|_| ()),
                Op::Remove { run, path } => exec(conn, RemoveEntries {
                    run_id: runs[run],
                    path: PATHS[path].into(),
                    body_filter: None,
                    writer: Writer::Model,
                }).map(|_| ()),
                Op::Append { run, path } => exec(conn, AppendEntry {
                    run_id: runs[run],
                    path: PATHS[path].into(),
                    chunk: "+".into(),
                    writer: Writer::Model,
                }).map(|_| ()),
                Op::Read { run } => {
                    assert_paths_mirror(conn, &format!("step {step}"));
                    let fresh = exec(conn, ModelContext(runs[run])).unwrap();
                    prop_assert_eq!(cached(conn, runs[run], &caches[run]), fresh, "step {}", step);
                    let whole = report(conn, runs[run], None);
                    prop_assert_eq!(report(conn, runs[run], Some(&scans[run])), whole, "step {}", step);
                    Ok(())
                }
            };
        }
        for run in 0..2 {
            let fresh = exec(conn, ModelContext(runs[run])).unwrap();
            prop_assert_eq!(cached(conn, runs[run], &caches[run]), fresh);
            let whole = report(conn, runs[run], None);
            prop_assert_eq!(report(conn, runs[run], Some(&scans[run])), whole);
        }
    }
}

/// (path, turn, until_turn, tokens) of every stored snapshot row.
fn spans(conn: &mut SqliteConnection, run: i64) -> Vec<(String, i64, Option<i64>, i64)> {
    use crate::store::schema::turn_context as tc;
    tc::table
        .filter(tc::run_id.eq(run))
        .order((tc::path.asc(), tc::turn.asc()))
        .select((tc::path, tc::turn, tc::until_turn, tc::tokens))
        .load(conn)
        .unwrap()
}

fn snapshot_row(path: usize, version: u8) -> SnapshotRow {
    let category = ["data", "logging", "prompt", "unknown"][path % 4];
    SnapshotRow {
        sort_key: format!("{}{path:03}", path % 4),
        path: format!("known://p{path}"),
        state: EntryState::Resolved,
        outcome: None,
        visibility: "visible".into(),
        body: format!("body {path} v{version} {}", "x".repeat(path * 7)),
        attributes: "{}".into(),
        category: category.into(),
        source_turn: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Saving through the saver's copy stores exactly what saving from the
    /// table stores, and reports the same distribution, even when open rows
    /// vanish behind the copy's back.
    #[test]
    fn saves_through_the_copy_store_what_saves_from_the_table_store(
        saves in proptest::collection::vec(
            (0..2i64, proptest::collection::vec((0..8usize, 0..3u8), 0..8), any::<bool>()),
            1..12,
        )
    ) {
        let mut plain = fixture();
        let mut kept = fixture();
        let lp_plain = enqueue(&mut plain.conn, plain.run, "a").id;
        let lp_kept = enqueue(&mut kept.conn, kept.run, "a").id;
        let copy = SharedSavedContext::default();
        let mut turn = 1;
        for (step, (advance, rows, vanish)) in saves.into_iter().enumerate() {
            turn += advance;
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<TurnContextRow> = rows
                .into_iter()
                .filter(|(p, _)| seen.insert(*p))
                .enumerate()
                .map(|(i, (p, v))| TurnContextRow::new(i as i64 + 1, snapshot_row(p, v)))
                .collect();
            let rows: Arc<[TurnContextRow]> = rows.into();
            if vanish {
                // Something else takes open rows away (as a cascade would).
                for fx in [&mut plain, &mut kept] {
                    diesel::sql_query(
                        "DELETE FROM turn_context WHERE id = \
                         (SELECT max(id) FROM turn_context WHERE until_turn IS NULL)",
                    )
                    .execute(&mut fx.conn)
                    .unwrap();
                }
            }
            let save = |run, loop_id, saved| SaveTurnContext {
                run_id: run,
                loop_id,
                turn,
                rows: Arc::clone(&rows),
                token_divisor: 4.0,
                saved,
            };
            exec(&mut plain.conn, save(plain.run, lp_plain, None)).unwrap();
            exec(&mut kept.conn, save(kept.run, lp_kept, Some(Arc::clone(&copy)))).unwrap();
            prop_assert_eq!(spans(&mut kept.conn, kept.run), spans(&mut plain.conn, plain.run), "step {}", step);
            let report = |fx: &mut Fx, saved| {
                let r = exec(&mut fx.conn, ReportRun {
                    run_id: fx.run,
                    turn,
                    token_divisor: 4.0,
                    scan: None,
                    saved,
                }).unwrap();
                format!("{:?}", r.distribution)
            };
            let from_table = report(&mut plain, None);
            prop_assert_eq!(report(&mut kept, Some(Arc::clone(&copy))), from_table, "step {}", step);
        }
    }
}
