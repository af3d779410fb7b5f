//! Runs, loops (the per-run FIFO prompt queue) and turns.

use super::entries::{write_entry, EntryWrite};
use super::schema::{loops, runs};
use super::{prepared, FirstRow};
use super::{store_ops, EntryState, RunStatus, StoreError, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::SqliteConnection;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub project_id: i64,
    pub parent_run_id: Option<i64>,
    pub model: Option<String>,
    pub status: RunStatus,
    pub alias: String,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    pub next_turn: i64,
    pub next_loop: i64,
    pub created_at: Option<String>,
    /// JSON: the loop flags later loops inherit (`LoopFlags`).
    pub flags: Option<String>,
}

pub(crate) type RunColumns = (
    runs::id,
    runs::project_id,
    runs::parent_run_id,
    runs::model,
    runs::status,
    runs::alias,
    runs::temperature,
    runs::persona,
    runs::context_limit,
    runs::next_turn,
    runs::next_loop,
    runs::created_at,
    runs::flags,
);

pub(crate) const RUN_COLUMNS: RunColumns = (
    runs::id,
    runs::project_id,
    runs::parent_run_id,
    runs::model,
    runs::status,
    runs::alias,
    runs::temperature,
    runs::persona,
    runs::context_limit,
    runs::next_turn,
    runs::next_loop,
    runs::created_at,
    runs::flags,
);

/// Creates a run (status 100) and its `run://{alias}` entry.
pub struct CreateRun {
    pub project_id: i64,
    /// Set for a fork: the child sees the parent's entries.
    pub parent_run_id: Option<i64>,
    pub alias: String,
    pub model: String,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    pub prompt: String,
    /// The loop flags later loops inherit (JSON object).
    pub flags: Value,
}

impl StoreOp for CreateRun {
    type Output = RunRow;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunRow> {
        let taken: i64 = runs::table
            .filter(runs::alias.eq(&self.alias))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(StoreError::Invalid(format!(
                "Run alias '{}' is already taken.",
                self.alias
            )));
        }
        let row: RunRow = diesel::insert_into(runs::table)
            .values((
                runs::project_id.eq(self.project_id),
                runs::parent_run_id.eq(self.parent_run_id),
                runs::alias.eq(&self.alias),
                runs::model.eq(&self.model),
                runs::temperature.eq(self.temperature),
                runs::persona.eq(&self.persona),
                runs::context_limit.eq(self.context_limit),
                runs::flags.eq(Some(self.flags.to_string())),
            ))
            .returning(RUN_COLUMNS)
            .get_result(conn)?;
        let attributes = serde_json::json!({
            "projectId": self.project_id,
            "parentRunId": self.parent_run_id,
            "model": self.model,
            "persona": self.persona,
            "temperature": self.temperature,
            "contextLimit": self.context_limit,
        });
        write_entry(
            conn,
            &EntryWrite {
                body: Some(self.prompt),
                state: Some(EntryState::Proposed),
                attributes: Some(attributes),
                ..EntryWrite::new(row.id, format!("run://{}", row.alias), Writer::System)
            },
        )?;
        if let Some(parent) = self.parent_run_id {
            super::verbs::ForkViews {
                parent_run_id: parent,
                child_run_id: row.id,
            }
            .run(conn)?;
        }
        Ok(row)
    }
}

/// A run by alias, optionally only within one project.
pub struct GetRun {
    pub alias: String,
    pub project_id: Option<i64>,
}

impl StoreOp for GetRun {
    type Output = Option<RunRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<RunRow>> {
        let mut q = runs::table
            .filter(runs::alias.eq(&self.alias))
            .select(RUN_COLUMNS)
            .into_boxed();
        if let Some(p) = self.project_id {
            q = q.filter(runs::project_id.eq(p));
        }
        Ok(q.first_row(conn).optional()?)
    }
}

pub struct GetRunById(pub i64);

impl StoreOp for GetRunById {
    type Output = RunRow;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<RunRow> {
        runs::table
            .find(self.0)
            .select(RUN_COLUMNS)
            .first_row(conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("Run {} not found.", self.0)))
    }
}

/// One `getRuns` item.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct RunListItem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub run: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub status: RunStatus,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub turn: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub summary: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub created: Option<String>,
}

pub struct ListRuns {
    pub project_id: i64,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl StoreOp for ListRuns {
    type Output = Vec<RunListItem>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<RunListItem>> {
        use diesel::sql_types::BigInt;
        Ok(diesel::sql_query(
            "SELECT r.alias AS run, r.status AS status, r.next_turn - 1 AS turn, \
               (SELECT e.body FROM run_views rv JOIN entries e ON e.id = rv.entry_id \
                 WHERE rv.run_id = r.id AND e.path LIKE 'log://turn_%/update/%' \
                 ORDER BY rv.id DESC LIMIT 1) AS summary, \
               r.created_at AS created \
             FROM runs r WHERE r.project_id = ? \
             ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?",
        )
        .bind::<BigInt, _>(self.project_id)
        .bind::<BigInt, _>(self.limit.unwrap_or(-1))
        .bind::<BigInt, _>(self.offset.unwrap_or(0))
        .load(conn)?)
    }
}

/// Moves a run to a new status (the database trigger refuses illegal
/// transitions) and mirrors it onto the `run://` entry.
pub struct SetRunStatus {
    pub run_id: i64,
    pub status: RunStatus,
}

impl StoreOp for SetRunStatus {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        set_run_status(conn, self.run_id, self.status)
    }
}

pub(crate) fn set_run_status(
    conn: &mut SqliteConnection,
    run_id: i64,
    status: RunStatus,
) -> StoreResult<()> {
    let alias: String = diesel::update(runs::table.find(run_id))
        .set(runs::status.eq(status))
        .returning(runs::alias)
        .get_result(conn)?;
    let outcome = (status.code() >= 400).then(|| format!("status:{status}"));
    write_entry(
        conn,
        &EntryWrite {
            state: Some(status.mirrored_state()),
            outcome,
            ..EntryWrite::new(run_id, format!("run://{alias}"), Writer::System)
        },
    )?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct LoopRow {
    pub id: i64,
    pub run_id: i64,
    pub sequence: i64,
    pub mode: String,
    pub model: Option<String>,
    pub prompt: String,
    pub status: RunStatus,
    pub config: Option<String>,
}

type LoopColumns = (
    loops::id,
    loops::run_id,
    loops::sequence,
    loops::mode,
    loops::model,
    loops::prompt,
    loops::status,
    loops::config,
);

const LOOP_COLUMNS: LoopColumns = (
    loops::id,
    loops::run_id,
    loops::sequence,
    loops::mode,
    loops::model,
    loops::prompt,
    loops::status,
    loops::config,
);

/// Queues a prompt as a new loop (status 100) at the run's next sequence.
pub struct EnqueueLoop {
    pub run_id: i64,
    pub mode: String,
    pub model: Option<String>,
    pub prompt: String,
    pub config: Value,
}

impl StoreOp for EnqueueLoop {
    type Output = LoopRow;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<LoopRow> {
        let sequence: i64 = diesel::update(runs::table.find(self.run_id))
            .set(runs::next_loop.eq(runs::next_loop + 1))
            .returning(runs::next_loop - 1)
            .get_result(conn)?;
        Ok(diesel::insert_into(loops::table)
            .values((
                loops::run_id.eq(self.run_id),
                loops::sequence.eq(sequence),
                loops::mode.eq(&self.mode),
                loops::model.eq(&self.model),
                loops::prompt.eq(&self.prompt),
                loops::config.eq(self.config.to_string()),
            ))
            .returning(LOOP_COLUMNS)
            .get_result(conn)?)
    }
}

/// The run's running loop, if any (what a steered prompt must match).
pub struct ActiveLoop(pub i64);

impl StoreOp for ActiveLoop {
    type Output = Option<LoopRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<LoopRow>> {
        Ok(loops::table
            .filter(loops::run_id.eq(self.0))
            .filter(loops::status.eq(RunStatus::Running))
            .select(LOOP_COLUMNS)
            .first_row(conn)
            .optional()?)
    }
}

/// Claims the run's oldest pending loop (100 -> 102), FIFO.
pub struct ClaimNextLoop(pub i64);

impl StoreOp for ClaimNextLoop {
    type Output = Option<LoopRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<LoopRow>> {
        // One active loop per run: while one runs, nothing else is claimed.
        let active: i64 = loops::table
            .filter(loops::run_id.eq(self.0))
            .filter(loops::status.eq(RunStatus::Running))
            .count()
            .get_result(conn)?;
        if active > 0 {
            return Ok(None);
        }
        let next: Option<i64> = loops::table
            .filter(loops::run_id.eq(self.0))
            .filter(loops::status.eq(RunStatus::Queued))
            .order(loops::id.asc())
            .select(loops::id)
            .first_row(conn)
            .optional()?;
        let Some(id) = next else { return Ok(None) };
        Ok(Some(
            diesel::update(loops::table.find(id))
                .set(loops::status.eq(RunStatus::Running))
                .returning(LOOP_COLUMNS)
                .get_result(conn)?,
        ))
    }
}

pub struct CompleteLoop {
    pub loop_id: i64,
    pub status: RunStatus,
    pub result: Value,
}

impl StoreOp for CompleteLoop {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::update(loops::table.find(self.loop_id))
            .set((
                loops::status.eq(self.status),
                loops::result.eq(Some(self.result.to_string())),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// Ends a loop and sets the run's status in one transaction, so a cancel
/// can never land between the two and overwrite a status clients saw.
pub struct FinishLoop {
    pub run_id: i64,
    pub loop_id: i64,
    pub status: RunStatus,
    pub result: Value,
}

impl StoreOp for FinishLoop {
    /// False when the loop had already ended (an abort got there first);
    /// then nothing is written.
    type Output = bool;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        let finished = diesel::update(
            loops::table
                .find(self.loop_id)
                .filter(loops::status.eq_any([RunStatus::Queued, RunStatus::Running])),
        )
        .set((
            loops::status.eq(self.status),
            loops::result.eq(Some(self.result.to_string())),
        ))
        .execute(conn)?;
        if finished == 0 {
            return Ok(false);
        }
        let current: RunStatus = runs::table
            .find(self.run_id)
            .select(runs::status)
            .first_row(conn)?;
        if current != self.status {
            set_run_status(conn, self.run_id, self.status)?;
        }
        Ok(true)
    }
}

/// Ends a run 499 after an abort: its active and queued loops end 499 too.
pub struct AbortRun {
    pub run_id: i64,
    pub reason: String,
}

impl StoreOp for AbortRun {
    /// The run after the abort, or None when it had nothing in flight
    /// (decided here, inside the transaction, so a run that just finished
    /// is never turned into 499).
    type Output = Option<RunRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<RunRow>> {
        let status: RunStatus = runs::table
            .find(self.run_id)
            .select(runs::status)
            .first_row(conn)?;
        let pending: i64 = loops::table
            .filter(loops::run_id.eq(self.run_id))
            .filter(loops::status.eq_any([RunStatus::Queued, RunStatus::Running]))
            .count()
            .get_result(conn)?;
        if pending == 0
            && !matches!(
                status,
                RunStatus::Queued | RunStatus::Running | RunStatus::Proposed
            )
        {
            return Ok(None);
        }
        diesel::update(
            loops::table
                .filter(loops::run_id.eq(self.run_id))
                .filter(loops::status.eq_any([RunStatus::Queued, RunStatus::Running])),
        )
        .set((
            loops::status.eq(RunStatus::Aborted),
            loops::result.eq(Some(
                serde_json::json!({ "reason": self.reason }).to_string(),
            )),
        ))
        .execute(conn)?;
        if status != RunStatus::Aborted {
            set_run_status(conn, self.run_id, RunStatus::Aborted)?;
        }
        GetRunById(self.run_id).run(conn).map(Some)
    }
}

/// Starts a turn: consumes `runs.next_turn` and inserts its `turns` row.
pub struct BeginTurn {
    pub run_id: i64,
    pub loop_id: i64,
}

/// The turn number and its `turns` row id.
#[derive(Debug, Clone, Copy)]
pub struct TurnStart {
    pub turn: i64,
    pub turn_id: i64,
}

impl StoreOp for BeginTurn {
    type Output = TurnStart;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<TurnStart> {
        // Prepared statements (see `prepared`): a DSL UPDATE is compiled
        // afresh on every use.
        let turn: i64 = prepared(
            "UPDATE runs SET next_turn = next_turn + 1 WHERE id = ? RETURNING next_turn - 1",
        )
        .int(self.run_id)
        .returning::<BigInt>()
        .get_result(conn)?;
        let turn_id: i64 =
            prepared("INSERT INTO turns (run_id, loop_id, sequence) VALUES (?, ?, ?) RETURNING id")
                .int(self.run_id)
                .int(self.loop_id)
                .int(turn)
                .returning::<BigInt>()
                .get_result(conn)?;
        Ok(TurnStart { turn, turn_id })
    }
}

/// Provider usage of one turn, as stored in `turns`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnUsage {
    pub context_tokens: i64,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub total_tokens: i64,
    pub cost: f64,
    pub reasoning_content: Option<String>,
}

pub struct RecordTurnUsage {
    pub turn_id: i64,
    pub usage: TurnUsage,
}

impl StoreOp for RecordTurnUsage {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let u = self.usage;
        prepared(
            "UPDATE turns SET context_tokens = ?, prompt_tokens = ?, cached_tokens = ?, \
               completion_tokens = ?, reasoning_tokens = ?, total_tokens = ?, cost = ?, \
               reasoning_content = ? \
             WHERE id = ?",
        )
        .int(u.context_tokens.max(0))
        .int(u.prompt_tokens.max(0))
        .int(u.cached_tokens.max(0))
        .int(u.completion_tokens.max(0))
        .int(u.reasoning_tokens.max(0))
        .int(u.total_tokens.max(0))
        .float(u.cost.max(0.0))
        .opt_text(u.reasoning_content.as_deref())
        .int(self.turn_id)
        .execute(conn)?;
        Ok(())
    }
}

/// Runs still in flight (used at shutdown).
pub struct ActiveRunIds;

impl StoreOp for ActiveRunIds {
    type Output = Vec<i64>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<i64>> {
        Ok(runs::table
            .filter(runs::status.eq_any([
                RunStatus::Queued,
                RunStatus::Running,
                RunStatus::Proposed,
            ]))
            .select(runs::id)
            .load(conn)?)
    }
}

/// Sets (or, with `None`, clears) a run's persona; later loops use it.
pub struct SetRunPersona {
    pub run_id: i64,
    pub persona: Option<String>,
}

impl StoreOp for SetRunPersona {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::update(runs::table.filter(runs::id.eq(self.run_id)))
            .set(runs::persona.eq(self.persona))
            .execute(conn)?;
        Ok(())
    }
}

store_ops!(
    SetRunPersona => (),
    CreateRun => RunRow,
    GetRun => Option<RunRow>,
    GetRunById => RunRow,
    ListRuns => Vec<RunListItem>,
    SetRunStatus => (),
    EnqueueLoop => LoopRow,
    ClaimNextLoop => Option<LoopRow>,
    CompleteLoop => (),
    FinishLoop => bool,
    ActiveLoop => Option<LoopRow>,
    AbortRun => Option<RunRow>,
    BeginTurn => TurnStart,
    RecordTurnUsage => (),
    ActiveRunIds => Vec<i64>,
);
