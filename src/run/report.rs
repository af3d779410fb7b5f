//! The `run/state` payload and the `getRun` detail, built from the store
//! into their protocol types.

use super::Engine;
use crate::context::tokens::ceiling;
use crate::protocol::notifications::{
    ContextBucket, RunLogItem, RunStateNotification, RunTelemetry, UnknownItem,
};
use crate::protocol::runs::{
    GetRunResult, RunContext, RunHistoryItem, RunSummary, RunUsage, TurnText,
};
use crate::store::{
    Bucket, GetModel, HistoryRow, PathBody, ReportRun, RunListItem, RunReport, RunRow, RunStatus,
    StoreError,
};
use serde_json::Value;

/// Facts only a turn that just got a provider reply knows.
#[derive(Debug, Clone, Default)]
pub struct FreshTurn {
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub assembled_tokens: i64,
}

impl From<HistoryRow> for RunLogItem {
    fn from(h: HistoryRow) -> Self {
        RunLogItem {
            tool: h.tool,
            state: h.state,
            outcome: h.outcome,
            path: h.path,
            body: h.body,
            turn: h.turn,
            attributes: h.attributes,
        }
    }
}

impl From<HistoryRow> for RunHistoryItem {
    fn from(h: HistoryRow) -> Self {
        // getRun parses what run/state sends as a string; text that is not
        // JSON (never written by the store) reads as null.
        let attributes = serde_json::from_str::<Value>(&h.attributes).ok();
        RunHistoryItem {
            tool: h.tool,
            path: h.path,
            body: h.body,
            attributes,
            turn: h.turn,
        }
    }
}

impl From<PathBody> for UnknownItem {
    fn from(p: PathBody) -> Self {
        UnknownItem {
            path: p.path,
            body: p.body,
        }
    }
}

impl From<PathBody> for TurnText {
    fn from(p: PathBody) -> Self {
        TurnText {
            path: p.path,
            body: p.body,
            turn: p.turn,
        }
    }
}

impl From<Bucket> for ContextBucket {
    fn from(b: Bucket) -> Self {
        ContextBucket {
            bucket: b.bucket,
            tokens: b.tokens,
            entries: b.entries,
        }
    }
}

impl From<RunListItem> for RunSummary {
    fn from(r: RunListItem) -> Self {
        RunSummary {
            run: r.run,
            status: r.status.into(),
            turn: r.turn,
            summary: r.summary,
            created: r.created,
        }
    }
}

/// Builds `run/state` params for a run at a turn and status.
pub async fn run_state(
    engine: &Engine,
    run: &RunRow,
    turn: i64,
    status: RunStatus,
    fresh: Option<&FreshTurn>,
) -> Result<RunStateNotification, StoreError> {
    let report: RunReport = engine
        .store
        .run(ReportRun {
            run_id: run.id,
            turn,
            token_divisor: engine.config.token_divisor,
        })
        .await?;
    let alias = run.model.clone().unwrap_or_default();
    let model = engine.store.run(GetModel(alias.clone())).await?;
    let context_size = model.and_then(|m| m.context_length);
    let context_size = match (context_size, run.context_limit) {
        (Some(c), Some(l)) => Some(c.min(l)),
        (c, l) => c.or(l),
    };
    let token_usage = match (report.usage.last_context_tokens, fresh) {
        (n, _) if n > 0 => n,
        (_, Some(f)) => f.assembled_tokens,
        _ => 0,
    };
    let ceil = context_size.map(|c| ceiling(c, engine.config.budget_ceiling));
    let u = &report.usage;
    let telemetry = RunTelemetry {
        model: fresh
            .and_then(|f| f.model.clone())
            .unwrap_or_else(|| alias.clone()),
        model_alias: alias,
        temperature: fresh.and_then(|f| f.temperature),
        context_size,
        context_tokens: token_usage,
        ceiling: ceil,
        token_usage,
        tokens_free: ceil.map(|c| (c - token_usage).max(0)),
        prompt_tokens: u.prompt_tokens,
        cached_tokens: u.cached_tokens,
        completion_tokens: u.completion_tokens,
        reasoning_tokens: u.reasoning_tokens,
        total_tokens: u.total_tokens,
        cost: u.cost,
        context_distribution: report.distribution.into_iter().map(Into::into).collect(),
    };
    Ok(RunStateNotification {
        run: run.alias.clone(),
        turn,
        status: status.into(),
        summary: report.summary,
        history: report.history.into_iter().map(Into::into).collect(),
        unknowns: report.unknowns.into_iter().map(Into::into).collect(),
        telemetry,
    })
}

/// The `getRun` result.
pub async fn run_detail(engine: &Engine, run: &RunRow) -> Result<GetRunResult, StoreError> {
    let report: RunReport = engine
        .store
        .run(ReportRun {
            run_id: run.id,
            turn: run.next_turn - 1,
            token_divisor: engine.config.token_divisor,
        })
        .await?;
    let u = &report.usage;
    Ok(GetRunResult {
        run: run.alias.clone(),
        turn: run.next_turn - 1,
        status: run.status.into(),
        model: run.model.clone(),
        temperature: run.temperature,
        persona: run.persona.clone(),
        context_limit: run.context_limit,
        context: RunContext {
            telemetry: RunUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
                cost: u.cost,
            },
            reasoning: report.reasoning.into_iter().map(Into::into).collect(),
            content: report.content.into_iter().map(Into::into).collect(),
            history: report.history.into_iter().map(Into::into).collect(),
        },
    })
}
