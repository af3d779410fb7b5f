//! Entries and their per-run views: writes, promotion, log paths, error
//! records and the reads the turn loop and RPCs need.

use super::paths::{log_path, normalize_path, scheme_of};
use super::schema::{entries, run_views, runs, turn_context};
use super::schemes::scheme_info;
use super::{store_ops, StoreError, StoreOp, StoreResult, Writer};
use crate::context::tokens::count_tokens;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// One write to an entry and its view in a run (spec 01 §3.1).
///
/// With `body` it is a full write (permission check, entry and view
/// upsert); without, only the given state/outcome, visibility and
/// attributes (merged) change, and a missing entry is a no-op.
#[derive(Debug, Clone)]
pub struct EntryWrite {
    pub run_id: i64,
    pub path: String,
    pub writer: Writer,
    pub body: Option<String>,
    pub state: Option<String>,
    pub outcome: Option<String>,
    pub visibility: Option<String>,
    pub attributes: Option<Value>,
    pub turn: i64,
    pub loop_id: Option<i64>,
}

impl EntryWrite {
    pub fn new(run_id: i64, path: impl Into<String>, writer: Writer) -> EntryWrite {
        EntryWrite {
            run_id,
            path: path.into(),
            writer,
            body: None,
            state: None,
            outcome: None,
            visibility: None,
            attributes: None,
            turn: 0,
            loop_id: None,
        }
    }
}

const STATES: [&str; 5] = ["proposed", "streaming", "resolved", "failed", "cancelled"];
const VISIBILITIES: [&str; 3] = ["visible", "summarized", "archived"];

/// Applies one write; returns whether an entry was written or changed.
pub(crate) fn write_entry(conn: &mut SqliteConnection, w: &EntryWrite) -> StoreResult<bool> {
    if let Some(s) = &w.state {
        if !STATES.contains(&s.as_str()) {
            return Err(StoreError::Invalid(format!(
                "state must be one of {} (got {s:?})",
                STATES.join(", ")
            )));
        }
    }
    if let Some(v) = &w.visibility {
        if !VISIBILITIES.contains(&v.as_str()) {
            return Err(StoreError::Invalid(format!(
                "visibility must be one of {} (got {v:?})",
                VISIBILITIES.join(", ")
            )));
        }
    }
    let path = normalize_path(&w.path);
    match &w.body {
        Some(body) => full_write(conn, w, &path, body).map(|_| true),
        None => partial_write(conn, w, &path),
    }
}

fn find_view(
    conn: &mut SqliteConnection,
    run_id: i64,
    path: &str,
) -> StoreResult<Option<(i64, i64)>> {
    Ok(run_views::table
        .inner_join(entries::table)
        .filter(run_views::run_id.eq(run_id))
        .filter(entries::path.eq(path))
        .select((run_views::id, entries::id))
        .first(conn)
        .optional()?)
}

fn full_write(
    conn: &mut SqliteConnection,
    w: &EntryWrite,
    path: &str,
    body: &str,
) -> StoreResult<i64> {
    let scheme = scheme_of(path);
    let info = scheme_info(conn, scheme)?;
    if !info.writable_by.iter().any(|x| x == w.writer.as_str()) {
        return Err(StoreError::Permission {
            writer: w.writer.as_str().into(),
            scheme: scheme.unwrap_or("file").into(),
            allowed: info.writable_by.join(", "),
        });
    }
    let scope = match info.default_scope.as_str() {
        "global" => "global".to_string(),
        "project" => {
            let project: i64 = runs::table
                .find(w.run_id)
                .select(runs::project_id)
                .first(conn)?;
            format!("project:{project}")
        }
        _ => format!("run:{}", w.run_id),
    };
    let mut attributes = w.attributes.clone();
    if scheme == Some("log") {
        if let (Some(Value::Object(map)), Some(action)) =
            (attributes.as_mut(), super::paths::log_action(path))
        {
            map.insert("action".into(), Value::String(action.into()));
        }
    }
    let attributes_json = attributes.as_ref().map(Value::to_string);
    let now = diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP");
    let entry_id: i64 = match &attributes_json {
        Some(a) => diesel::insert_into(entries::table)
            .values((
                entries::scope.eq(&scope),
                entries::path.eq(path),
                entries::body.eq(body),
                entries::attributes.eq(a),
            ))
            .on_conflict((entries::scope, entries::path))
            .do_update()
            .set((
                entries::body.eq(body),
                entries::attributes.eq(a),
                entries::updated_at.eq(now.clone()),
            ))
            .returning(entries::id)
            .get_result(conn)?,
        None => diesel::insert_into(entries::table)
            .values((
                entries::scope.eq(&scope),
                entries::path.eq(path),
                entries::body.eq(body),
            ))
            .on_conflict((entries::scope, entries::path))
            .do_update()
            .set((entries::body.eq(body), entries::updated_at.eq(now.clone())))
            .returning(entries::id)
            .get_result(conn)?,
    };
    // One view per path: a write that lands in another scope (a fork child
    // writing an inherited path) repoints the view instead of adding a
    // second row the model would also see.
    diesel::delete(
        run_views::table
            .filter(run_views::run_id.eq(w.run_id))
            .filter(run_views::entry_id.ne(entry_id))
            .filter(
                run_views::entry_id.eq_any(
                    entries::table
                        .filter(entries::path.eq(path))
                        .select(entries::id),
                ),
            ),
    )
    .execute(conn)?;
    let state = w.state.as_deref().unwrap_or("resolved");
    let visibility = w
        .visibility
        .as_deref()
        .unwrap_or_else(|| info.default_visibility(scheme));
    let view_id = diesel::insert_into(run_views::table)
        .values((
            run_views::run_id.eq(w.run_id),
            run_views::entry_id.eq(entry_id),
            run_views::loop_id.eq(w.loop_id),
            run_views::turn.eq(w.turn),
            run_views::state.eq(state),
            run_views::outcome.eq(&w.outcome),
            run_views::visibility.eq(visibility),
        ))
        .on_conflict((run_views::run_id, run_views::entry_id))
        .do_update()
        .set((
            run_views::loop_id.eq(w.loop_id),
            run_views::turn.eq(w.turn),
            run_views::state.eq(state),
            run_views::outcome.eq(&w.outcome),
            run_views::visibility.eq(visibility),
            run_views::write_count.eq(run_views::write_count + 1),
            run_views::updated_at.eq(now),
        ))
        .returning(run_views::id)
        .get_result(conn)?;
    Ok(view_id)
}

fn partial_write(conn: &mut SqliteConnection, w: &EntryWrite, path: &str) -> StoreResult<bool> {
    let Some((view_id, entry_id)) = find_view(conn, w.run_id, path)? else {
        return Ok(false);
    };
    let now = diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP");
    if let Some(state) = &w.state {
        diesel::update(run_views::table.find(view_id))
            .set((
                run_views::state.eq(state),
                run_views::outcome.eq(&w.outcome),
                run_views::updated_at.eq(now.clone()),
            ))
            .execute(conn)?;
    }
    if let Some(visibility) = &w.visibility {
        diesel::update(run_views::table.find(view_id))
            .set((
                run_views::visibility.eq(visibility),
                run_views::updated_at.eq(now.clone()),
            ))
            .execute(conn)?;
    }
    if let Some(attributes) = &w.attributes {
        diesel::sql_query(
            "UPDATE entries SET attributes = json_patch(attributes, ?), \
             updated_at = CURRENT_TIMESTAMP WHERE id = ?",
        )
        .bind::<Text, _>(attributes.to_string())
        .bind::<BigInt, _>(entry_id)
        .execute(conn)?;
    }
    Ok(true)
}

/// A typed entry write (see [`EntryWrite`]).
pub struct SetEntry(pub EntryWrite);

impl StoreOp for SetEntry {
    type Output = bool;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        write_entry(conn, &self.0)
    }
}

/// An entry as one run sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable)]
pub struct EntryRow {
    pub path: String,
    pub scheme: Option<String>,
    pub body: String,
    pub attributes: String,
    pub state: String,
    pub outcome: Option<String>,
    pub visibility: String,
    pub turn: i64,
}

/// One entry of a run by path.
pub struct GetEntry {
    pub run_id: i64,
    pub path: String,
}

impl StoreOp for GetEntry {
    type Output = Option<EntryRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<EntryRow>> {
        let path = normalize_path(&self.path);
        Ok(run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.run_id))
            .filter(entries::path.eq(&path))
            .select(ENTRY_COLUMNS)
            .first(conn)
            .optional()?)
    }
}

type EntryColumns = (
    entries::path,
    entries::scheme,
    entries::body,
    entries::attributes,
    run_views::state,
    run_views::outcome,
    run_views::visibility,
    run_views::turn,
);

const ENTRY_COLUMNS: EntryColumns = (
    entries::path,
    entries::scheme,
    entries::body,
    entries::attributes,
    run_views::state,
    run_views::outcome,
    run_views::visibility,
    run_views::turn,
);

/// Every entry of a run, by path (embedding programs and tests).
pub struct ListEntries(pub i64);

impl StoreOp for ListEntries {
    type Output = Vec<EntryRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<EntryRow>> {
        Ok(run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.0))
            .order(entries::path.asc())
            .select(ENTRY_COLUMNS)
            .load(conn)?)
    }
}

/// Compiles a path pattern: `*` stays within a segment, except right after
/// `scheme://` where it spans segments (spec 02 §4.2). The full pattern
/// engine (hedmatch) replaces this.
pub fn path_matcher(pattern: &str) -> Result<globset::GlobMatcher, String> {
    let mut glob = pattern.to_string();
    if let Some(i) = glob.find("://") {
        let after = &glob[i + 3..];
        if after.starts_with('*') && !after.starts_with("**") {
            glob.replace_range(i + 3..i + 4, "**");
        }
    }
    globset::GlobBuilder::new(&glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

/// Sets the visibility of every entry matching a path or glob; returns the
/// matched paths. With `promote_turn` (a `<get>`), matches also become
/// `resolved`, lose their outcome and take that view turn.
pub struct ChangeVisibility {
    pub run_id: i64,
    pub pattern: String,
    pub visibility: String,
    pub promote_turn: Option<i64>,
}

impl StoreOp for ChangeVisibility {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        if !VISIBILITIES.contains(&self.visibility.as_str()) {
            return Err(StoreError::Invalid(format!(
                "visibility must be one of {} (got {:?})",
                VISIBILITIES.join(", "),
                self.visibility
            )));
        }
        let candidates: Vec<(i64, String)> = run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.run_id))
            .order(entries::path.asc())
            .select((run_views::id, entries::path))
            .load(conn)?;
        let matched: Vec<(i64, String)> = if super::paths::is_glob(&self.pattern) {
            let m = path_matcher(&self.pattern).map_err(StoreError::Invalid)?;
            candidates
                .into_iter()
                .filter(|(_, p)| m.is_match(p))
                .collect()
        } else {
            let path = normalize_path(&self.pattern);
            candidates.into_iter().filter(|(_, p)| *p == path).collect()
        };
        let ids: Vec<i64> = matched.iter().map(|(id, _)| *id).collect();
        let now = diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP");
        let targets = run_views::table.filter(run_views::id.eq_any(&ids));
        match self.promote_turn {
            Some(turn) => diesel::update(targets)
                .set((
                    run_views::visibility.eq(&self.visibility),
                    run_views::state.eq("resolved"),
                    run_views::outcome.eq(None::<String>),
                    run_views::turn.eq(turn),
                    run_views::updated_at.eq(now),
                ))
                .execute(conn)?,
            None => diesel::update(targets)
                .set((
                    run_views::visibility.eq(&self.visibility),
                    run_views::updated_at.eq(now),
                ))
                .execute(conn)?,
        };
        Ok(matched.into_iter().map(|(_, p)| p).collect())
    }
}

/// Allocates distinct log paths for one turn's commands: a base already
/// used in the run (or earlier in the list) gets `_1`, `_2`, ... so every
/// recorded command keeps its own entry (upstream shares one; a defect).
pub struct AllocateLogPaths {
    pub run_id: i64,
    pub bases: Vec<String>,
}

impl StoreOp for AllocateLogPaths {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        let mut taken = HashSet::new();
        let mut out = Vec::with_capacity(self.bases.len());
        for base in self.bases {
            let path = unique_path(conn, self.run_id, &base, &taken)?;
            taken.insert(path.clone());
            out.push(path);
        }
        Ok(out)
    }
}

fn unique_path(
    conn: &mut SqliteConnection,
    run_id: i64,
    base: &str,
    taken: &HashSet<String>,
) -> StoreResult<String> {
    let mut candidate = base.to_string();
    let mut n = 0;
    while taken.contains(&candidate) || find_view(conn, run_id, &candidate)?.is_some() {
        n += 1;
        candidate = format!("{base}_{n}");
    }
    Ok(candidate)
}

/// Writes an error record `log://turn_N/error/{message}` (failed, outcome
/// `status:N`, visible); returns its path.
pub struct LogError {
    pub run_id: i64,
    pub turn: i64,
    pub loop_id: Option<i64>,
    pub message: String,
    pub status: i64,
    pub attributes: Map<String, Value>,
}

impl StoreOp for LogError {
    type Output = String;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<String> {
        let base = log_path(self.turn, "error", &self.message);
        let path = unique_path(conn, self.run_id, &base, &HashSet::new())?;
        let mut attributes = self.attributes;
        attributes.insert("status".into(), Value::from(self.status));
        write_entry(
            conn,
            &EntryWrite {
                body: Some(self.message),
                state: Some("failed".into()),
                outcome: Some(format!("status:{}", self.status)),
                visibility: Some("visible".into()),
                attributes: Some(Value::Object(attributes)),
                turn: self.turn,
                loop_id: self.loop_id,
                ..EntryWrite::new(self.run_id, path.clone(), Writer::System)
            },
        )?;
        Ok(path)
    }
}

/// One row of `v_model_context`, in ordinal order.
#[derive(Debug, Clone, QueryableByName)]
pub struct ContextRow {
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub scheme: Option<String>,
    #[diesel(sql_type = Text)]
    pub visibility: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub outcome: Option<String>,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = Text)]
    pub attributes: String,
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = BigInt)]
    pub turn: i64,
    #[diesel(sql_type = BigInt)]
    pub ordinal: i64,
}

/// The rows the model may see this turn.
pub struct ModelContext(pub i64);

impl StoreOp for ModelContext {
    type Output = Vec<ContextRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<ContextRow>> {
        Ok(diesel::sql_query(
            "SELECT path, scheme, visibility, state, outcome, body, attributes, category, \
             turn, ordinal FROM v_model_context WHERE run_id = ? ORDER BY ordinal",
        )
        .bind::<BigInt, _>(self.0)
        .load(conn)?)
    }
}

/// One materialized row, as shipped to the model.
#[derive(Debug, Clone)]
pub struct TurnContextRow {
    pub ordinal: i64,
    pub path: String,
    pub state: String,
    pub outcome: Option<String>,
    pub visibility: String,
    pub body: String,
    pub attributes: String,
    pub category: String,
    pub source_turn: i64,
}

/// Replaces the `turn_context` snapshot of one turn.
pub struct SaveTurnContext {
    pub run_id: i64,
    pub loop_id: i64,
    pub turn: i64,
    pub rows: Vec<TurnContextRow>,
}

impl StoreOp for SaveTurnContext {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::delete(
            turn_context::table
                .filter(turn_context::run_id.eq(self.run_id))
                .filter(turn_context::turn.eq(self.turn)),
        )
        .execute(conn)?;
        for r in self.rows {
            diesel::insert_into(turn_context::table)
                .values((
                    turn_context::run_id.eq(self.run_id),
                    turn_context::loop_id.eq(Some(self.loop_id)),
                    turn_context::turn.eq(self.turn),
                    turn_context::ordinal.eq(r.ordinal),
                    turn_context::path.eq(r.path),
                    turn_context::state.eq(r.state),
                    turn_context::outcome.eq(r.outcome),
                    turn_context::visibility.eq(r.visibility),
                    turn_context::body.eq(r.body),
                    turn_context::attributes.eq(r.attributes),
                    turn_context::category.eq(r.category),
                    turn_context::source_turn.eq(Some(r.source_turn)),
                ))
                .execute(conn)?;
        }
        Ok(())
    }
}

/// A `v_run_log` row (run/state and getRun history).
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct HistoryRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub tool: Option<String>,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub outcome: Option<String>,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = BigInt)]
    pub turn: i64,
    #[diesel(sql_type = Text)]
    pub attributes: String,
}

#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct PathBody {
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = BigInt)]
    #[serde(skip_serializing_if = "is_negative")]
    pub turn: i64,
}

fn is_negative(n: &i64) -> bool {
    *n < 0
}

/// Sums of a run's `turns` rows.
#[derive(Debug, Clone, Default, Serialize, QueryableByName)]
pub struct UsageTotals {
    #[diesel(sql_type = BigInt)]
    pub prompt_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub cached_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub completion_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub reasoning_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub cost: f64,
    /// Newest non-zero `context_tokens` of the run.
    #[diesel(sql_type = BigInt)]
    pub last_context_tokens: i64,
}

/// One bucket of a turn's context distribution.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub bucket: String,
    pub tokens: i64,
    pub entries: i64,
}

/// What `run/state` and `getRun` report about a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub history: Vec<HistoryRow>,
    pub unknowns: Vec<PathBody>,
    pub usage: UsageTotals,
    /// Newest update body with status 200.
    pub summary: Option<String>,
    pub reasoning: Vec<PathBody>,
    pub content: Vec<PathBody>,
    pub distribution: Vec<Bucket>,
}

pub struct ReportRun {
    pub run_id: i64,
    /// The turn whose `turn_context` gives the distribution.
    pub turn: i64,
    pub token_divisor: f64,
}

impl StoreOp for ReportRun {
    type Output = RunReport;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunReport> {
        let run = self.run_id;
        let history: Vec<HistoryRow> = diesel::sql_query(
            "SELECT tool, state, outcome, path, body, turn, attributes \
             FROM v_run_log WHERE run_id = ?",
        )
        .bind::<BigInt, _>(run)
        .load(conn)?;
        let by_scheme = |scheme: &str, conn: &mut SqliteConnection| -> StoreResult<Vec<PathBody>> {
            Ok(diesel::sql_query(
                "SELECT path, body, turn FROM known_entries \
                 WHERE run_id = ? AND scheme = ? ORDER BY id",
            )
            .bind::<BigInt, _>(run)
            .bind::<Text, _>(scheme)
            .load(conn)?)
        };
        let unknowns = by_scheme("unknown", conn)?
            .into_iter()
            .map(|p| PathBody { turn: -1, ..p })
            .collect();
        let reasoning = by_scheme("reasoning", conn)?;
        let content = by_scheme("content", conn)?;
        let usage: UsageTotals = diesel::sql_query(
            "SELECT COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, \
               COALESCE(SUM(cached_tokens), 0) AS cached_tokens, \
               COALESCE(SUM(completion_tokens), 0) AS completion_tokens, \
               COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens, \
               COALESCE(SUM(total_tokens), 0) AS total_tokens, \
               CAST(COALESCE(SUM(cost), 0) AS REAL) AS cost, \
               COALESCE((SELECT t2.context_tokens FROM turns t2 WHERE t2.run_id = ? \
                 AND t2.context_tokens > 0 ORDER BY t2.sequence DESC, t2.id DESC LIMIT 1), 0) \
                 AS last_context_tokens \
             FROM turns WHERE run_id = ?",
        )
        .bind::<BigInt, _>(run)
        .bind::<BigInt, _>(run)
        .get_result(conn)?;
        let summary: Option<String> = entries::table
            .inner_join(run_views::table)
            .filter(run_views::run_id.eq(run))
            .filter(entries::path.like("log://turn_%/update/%"))
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "json_extract(entries.attributes, '$.status') = 200",
            ))
            .order(run_views::id.desc())
            .select(entries::body)
            .first(conn)
            .optional()?;
        let rows: Vec<(String, String)> = turn_context::table
            .filter(turn_context::run_id.eq(run))
            .filter(turn_context::turn.eq(self.turn))
            .order(turn_context::ordinal.asc())
            .select((turn_context::category, turn_context::body))
            .load(conn)?;
        let mut distribution: Vec<Bucket> = Vec::new();
        for (category, body) in rows {
            let tokens = count_tokens(&body, self.token_divisor);
            match distribution.iter_mut().find(|b| b.bucket == category) {
                Some(b) => {
                    b.tokens += tokens;
                    b.entries += 1;
                }
                None => distribution.push(Bucket {
                    bucket: category,
                    tokens,
                    entries: 1,
                }),
            }
        }
        Ok(RunReport {
            history,
            unknowns,
            usage,
            summary,
            reasoning,
            content,
            distribution,
        })
    }
}

store_ops!(
    SetEntry => bool,
    GetEntry => Option<EntryRow>,
    ListEntries => Vec<EntryRow>,
    ChangeVisibility => Vec<String>,
    AllocateLogPaths => Vec<String>,
    LogError => String,
    ModelContext => Vec<ContextRow>,
    SaveTurnContext => (),
    ReportRun => RunReport,
);
