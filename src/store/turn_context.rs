//! The `turn_context` snapshots: what each turn materialized for the model.
//!
//! A row stands for every turn from `turn` to `until_turn` (NULL while it
//! is in the run's latest materialization). Saving a turn writes only the
//! rows that changed since the previous one (closing or deleting the rows
//! they replace), so a turn's cost follows what it changed, not how long
//! the run is; upstream rewrites the whole context every time. A turn's
//! rows are read back in `sort_key` order, the packet order.

use super::reads::Bucket;
use super::schema::turn_context;
use super::{prepared, FirstRow};
use super::{EntryState, StoreError, StoreResult};
use crate::fast_map::{self, FastMap};
use crate::tokens::count_tokens;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What a `turn_context` row records about one materialized row, apart
/// from its place in the packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// The row's place in the packet, stable while the row is unchanged
    /// (see `ModelContext`).
    pub sort_key: String,
    pub path: String,
    pub state: EntryState,
    pub outcome: Option<String>,
    pub visibility: String,
    pub body: String,
    pub attributes: String,
    pub category: String,
    pub source_turn: i64,
}

impl SnapshotRow {
    /// Everything a reader of the snapshot sees except the ordinal, which
    /// shifts whenever an earlier row comes or goes. Only compared within
    /// one database's rows, so the hasher's version does not matter: a
    /// different hash after an upgrade only rewrites an unchanged row once.
    fn digest(&self) -> i64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &self.sort_key,
            &self.path,
            self.state.as_str(),
            &self.outcome,
            &self.visibility,
            &self.body,
            &self.attributes,
            &self.category,
            self.source_turn,
        )
            .hash(&mut h);
        h.finish() as i64
    }
}

#[derive(Debug)]
struct Sealed {
    row: SnapshotRow,
    digest: i64,
}

/// One materialized row, as shipped to the model: its place, and its
/// record shared (with its digest, computed once) by every packet that
/// holds the row unchanged.
#[derive(Debug, Clone)]
pub struct TurnContextRow {
    pub ordinal: i64,
    sealed: Arc<Sealed>,
}

impl TurnContextRow {
    pub fn new(ordinal: i64, row: SnapshotRow) -> TurnContextRow {
        let digest = row.digest();
        TurnContextRow {
            ordinal,
            sealed: Arc::new(Sealed { row, digest }),
        }
    }

    /// The same record at another place.
    pub fn at(&self, ordinal: i64) -> TurnContextRow {
        TurnContextRow {
            ordinal,
            sealed: Arc::clone(&self.sealed),
        }
    }

    fn digest(&self) -> i64 {
        self.sealed.digest
    }
}

impl std::ops::Deref for TurnContextRow {
    type Target = SnapshotRow;
    fn deref(&self) -> &SnapshotRow {
        &self.sealed.row
    }
}

/// Saves the materialization of one turn: `rows` replace whatever the
/// run's latest snapshot held. `turn` is the run's newest turn; saving
/// the same turn again (after a demotion, or post-dispatch) replaces its
/// earlier save.
pub struct SaveTurnContext {
    pub run_id: i64,
    pub loop_id: i64,
    pub turn: i64,
    /// Shared with the packet that holds them, which reads them after the
    /// save.
    pub rows: std::sync::Arc<[TurnContextRow]>,
    pub token_divisor: f64,
    /// The saver's copy of the run's open rows, used instead of reading
    /// them back when it still matches the table (`None`: read them).
    pub saved: Option<SharedSavedContext>,
}

/// A row of the run's latest snapshot (`until_turn IS NULL`).
#[derive(Debug, Clone, QueryableByName)]
struct OpenRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    turn: i64,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = BigInt)]
    digest: i64,
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
    #[diesel(sql_type = Text)]
    sort_key: String,
}

/// The saver's copy of one run's open rows, kept between saves so a save
/// compares against memory instead of reading every open row back. It is
/// trusted only while the table agrees on how many rows are open and the
/// highest open id: every save changes one or the other, and so does
/// anything else that takes an open row away (a cascade from a deleted
/// loop or run).
#[derive(Debug, Default)]
pub struct SavedContext {
    run_id: Option<i64>,
    /// The turn of the save the copy is from.
    turn: i64,
    /// (open rows, highest open id) after that save; `None`: not trusted.
    fingerprint: Option<(i64, i64)>,
    open: FastMap<String, OpenRow>,
}

/// Shared between the turn loop and the store thread.
pub type SharedSavedContext = Arc<std::sync::Mutex<SavedContext>>;

#[derive(QueryableByName)]
struct Fingerprint {
    #[diesel(sql_type = BigInt)]
    open: i64,
    #[diesel(sql_type = BigInt)]
    top: i64,
}

fn fingerprint(conn: &mut SqliteConnection, run: i64) -> StoreResult<(i64, i64)> {
    let f: Fingerprint = prepared(
        "SELECT count(*) AS open, coalesce(max(id), 0) AS top FROM turn_context \
         WHERE run_id = ? AND until_turn IS NULL",
    )
    .int(run)
    .get_result(conn)?;
    Ok((f.open, f.top))
}

impl SavedContext {
    /// The open rows of `run` if the copy still matches the table.
    fn current(
        &self,
        conn: &mut SqliteConnection,
        run: i64,
    ) -> StoreResult<Option<&FastMap<String, OpenRow>>> {
        if self.run_id != Some(run) || self.fingerprint.is_none() {
            return Ok(None);
        }
        Ok((self.fingerprint == Some(fingerprint(conn, run)?)).then_some(&self.open))
    }

    fn keep(&mut self, run: i64, turn: i64, open: FastMap<String, OpenRow>) {
        let top = open.values().map(|r| r.id).max().unwrap_or(0);
        self.fingerprint = Some((open.len() as i64, top));
        self.run_id = Some(run);
        self.turn = turn;
        self.open = open;
    }

    fn forget(&mut self) {
        self.fingerprint = None;
        self.open.clear();
    }
}

fn lock_saved(saved: &std::sync::Mutex<SavedContext>) -> std::sync::MutexGuard<'_, SavedContext> {
    saved.lock().unwrap_or_else(|poisoned| {
        let mut s = poisoned.into_inner();
        s.forget();
        s
    })
}

fn load_open(conn: &mut SqliteConnection, run: i64) -> StoreResult<FastMap<String, OpenRow>> {
    let open: Vec<OpenRow> = prepared(
        "SELECT id, turn, path, digest, category, tokens, sort_key FROM turn_context \
         WHERE run_id = ? AND until_turn IS NULL",
    )
    .int(run)
    .load(conn)?;
    Ok(open.into_iter().map(|r| (r.path.clone(), r)).collect())
}

impl super::StoreOp for SaveTurnContext {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let newest: Option<i64> = turn_context::table
            .filter(turn_context::run_id.eq(self.run_id))
            .select(diesel::dsl::max(turn_context::turn))
            .first_row(conn)?;
        if newest.is_some_and(|n| n > self.turn) {
            return Err(StoreError::Invalid(format!(
                "turn {} is older than the run's latest materialized turn",
                self.turn
            )));
        }
        let mut memo = self.saved.as_deref().map(lock_saved);
        let mut open = match memo.as_deref_mut() {
            Some(m) => match m.current(conn, self.run_id)? {
                Some(_) => std::mem::take(&mut m.open),
                None => load_open(conn, self.run_id)?,
            },
            None => load_open(conn, self.run_id)?,
        };
        // Until this save succeeds the copy is not to be trusted.
        if let Some(m) = memo.as_deref_mut() {
            m.forget();
        }
        let mut next: FastMap<String, OpenRow> = fast_map::with_capacity(self.rows.len());
        for r in self.rows.iter() {
            let digest = r.digest();
            if let Some((path, old)) = open.remove_entry(&r.path) {
                if old.digest == digest {
                    next.insert(path, old);
                    continue;
                }
                retire(conn, &old, self.turn)?;
            }
            let tokens = count_tokens(&r.body, self.token_divisor);
            let id: i64 = diesel::insert_into(turn_context::table)
                .values((
                    turn_context::run_id.eq(self.run_id),
                    turn_context::loop_id.eq(Some(self.loop_id)),
                    turn_context::turn.eq(self.turn),
                    turn_context::ordinal.eq(r.ordinal),
                    turn_context::path.eq(&r.path),
                    turn_context::state.eq(r.state),
                    turn_context::outcome.eq(&r.outcome),
                    turn_context::visibility.eq(&r.visibility),
                    turn_context::body.eq(&r.body),
                    turn_context::attributes.eq(&r.attributes),
                    turn_context::category.eq(&r.category),
                    turn_context::source_turn.eq(Some(r.source_turn)),
                    turn_context::sort_key.eq(&r.sort_key),
                    turn_context::tokens.eq(tokens),
                    turn_context::digest.eq(digest),
                ))
                .returning(turn_context::id)
                .get_result(conn)?;
            next.insert(
                r.path.clone(),
                OpenRow {
                    id,
                    turn: self.turn,
                    path: r.path.clone(),
                    digest,
                    category: r.category.clone(),
                    tokens,
                    sort_key: r.sort_key.clone(),
                },
            );
        }
        for old in open.values() {
            retire(conn, old, self.turn)?;
        }
        if let Some(m) = memo.as_deref_mut() {
            m.keep(self.run_id, self.turn, next);
        }
        Ok(())
    }
}

/// Takes a row out of the latest snapshot: written by this same turn, it
/// never stood for another and goes; otherwise it ends with the previous
/// turn.
fn retire(conn: &mut SqliteConnection, row: &OpenRow, turn: i64) -> StoreResult<()> {
    if row.turn >= turn {
        diesel::delete(turn_context::table.find(row.id)).execute(conn)?;
    } else {
        prepared("UPDATE turn_context SET until_turn = ? WHERE id = ?")
            .int(turn - 1)
            .int(row.id)
            .execute(conn)?;
    }
    Ok(())
}

/// The SQL condition selecting the rows of turn `?2` of run `?1`, for
/// queries that bind the run, then the turn twice. A macro so `concat!`
/// builds each query as constant text, which `prepared` keeps prepared.
macro_rules! rows_of_turn {
    () => {
        "run_id = ? AND turn <= ? AND (until_turn IS NULL OR until_turn >= ?)"
    };
}

/// A turn's snapshot rows as (path, scheme), in packet order (`rummy
/// inspect`).
pub struct TurnSnapshotSchemes {
    pub run_id: i64,
    pub turn: i64,
}

#[derive(QueryableByName)]
struct PathScheme {
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    scheme: Option<String>,
}

impl super::StoreOp for TurnSnapshotSchemes {
    type Output = Vec<(String, Option<String>)>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Self::Output> {
        let rows: Vec<PathScheme> = prepared(concat!(
            "SELECT path, scheme FROM turn_context WHERE ",
            rows_of_turn!(),
            " ORDER BY sort_key"
        ))
        .int(self.run_id)
        .int(self.turn)
        .int(self.turn)
        .load(conn)?;
        Ok(rows.into_iter().map(|r| (r.path, r.scheme)).collect())
    }
}

#[derive(QueryableByName)]
struct BucketRow {
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
    #[diesel(sql_type = BigInt)]
    entries: i64,
}

/// The context distribution of one turn, in the order `run/state`
/// documents: data, logging, unknown, prompt, system (the system prompt's
/// own row), then anything else. From the saver's copy of the open rows
/// when it is of that turn and still matches the table (the open rows are
/// then exactly the turn's rows), else from the table.
pub(crate) fn distribution(
    conn: &mut SqliteConnection,
    run_id: i64,
    turn: i64,
    saved: Option<&std::sync::Mutex<SavedContext>>,
) -> StoreResult<Vec<Bucket>> {
    let from_copy = match saved.map(lock_saved) {
        Some(memo) if memo.turn == turn => memo.current(conn, run_id)?.map(buckets_of_open),
        _ => None,
    };
    let rows = match from_copy {
        Some(rows) => rows,
        None => prepared(concat!(
            "SELECT category, COALESCE(SUM(tokens), 0) AS tokens, COUNT(*) AS entries \
             FROM turn_context WHERE ",
            rows_of_turn!(),
            " GROUP BY category ORDER BY MIN(sort_key)"
        ))
        .int(run_id)
        .int(turn)
        .int(turn)
        .load(conn)?,
    };
    let rank = |bucket: &str| {
        ["data", "logging", "unknown", "prompt", "system"]
            .iter()
            .position(|b| *b == bucket)
            .unwrap_or(5)
    };
    let mut buckets: Vec<Bucket> = rows
        .into_iter()
        .map(|r| Bucket {
            bucket: r.category,
            tokens: r.tokens,
            entries: r.entries,
        })
        .collect();
    buckets.sort_by_key(|b| rank(&b.bucket));
    Ok(buckets)
}

/// The distribution query's rows, from the open rows: per category, in
/// the order of each category's first sort key.
fn buckets_of_open(open: &FastMap<String, OpenRow>) -> Vec<BucketRow> {
    let mut by_category: HashMap<&str, (i64, i64, &str)> = HashMap::new();
    for r in open.values() {
        let b = by_category
            .entry(r.category.as_str())
            .or_insert((0, 0, r.sort_key.as_str()));
        b.0 += r.tokens;
        b.1 += 1;
        if r.sort_key.as_str() < b.2 {
            b.2 = r.sort_key.as_str();
        }
    }
    let mut rows: Vec<(&str, BucketRow)> = by_category
        .into_iter()
        .map(|(category, (tokens, entries, first))| {
            (
                first,
                BucketRow {
                    category: category.to_string(),
                    tokens,
                    entries,
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    rows.into_iter().map(|(_, r)| r).collect()
}

super::store_ops!(
    SaveTurnContext => (),
    TurnSnapshotSchemes => Vec<(String, Option<String>)>,
);
