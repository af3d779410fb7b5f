//! The `run/state` payload and `getRun` detail, built from the store.

use super::Engine;
use crate::context::tokens::ceiling;
use crate::store::{GetModel, ReportRun, RunReport, RunRow, RunStatus, StoreError};
use serde_json::{json, Map, Value};

/// Facts only a turn that just got a provider reply knows.
#[derive(Debug, Clone, Default)]
pub struct FreshTurn {
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub assembled_tokens: i64,
}

/// Builds `run/state` params for a run at a turn and status.
pub async fn run_state(
    engine: &Engine,
    run: &RunRow,
    turn: i64,
    status: RunStatus,
    fresh: Option<&FreshTurn>,
) -> Result<Value, StoreError> {
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
    let mut telemetry = Map::new();
    telemetry.insert("modelAlias".into(), json!(alias));
    telemetry.insert(
        "model".into(),
        json!(fresh
            .and_then(|f| f.model.clone())
            .unwrap_or_else(|| alias.clone())),
    );
    if let Some(t) = fresh.and_then(|f| f.temperature) {
        telemetry.insert("temperature".into(), json!(t));
    }
    telemetry.insert("context_size".into(), json!(context_size));
    telemetry.insert("context_tokens".into(), json!(token_usage));
    telemetry.insert("ceiling".into(), json!(ceil));
    telemetry.insert("token_usage".into(), json!(token_usage));
    telemetry.insert(
        "tokens_free".into(),
        json!(ceil.map(|c| (c - token_usage).max(0))),
    );
    let u = &report.usage;
    telemetry.insert("prompt_tokens".into(), json!(u.prompt_tokens));
    telemetry.insert("cached_tokens".into(), json!(u.cached_tokens));
    telemetry.insert("completion_tokens".into(), json!(u.completion_tokens));
    telemetry.insert("reasoning_tokens".into(), json!(u.reasoning_tokens));
    telemetry.insert("total_tokens".into(), json!(u.total_tokens));
    telemetry.insert("cost".into(), json!(u.cost));
    telemetry.insert("context_distribution".into(), json!(report.distribution));
    let history: Vec<Value> = report
        .history
        .iter()
        .map(|h| {
            json!({
                "tool": h.tool, "state": h.state, "outcome": h.outcome, "path": h.path,
                "body": h.body, "turn": h.turn, "attributes": h.attributes,
            })
        })
        .collect();
    let unknowns: Vec<Value> = report
        .unknowns
        .iter()
        .map(|u| json!({ "path": u.path, "body": u.body }))
        .collect();
    let mut state = Map::new();
    state.insert("run".into(), json!(run.alias));
    state.insert("turn".into(), json!(turn));
    state.insert("status".into(), json!(status));
    if let Some(s) = report.summary {
        state.insert("summary".into(), json!(s));
    }
    state.insert("history".into(), Value::Array(history));
    state.insert("unknowns".into(), Value::Array(unknowns));
    state.insert("telemetry".into(), Value::Object(telemetry));
    Ok(Value::Object(state))
}

/// The `getRun` result.
pub async fn run_detail(engine: &Engine, run: &RunRow) -> Result<Value, StoreError> {
    let report: RunReport = engine
        .store
        .run(ReportRun {
            run_id: run.id,
            turn: run.next_turn - 1,
            token_divisor: engine.config.token_divisor,
        })
        .await?;
    let history: Vec<Value> = report
        .history
        .iter()
        .map(|h| {
            let attributes: Value = serde_json::from_str(&h.attributes).unwrap_or(Value::Null);
            json!({
                "tool": h.tool, "path": h.path, "body": h.body,
                "attributes": attributes, "turn": h.turn,
            })
        })
        .collect();
    let u = &report.usage;
    Ok(json!({
        "run": run.alias,
        "turn": run.next_turn - 1,
        "status": run.status,
        "model": run.model,
        "temperature": run.temperature,
        "persona": run.persona,
        "context_limit": run.context_limit,
        "context": {
            "telemetry": {
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.total_tokens,
                "cost": u.cost,
            },
            "reasoning": report.reasoning,
            "content": report.content,
            "history": history,
        },
    }))
}
