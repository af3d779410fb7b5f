//! The store's verbs beyond a single write (spec 01 §3): pattern (bulk)
//! writes, promotion and demotion by pattern, rm, cp/mv, update records,
//! forks and streaming appends.

use super::entries::{
    check_visibility, check_writer, find_view, own_entry, write_entry, EntryWrite,
};
use super::paths::{log_path, normalize_path, scheme_of};
use super::patterns::is_pattern;
use super::schema::{entries, run_views};
use super::FirstRow;
use super::{store_ops, EntryState, RunStatus, StoreError, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use serde_json::{Map, Value};

/// Ids bound per statement (SQLite allows 32,766 variables).
const ID_CHUNK: usize = 10_000;

/// A run's view that matched a pattern.
#[derive(Debug, Clone, QueryableByName)]
pub struct MatchedView {
    #[diesel(sql_type = BigInt)]
    pub view_id: i64,
    #[diesel(sql_type = BigInt)]
    pub entry_id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
}

/// The run's views whose path matches `pattern` (one literal path, or a
/// hedmatch pattern) and whose body passes `body_filter` (hedsearch),
/// filtered inside SQLite. Ordered by path.
pub(crate) fn matching_views(
    conn: &mut SqliteConnection,
    run_id: i64,
    pattern: &str,
    body_filter: Option<&str>,
) -> StoreResult<Vec<MatchedView>> {
    let literal = !is_pattern(pattern);
    let subject = if literal {
        normalize_path(pattern)
    } else {
        pattern.to_string()
    };
    let path_test = if literal {
        "e.path = ?"
    } else {
        "hedmatch(?, e.path)"
    };
    let sql = format!(
        "SELECT rv.id AS view_id, e.id AS entry_id, e.path AS path \
         FROM run_views rv JOIN entries e ON e.id = rv.entry_id \
         WHERE rv.run_id = ? AND {path_test} AND (? IS NULL OR hedsearch(?, e.body)) \
         ORDER BY e.path"
    );
    Ok(diesel::sql_query(sql)
        .bind::<BigInt, _>(run_id)
        .bind::<Text, _>(subject)
        .bind::<Nullable<Text>, _>(body_filter)
        .bind::<Nullable<Text>, _>(body_filter)
        .load(conn)?)
}

fn now() -> diesel::expression::SqlLiteral<Nullable<Text>> {
    diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP")
}

/// Sets the visibility of every matching entry; returns the matched
/// paths. With `promote_turn` (a `get`), matches also become `resolved`,
/// lose their outcome and take that view turn.
pub struct ChangeVisibility {
    pub run_id: i64,
    pub pattern: String,
    pub body_filter: Option<String>,
    pub visibility: String,
    pub promote_turn: Option<i64>,
}

impl StoreOp for ChangeVisibility {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        check_visibility(&self.visibility)?;
        let matched = matching_views(
            conn,
            self.run_id,
            &self.pattern,
            self.body_filter.as_deref(),
        )?;
        let ids: Vec<i64> = matched.iter().map(|m| m.view_id).collect();
        // Chunked: SQLite caps the number of bound variables per statement.
        for chunk in ids.chunks(ID_CHUNK) {
            let targets = run_views::table.filter(run_views::id.eq_any(chunk));
            match self.promote_turn {
                Some(turn) => diesel::update(targets)
                    .set((
                        run_views::visibility.eq(&self.visibility),
                        run_views::state.eq(EntryState::Resolved),
                        run_views::outcome.eq(None::<String>),
                        run_views::turn.eq(turn),
                        run_views::updated_at.eq(now()),
                    ))
                    .execute(conn)?,
                None => diesel::update(targets)
                    .set((
                        run_views::visibility.eq(&self.visibility),
                        run_views::updated_at.eq(now()),
                    ))
                    .execute(conn)?,
            };
        }
        Ok(matched.into_iter().map(|m| m.path).collect())
    }
}

/// Bulk `set` (pattern mode): replaces the body of every match, then
/// applies the visibility asked for. Returns the matched paths.
pub struct SetByPattern {
    pub run_id: i64,
    pub pattern: String,
    pub body_filter: Option<String>,
    pub body: Option<String>,
    pub visibility: Option<String>,
    pub writer: Writer,
}

impl StoreOp for SetByPattern {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        if let Some(v) = &self.visibility {
            check_visibility(v)?;
        }
        let matched = matching_views(
            conn,
            self.run_id,
            &self.pattern,
            self.body_filter.as_deref(),
        )?;
        // All or nothing: one refused match refuses the whole write.
        for m in &matched {
            check_writer(conn, &m.path, self.writer)?;
        }
        for m in &matched {
            if let Some(body) = &self.body {
                let entry_id = own_entry(conn, self.run_id, m.view_id, m.entry_id)?;
                diesel::update(entries::table.find(entry_id))
                    .set((entries::body.eq(body), entries::updated_at.eq(now())))
                    .execute(conn)?;
                diesel::update(run_views::table.find(m.view_id))
                    .set(run_views::write_count.eq(run_views::write_count + 1))
                    .execute(conn)?;
            }
            if let Some(v) = &self.visibility {
                diesel::update(run_views::table.find(m.view_id))
                    .set((run_views::visibility.eq(v), run_views::updated_at.eq(now())))
                    .execute(conn)?;
            }
        }
        Ok(matched.into_iter().map(|m| m.path).collect())
    }
}

/// `rm`: removes the run's views of the matching entries (entry rows stay
/// for other runs that share them). Returns the removed paths.
pub struct RemoveEntries {
    pub run_id: i64,
    pub path: String,
    pub body_filter: Option<String>,
    pub writer: Writer,
}

impl StoreOp for RemoveEntries {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        let matched = matching_views(conn, self.run_id, &self.path, self.body_filter.as_deref())?;
        for m in &matched {
            check_writer(conn, &m.path, self.writer)?;
        }
        let ids: Vec<i64> = matched.iter().map(|m| m.view_id).collect();
        for chunk in ids.chunks(ID_CHUNK) {
            diesel::delete(run_views::table.filter(run_views::id.eq_any(chunk))).execute(conn)?;
        }
        Ok(matched.into_iter().map(|m| m.path).collect())
    }
}

/// `cp` (or `mv` with `remove_source`): copies an entry's body to another
/// path in the same run. A missing source changes nothing (None).
pub struct CopyEntry {
    pub run_id: i64,
    pub from: String,
    pub to: String,
    pub visibility: Option<String>,
    pub turn: i64,
    pub loop_id: Option<i64>,
    pub writer: Writer,
    pub remove_source: bool,
}

impl StoreOp for CopyEntry {
    type Output = Option<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<String>> {
        let from = normalize_path(&self.from);
        let Some((view_id, entry_id)) = find_view(conn, self.run_id, &from)? else {
            return Ok(None);
        };
        let (body, attributes): (String, String) = entries::table
            .find(entry_id)
            .select((entries::body, entries::attributes))
            .first_row(conn)?;
        let to = normalize_path(&self.to);
        if to == from {
            return Err(StoreError::Invalid(format!(
                "source and destination are the same path ({from})"
            )));
        }
        write_entry(
            conn,
            &EntryWrite {
                body: Some(body),
                state: Some(EntryState::Resolved),
                visibility: self.visibility,
                attributes: serde_json::from_str(&attributes).ok(),
                turn: self.turn,
                loop_id: self.loop_id,
                ..EntryWrite::new(self.run_id, to.clone(), self.writer)
            },
        )?;
        if self.remove_source {
            check_writer(conn, &from, self.writer)?;
            diesel::delete(run_views::table.find(view_id)).execute(conn)?;
        }
        Ok(Some(to))
    }
}

/// An entry matched by a model `rm`/`cp`/`mv` source, with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMatch {
    pub path: String,
    pub scheme: Option<String>,
    pub body: String,
}

/// The run's entries matching a path (normalized) or a pattern and an
/// optional body filter, by the same rule the pattern verbs apply;
/// ordered by path.
pub struct MatchEntries {
    pub run_id: i64,
    pub pattern: String,
    pub body_filter: Option<String>,
}

impl StoreOp for MatchEntries {
    type Output = Vec<SourceMatch>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<SourceMatch>> {
        let matched = matching_views(
            conn,
            self.run_id,
            &self.pattern,
            self.body_filter.as_deref(),
        )?;
        let ids: Vec<i64> = matched.iter().map(|m| m.entry_id).collect();
        let mut rows: std::collections::HashMap<i64, (Option<String>, String)> =
            std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            let loaded: Vec<(i64, Option<String>, String)> = entries::table
                .filter(entries::id.eq_any(chunk))
                .select((entries::id, entries::scheme, entries::body))
                .load(conn)?;
            rows.extend(
                loaded
                    .into_iter()
                    .map(|(id, scheme, body)| (id, (scheme, body))),
            );
        }
        Ok(matched
            .into_iter()
            .filter_map(|m| {
                let (scheme, body) = rows.remove(&m.entry_id)?;
                Some(SourceMatch {
                    path: m.path,
                    scheme,
                    body,
                })
            })
            .collect())
    }
}

/// One source → destination pair of a model `cp`/`mv`, carrying the source
/// body the tool read (and size-checked) before any write.
#[derive(Debug, Clone)]
pub struct CopyPair {
    pub from: String,
    pub to: String,
    pub body: String,
}

/// Model `cp`/`mv` of one entry or every match of a glob, all or nothing:
/// every permission is checked before the first write, every body is the
/// one read before any write (so pairs that overlap copy the old bodies),
/// and with `remove_sources` a source that is also a destination stays.
/// Returns the destinations that already existed (overwritten).
pub struct CopyEntries {
    pub run_id: i64,
    pub pairs: Vec<CopyPair>,
    pub visibility: Option<String>,
    pub turn: i64,
    pub loop_id: Option<i64>,
    pub writer: Writer,
    pub remove_sources: bool,
}

impl StoreOp for CopyEntries {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        if let Some(v) = &self.visibility {
            check_visibility(v)?;
        }
        let mut planned = Vec::with_capacity(self.pairs.len());
        let mut overwritten = Vec::new();
        for pair in self.pairs {
            let from = normalize_path(&pair.from);
            let to = normalize_path(&pair.to);
            if from == to {
                return Err(StoreError::Invalid(format!(
                    "source and destination are the same path ({from})"
                )));
            }
            let Some((view_id, entry_id)) = find_view(conn, self.run_id, &from)? else {
                return Err(StoreError::NotFound(format!("{from} not found")));
            };
            check_writer(conn, &to, self.writer)?;
            if self.remove_sources {
                check_writer(conn, &from, self.writer)?;
            }
            if find_view(conn, self.run_id, &to)?.is_some() {
                overwritten.push(to.clone());
            }
            // Attributes mean something only within their scheme (a log
            // entry's `action` is no note's); across schemes the write
            // leaves them as upstream's cp does (kept, or `{}` when new).
            let attributes: Option<Value> = if scheme_of(&from) == scheme_of(&to) {
                let raw: String = entries::table
                    .find(entry_id)
                    .select(entries::attributes)
                    .first_row(conn)?;
                serde_json::from_str(&raw).ok()
            } else {
                None
            };
            planned.push((from, to, view_id, pair.body, attributes));
        }
        for (_, to, _, body, attributes) in &planned {
            write_entry(
                conn,
                &EntryWrite {
                    body: Some(body.clone()),
                    state: Some(EntryState::Resolved),
                    visibility: self.visibility.clone(),
                    attributes: attributes.clone(),
                    turn: self.turn,
                    loop_id: self.loop_id,
                    ..EntryWrite::new(self.run_id, to.clone(), self.writer)
                },
            )?;
        }
        if self.remove_sources {
            for (from, _, view_id, _, _) in &planned {
                if !planned.iter().any(|(_, to, ..)| to == from) {
                    diesel::delete(run_views::table.find(*view_id)).execute(conn)?;
                }
            }
        }
        Ok(overwritten)
    }
}

/// Writes an update record `log://turn_N/update/{body}` (resolved, with
/// its status); returns the path.
pub struct WriteUpdate {
    pub run_id: i64,
    pub turn: i64,
    pub loop_id: Option<i64>,
    pub body: String,
    pub status: i64,
    pub attributes: Map<String, Value>,
    pub writer: Writer,
}

impl StoreOp for WriteUpdate {
    type Output = String;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<String> {
        if !((100..=199).contains(&self.status) || RunStatus::terminal(self.status).is_some()) {
            return Err(StoreError::Invalid(format!(
                "Invalid status {} on update — use 1xx to continue or 200 to conclude.",
                self.status
            )));
        }
        let base = log_path(self.turn, "update", &self.body);
        let path = super::entries::unique_path(conn, self.run_id, &base, &Default::default())?;
        let mut attributes = self.attributes;
        attributes.insert("status".into(), Value::from(self.status));
        write_entry(
            conn,
            &EntryWrite {
                body: Some(self.body),
                state: Some(EntryState::Resolved),
                attributes: Some(Value::Object(attributes)),
                turn: self.turn,
                loop_id: self.loop_id,
                ..EntryWrite::new(self.run_id, path.clone(), self.writer)
            },
        )?;
        Ok(path)
    }
}

/// Gives a child run the parent's entries through new view rows; no body
/// is copied, and the child's later writes land in its own scope.
pub struct ForkViews {
    pub parent_run_id: i64,
    pub child_run_id: i64,
}

impl StoreOp for ForkViews {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        Ok(diesel::sql_query(
            "INSERT INTO run_views (run_id, entry_id, loop_id, turn, state, outcome, \
               visibility, write_count, refs, path) \
             SELECT ?, rv.entry_id, NULL, rv.turn, rv.state, rv.outcome, rv.visibility, \
               rv.write_count, rv.refs, e.path \
             FROM run_views rv JOIN entries e ON e.id = rv.entry_id \
             WHERE rv.run_id = ? AND (e.scheme IS NULL OR e.scheme != 'run')",
        )
        .bind::<BigInt, _>(self.child_run_id)
        .bind::<BigInt, _>(self.parent_run_id)
        .execute(conn)?)
    }
}

/// Appends a chunk to an entry's body (`set` with `append`: one rewrite
/// per call). Streamed command output does not come this way: its
/// `StreamProducer` batches chunks (`streams::AppendChannels`) so a long
/// stream stays linear. A missing entry: Ok(false).
pub struct AppendEntry {
    pub run_id: i64,
    pub path: String,
    pub chunk: String,
    pub writer: Writer,
}

impl StoreOp for AppendEntry {
    type Output = bool;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        let path = normalize_path(&self.path);
        let Some((view_id, entry_id)) = find_view(conn, self.run_id, &path)? else {
            return Ok(false);
        };
        check_writer(conn, &path, self.writer)?;
        let entry_id = own_entry(conn, self.run_id, view_id, entry_id)?;
        super::streams::append_body(conn, entry_id, &self.chunk)?;
        Ok(true)
    }
}

/// Folds chunks left in `entry_chunks` by databases written before appends
/// went straight to the body (run once, before the first operation).
pub(crate) fn fold_chunks(conn: &mut SqliteConnection) -> StoreResult<()> {
    diesel::sql_query(
        "UPDATE entries SET body = body || (SELECT group_concat(chunk, '' ORDER BY id) \
           FROM entry_chunks c WHERE c.entry_id = entries.id), updated_at = CURRENT_TIMESTAMP \
         WHERE id IN (SELECT DISTINCT entry_id FROM entry_chunks)",
    )
    .execute(conn)?;
    diesel::sql_query("DELETE FROM entry_chunks").execute(conn)?;
    Ok(())
}

/// One entry a budget demotion summarized.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DemotedEntry {
    #[diesel(sql_type = BigInt)]
    pub view_id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = BigInt)]
    pub turn: i64,
}

/// The candidates of both demotions: visible, not failed or cancelled, and
/// of a scheme the model sees (an invisible entry costs the packet nothing).
const DEMOTABLE: &str = "SELECT rv.id AS view_id, e.path AS path, e.body AS body, rv.turn AS turn \
     FROM run_views rv JOIN entries e ON e.id = rv.entry_id \
     WHERE rv.run_id = ? AND rv.visibility = 'visible' \
       AND rv.state NOT IN ('failed', 'cancelled') \
       AND EXISTS (SELECT 1 FROM schemes s \
                   WHERE s.name = COALESCE(e.scheme, 'file') AND s.model_visible = 1)";

fn summarize(conn: &mut SqliteConnection, found: &[DemotedEntry]) -> StoreResult<()> {
    let ids: Vec<i64> = found.iter().map(|d| d.view_id).collect();
    for chunk in ids.chunks(ID_CHUNK) {
        diesel::update(run_views::table.filter(run_views::id.eq_any(chunk)))
            .set((
                run_views::visibility.eq("summarized"),
                run_views::updated_at.eq(now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// `demoteTurnEntries`: summarizes what turn `turn` promoted, except
/// `known://` and `unknown://` entries; state is left alone. Returns every
/// demoted entry, bare files included (upstream left them out of the report).
pub struct DemoteTurnEntries {
    pub run_id: i64,
    pub turn: i64,
}

impl StoreOp for DemoteTurnEntries {
    type Output = Vec<DemotedEntry>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<DemotedEntry>> {
        let sql = format!(
            "{DEMOTABLE} AND rv.turn = ? \
             AND (e.scheme IS NULL OR e.scheme NOT IN ('known', 'unknown')) ORDER BY rv.id"
        );
        let found: Vec<DemotedEntry> = diesel::sql_query(sql)
            .bind::<BigInt, _>(self.run_id)
            .bind::<BigInt, _>(self.turn)
            .load(conn)?;
        summarize(conn, &found)?;
        Ok(found)
    }
}

/// `demoteRunVisibleEntries`: the fallback when a turn promoted nothing,
/// summarizing every visible entry of the run (no scheme exempt), by view
/// turn then entry.
pub struct DemoteRunVisibleEntries {
    pub run_id: i64,
}

impl StoreOp for DemoteRunVisibleEntries {
    type Output = Vec<DemotedEntry>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<DemotedEntry>> {
        let sql = format!("{DEMOTABLE} ORDER BY rv.turn, e.id");
        let found: Vec<DemotedEntry> = diesel::sql_query(sql)
            .bind::<BigInt, _>(self.run_id)
            .load(conn)?;
        summarize(conn, &found)?;
        Ok(found)
    }
}

store_ops!(
    DemoteTurnEntries => Vec<DemotedEntry>,
    DemoteRunVisibleEntries => Vec<DemotedEntry>,
    ChangeVisibility => Vec<String>,
    SetByPattern => Vec<String>,
    RemoveEntries => Vec<String>,
    CopyEntry => Option<String>,
    CopyEntries => Vec<String>,
    MatchEntries => Vec<SourceMatch>,
    WriteUpdate => String,
    ForkViews => usize,
    AppendEntry => bool,
);
