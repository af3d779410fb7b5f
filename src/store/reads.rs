//! Reads for the turn loop and reports: the model-visible rows, the
//! `turn_context` snapshot, history, usage and distributions.

use super::schema::{entries, run_views, turn_context};
use super::{store_ops, EntryState, StoreOp, StoreResult};
use crate::tokens::count_tokens;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use serde::Serialize;

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
    pub state: EntryState,
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
    pub state: EntryState,
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
    pub state: EntryState,
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
    /// Body of the newest `prompt://` entry.
    pub last_prompt: Option<String>,
    /// Body of the newest update, of any status.
    pub last_update: Option<String>,
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
        let newest = |pattern: &str, conn: &mut SqliteConnection| -> StoreResult<Option<String>> {
            Ok(entries::table
                .inner_join(run_views::table)
                .filter(run_views::run_id.eq(run))
                .filter(entries::path.like(pattern))
                .order(run_views::id.desc())
                .select(entries::body)
                .first(conn)
                .optional()?)
        };
        let last_prompt = newest("prompt://%", conn)?;
        let last_update = newest("log://turn_%/update/%", conn)?;
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
        // The order `run/state` documents: data, logging, unknown, prompt,
        // system (the system prompt's own row).
        let rank = |bucket: &str| {
            ["data", "logging", "unknown", "prompt", "system"]
                .iter()
                .position(|b| *b == bucket)
                .unwrap_or(5)
        };
        distribution.sort_by_key(|b| rank(&b.bucket));
        Ok(RunReport {
            history,
            unknowns,
            usage,
            summary,
            reasoning,
            content,
            distribution,
            last_prompt,
            last_update,
        })
    }
}

/// The provider's `prompt_tokens` for the run's latest turn before `turn`,
/// when that turn called the provider and the provider counted (a skipped
/// turn has none, so an old figure never outlives the packet it measured).
pub struct PreviousPromptTokens {
    pub run_id: i64,
    pub turn: i64,
}

#[derive(QueryableByName)]
struct PromptTokensRow {
    #[diesel(sql_type = BigInt)]
    prompt_tokens: i64,
}

impl StoreOp for PreviousPromptTokens {
    type Output = Option<i64>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<i64>> {
        let row: Option<PromptTokensRow> = diesel::sql_query(
            "SELECT prompt_tokens FROM turns WHERE run_id = ? AND sequence < ? \
             ORDER BY sequence DESC, id DESC LIMIT 1",
        )
        .bind::<BigInt, _>(self.run_id)
        .bind::<BigInt, _>(self.turn)
        .get_result(conn)
        .optional()?;
        Ok(row.map(|r| r.prompt_tokens).filter(|n| *n > 0))
    }
}

store_ops!(
    PreviousPromptTokens => Option<i64>,
    ModelContext => Vec<ContextRow>,
    SaveTurnContext => (),
    ReportRun => RunReport,
);

/// One `getEntries` item.
#[derive(Debug, Clone, Serialize)]
pub struct EntryListItem {
    /// The view's id.
    pub id: i64,
    pub path: String,
    pub scheme: Option<String>,
    pub state: EntryState,
    pub outcome: Option<String>,
    pub visibility: String,
    pub tokens: i64,
    pub attributes: serde_json::Value,
    /// Only when asked for.
    pub body: Option<String>,
}

#[derive(QueryableByName)]
struct EntryListRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = Nullable<Text>)]
    scheme: Option<String>,
    #[diesel(sql_type = Text)]
    state: EntryState,
    #[diesel(sql_type = Nullable<Text>)]
    outcome: Option<String>,
    #[diesel(sql_type = Text)]
    visibility: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    attributes: String,
}

/// Read-only listing of a run's entries by pattern (no promotion).
pub struct QueryEntries {
    pub run_id: i64,
    pub pattern: String,
    pub body_filter: Option<String>,
    pub scheme: Option<String>,
    pub state: Option<EntryState>,
    pub visibility: Option<String>,
    pub token_divisor: f64,
}

/// `getEntries` paging on top of a [`QueryEntries`] filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntryPage {
    pub with_body: bool,
    /// At most this many rows.
    pub limit: Option<i64>,
    /// Only views with a greater id, ordered by id.
    pub since: Option<i64>,
}

impl StoreOp for QueryEntries {
    type Output = Vec<EntryListItem>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<EntryListItem>> {
        PagedEntries {
            query: self,
            page: EntryPage::default(),
        }
        .run(conn)
    }
}

/// A [`QueryEntries`] listing, paged.
pub struct PagedEntries {
    pub query: QueryEntries,
    pub page: EntryPage,
}

impl StoreOp for PagedEntries {
    type Output = Vec<EntryListItem>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<EntryListItem>> {
        let PagedEntries { query: q, page } = self;
        let rows: Vec<EntryListRow> = diesel::sql_query(
            "SELECT rv.id, e.path, e.scheme, rv.state, rv.outcome, rv.visibility, e.body, \
               e.attributes \
             FROM run_views rv JOIN entries e ON e.id = rv.entry_id \
             WHERE rv.run_id = ? AND hedmatch(?, e.path) \
               AND (? IS NULL OR hedsearch(?, e.body)) \
               AND (? IS NULL OR e.scheme = ?) \
               AND (? IS NULL OR rv.state = ?) \
               AND (? IS NULL OR rv.visibility = ?) \
               AND (? IS NULL OR rv.id > ?) \
             ORDER BY CASE WHEN ? IS NULL THEN 0 ELSE rv.id END, e.path, rv.id \
             LIMIT ?",
        )
        .bind::<BigInt, _>(q.run_id)
        .bind::<Text, _>(&q.pattern)
        .bind::<Nullable<Text>, _>(&q.body_filter)
        .bind::<Nullable<Text>, _>(&q.body_filter)
        .bind::<Nullable<Text>, _>(&q.scheme)
        .bind::<Nullable<Text>, _>(&q.scheme)
        .bind::<Nullable<Text>, _>(&q.state)
        .bind::<Nullable<Text>, _>(&q.state)
        .bind::<Nullable<Text>, _>(&q.visibility)
        .bind::<Nullable<Text>, _>(&q.visibility)
        .bind::<Nullable<BigInt>, _>(page.since)
        .bind::<Nullable<BigInt>, _>(page.since)
        .bind::<Nullable<BigInt>, _>(page.since)
        .bind::<BigInt, _>(page.limit.unwrap_or(-1))
        .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|r| EntryListItem {
                id: r.id,
                tokens: count_tokens(&r.body, q.token_divisor),
                attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
                path: r.path,
                scheme: r.scheme,
                state: r.state,
                outcome: r.outcome,
                visibility: r.visibility,
                body: page.with_body.then_some(r.body),
            })
            .collect())
    }
}

store_ops!(QueryEntries => Vec<EntryListItem>, PagedEntries => Vec<EntryListItem>);
