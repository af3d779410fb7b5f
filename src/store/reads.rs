//! Reads for the turn loop and reports: the model-visible rows, the
//! `turn_context` snapshot, history, usage and distributions.

use super::report_scan::RunScan;
use super::{prepared, store_ops, EntryState, StoreOp, StoreResult};
use crate::tokens::count_tokens;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use serde::Serialize;

/// One row of `v_model_context`, in ordinal order.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ContextRow {
    /// The view's id: the row's identity while its content changes.
    #[diesel(sql_type = BigInt)]
    pub view_id: i64,
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
    /// The order key `ordinal` numbers (see `ModelContext`).
    #[diesel(sql_type = Text)]
    pub sort_key: String,
}

/// The model-context query up to its `WHERE` clause's run and visibility
/// tests; a macro so `concat!` can extend it into constant text, which
/// `prepared` keeps prepared.
macro_rules! model_context_sql {
    () => {
        "\
SELECT v.id AS view_id, e.path AS path, e.scheme AS scheme, v.visibility AS visibility, \
  v.state AS state, v.outcome AS outcome, e.body AS body, e.attributes AS attributes, \
  coalesce(s.category, 'logging') AS category, v.turn AS turn, 0 AS ordinal, \
  printf('%d%d%d%010d %s %012d', \
    CASE coalesce(s.category, 'logging') \
      WHEN 'tool' THEN 1 WHEN 'data' THEN 2 WHEN 'logging' THEN 3 WHEN 'unknown' THEN 4 \
      ELSE 5 END, \
    CASE WHEN e.scheme = 'skill' THEN 0 ELSE 1 END, \
    CASE WHEN v.visibility = 'summarized' THEN 0 ELSE 1 END, \
    v.turn, coalesce(v.updated_at, ''), v.id) AS sort_key \
FROM run_views AS v \
INNER JOIN entries AS e ON e.id = v.entry_id \
INNER JOIN schemes AS s ON s.name = coalesce(e.scheme, 'file') \
WHERE v.run_id = ? AND v.visibility IN ('summarized', 'visible') AND s.model_visible <> 0"
    };
}
pub(crate) use model_context_sql;

pub(crate) const MODEL_CONTEXT: &str = model_context_sql!();

/// The rows the model may see this turn, in packet order (sorted after
/// reading; the visibility test is an `IN` of the two values the CHECK
/// allows besides `archived`, so the (run, visibility) index skips a run's
/// archived audit rows, five a turn, instead of reading each): category (tool,
/// data, logging, unknown, then the rest), skills first, summarized
/// before visible, then by view turn, update time and id. This is the
/// order `v_model_context` numbers; the query reads the tables directly so
/// the key comes out as text that stays the same while a row is unchanged
/// (`turn_context` stores it) and no window function spans the table.
pub struct ModelContext(pub i64);

impl StoreOp for ModelContext {
    type Output = Vec<ContextRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<ContextRow>> {
        let mut rows: Vec<ContextRow> = prepared(MODEL_CONTEXT).int(self.0).load(conn)?;
        // Sorted here rather than by `ORDER BY`: SQLite's sorter would copy
        // every row, bodies included, into a temporary b-tree. Keys are
        // unique (they end with the view id) and compare bytewise, as
        // SQLite's BINARY collation does.
        rows.sort_unstable_by(|a, b| a.sort_key.cmp(&b.sort_key));
        for (i, r) in rows.iter_mut().enumerate() {
            r.ordinal = i as i64 + 1;
        }
        Ok(rows)
    }
}

pub use super::turn_context::{SaveTurnContext, SnapshotRow, TurnContextRow};

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
    /// The turn loop's copy of the scanned rows, brought up to date instead
    /// of reading the whole run (`None`: a full read).
    pub scan: Option<super::report_scan::SharedScanRows>,
    /// The saver's copy of the open `turn_context` rows, for the
    /// distribution (`None`: read from the table).
    pub saved: Option<super::turn_context::SharedSavedContext>,
}

impl StoreOp for ReportRun {
    type Output = RunReport;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunReport> {
        let run = self.run_id;
        let scan = match &self.scan {
            Some(cache) => RunScan::read_cached(conn, run, cache)?,
            None => RunScan::read(conn, run)?,
        };
        let usage: UsageTotals = prepared(
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
        .int(run)
        .int(run)
        .get_result(conn)?;
        let distribution =
            super::turn_context::distribution(conn, run, self.turn, self.saved.as_deref())?;
        Ok(RunReport {
            history: scan.history,
            unknowns: scan.unknowns,
            usage,
            summary: scan.summary,
            reasoning: scan.reasoning,
            content: scan.content,
            distribution,
            last_prompt: scan.last_prompt,
            last_update: scan.last_update,
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
        let row: Option<PromptTokensRow> = prepared(
            "SELECT prompt_tokens FROM turns WHERE run_id = ? AND sequence < ? \
             ORDER BY sequence DESC, id DESC LIMIT 1",
        )
        .int(self.run_id)
        .int(self.turn)
        .get_result(conn)
        .optional()?;
        Ok(row.map(|r| r.prompt_tokens).filter(|n| *n > 0))
    }
}

store_ops!(
    PreviousPromptTokens => Option<i64>,
    ModelContext => Vec<ContextRow>,
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
