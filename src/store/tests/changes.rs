//! The change recording behind `run/changed`, and the retention purge.

use super::fixture::*;
use crate::protocol::notifications::ChangeType;
use crate::store::changes::{drain, install, uninstall};
use crate::store::*;
use diesel::prelude::*;

fn recorded(conn: &mut SqliteConnection) -> Vec<(String, ChangeType)> {
    exec(conn, Drain)
        .unwrap()
        .into_iter()
        .map(|c| (c.path, c.change))
        .collect()
}

struct Drain;
impl StoreOp for Drain {
    type Output = Vec<crate::store::changes::EntryChange>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Self::Output> {
        drain(conn)
    }
}

fn temp_triggers(conn: &mut SqliteConnection) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM sqlite_temp_master WHERE type = 'trigger'")
        .get_result::<N>(conn)
        .unwrap()
        .n
}

#[test]
fn writes_are_recorded_only_while_installed() {
    let mut fx = fixture();
    assert_eq!(temp_triggers(&mut fx.conn), 0, "no cost without a listener");
    install(&mut fx.conn).unwrap();
    assert_eq!(temp_triggers(&mut fx.conn), 5);

    put(&mut fx.conn, fx.run, "known://a", Writer::Model, "one");
    assert_eq!(
        recorded(&mut fx.conn),
        [("known://a".to_string(), ChangeType::Upsert)]
    );
    put(&mut fx.conn, fx.run, "known://a", Writer::Model, "two");
    assert_eq!(
        recorded(&mut fx.conn),
        [("known://a".to_string(), ChangeType::Upsert)],
        "a full write over an entry is one upsert"
    );
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some(EntryState::Failed),
            ..EntryWrite::new(fx.run, "known://a", Writer::Model)
        }),
    )
    .unwrap();
    assert_eq!(
        recorded(&mut fx.conn),
        [("known://a".to_string(), ChangeType::Resolve)]
    );
    exec(
        &mut fx.conn,
        AppendEntry {
            run_id: fx.run,
            path: "known://a".into(),
            chunk: " more".into(),
            writer: Writer::Model,
        },
    )
    .unwrap();
    assert_eq!(
        recorded(&mut fx.conn),
        [("known://a".to_string(), ChangeType::Append)]
    );
    // Folding the chunk into the body is not a second change.
    crate::store::verbs::fold_chunks(&mut fx.conn).unwrap();
    assert!(recorded(&mut fx.conn).is_empty());

    uninstall(&mut fx.conn).unwrap();
    assert_eq!(temp_triggers(&mut fx.conn), 0);
    put(&mut fx.conn, fx.run, "known://b", Writer::Model, "quiet");
    install(&mut fx.conn).unwrap();
    assert!(
        recorded(&mut fx.conn).is_empty(),
        "nothing kept from before"
    );
}

#[test]
fn a_refused_write_records_nothing() {
    let mut fx = fixture();
    install(&mut fx.conn).unwrap();
    let refused = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "run://r1", Writer::Model), "x"),
    );
    assert!(refused.is_err());
    assert!(recorded(&mut fx.conn).is_empty());
}

#[test]
fn the_purge_needs_a_positive_period_and_spares_live_runs() {
    let mut fx = fixture();
    assert!(exec(&mut fx.conn, PurgeOldRuns { days: 0 }).is_err());
    diesel::sql_query("UPDATE runs SET created_at = datetime('now', '-10 days')")
        .execute(&mut fx.conn)
        .unwrap();
    // Status 100 (queued) is not terminal.
    assert_eq!(exec(&mut fx.conn, PurgeOldRuns { days: 1 }).unwrap(), 0);
    set_status(&mut fx.conn, fx.run, 102).unwrap();
    set_status(&mut fx.conn, fx.run, 500).unwrap();
    assert_eq!(exec(&mut fx.conn, PurgeOldRuns { days: 30 }).unwrap(), 0);
    assert_eq!(exec(&mut fx.conn, PurgeOldRuns { days: 5 }).unwrap(), 1);
    assert!(exec(&mut fx.conn, GetRunById(fx.run)).is_err());
}
