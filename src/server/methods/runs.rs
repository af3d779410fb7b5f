//! Run lifecycle over RPC: `set` on `run://`, the older `ask`/`act`
//! verbs, `getRuns` and `getRun`.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::runs::{GetRunParams, GetRunsParams, LegacyRunParams, RunSetParams};
use crate::run::report::run_detail;
use crate::run::turn::publish_state;
use crate::run::{Abort, Enqueue, LoopFlags};
use crate::server::hub::{EnsureRunActor, RunFor};
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::paths::{normalize_path, scheme_of};
use crate::store::{
    AbortRun, CreateRun, EntryWrite, GetModel, GetRun, ListRuns, RunRow, SetEntry, Writer,
};
use crate::tools::Mode;
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// How a client asked for a run, whichever verb it used.
struct RunRequest {
    alias: Option<String>,
    prompt: Option<String>,
    state: Option<String>,
    outcome: Option<String>,
    model: Option<String>,
    mode: Option<Value>,
    temperature: Option<f64>,
    persona: Option<String>,
    context_limit: Option<i64>,
    fork: bool,
    flags: LoopFlags,
}

fn bad(message: impl Into<String>) -> RpcError {
    RpcError::invalid_params(message)
}

fn typed<T: serde::de::DeserializeOwned>(
    attrs: &Map<String, Value>,
    key: &str,
) -> Result<Option<T>, RpcError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| bad(format!("set run://: attributes.{key}: {e}"))),
    }
}

pub async fn set(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let is_entry = raw
        .get("path")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty() && scheme_of(&normalize_path(p)) != Some("run"));
    if is_entry {
        return super::entries::set_entry(ctx, raw).await;
    }
    let p: RunSetParams = params("set", raw)?;
    let path = p
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("set: path is required"))?;
    let path = normalize_path(&path);
    let Some(alias) = path.strip_prefix("run://") else {
        return Err(bad("set: path is required"));
    };
    let attrs = p.attributes.unwrap_or_default();
    let request = RunRequest {
        alias: Some(alias.to_string()).filter(|a| !a.is_empty()),
        prompt: p.body,
        state: p.state,
        outcome: p.outcome,
        model: typed(&attrs, "model")?,
        mode: attrs.get("mode").cloned(),
        temperature: typed(&attrs, "temperature")?,
        persona: typed(&attrs, "persona")?,
        context_limit: typed(&attrs, "contextLimit")?,
        fork: typed(&attrs, "fork")?.unwrap_or(false),
        flags: LoopFlags {
            no_repo: typed(&attrs, "noRepo")?,
            no_interaction: typed(&attrs, "noInteraction")?,
            no_web: typed(&attrs, "noWeb")?,
            no_proposals: typed(&attrs, "noProposals")?,
            temperature: None,
        },
    };
    run_lifecycle(ctx, request).await
}

async fn legacy(ctx: CallCtx, raw: Value, mode: Mode) -> Result<Reply, RpcError> {
    let p: LegacyRunParams = params(mode.as_str(), raw)?;
    let request = RunRequest {
        alias: p.run.filter(|r| !r.is_empty()),
        prompt: Some(p.prompt),
        state: None,
        outcome: None,
        model: p.model,
        mode: Some(Value::String(mode.as_str().into())),
        temperature: p.temperature,
        persona: p.persona,
        context_limit: p.context_limit,
        fork: p.fork.unwrap_or(false),
        flags: LoopFlags {
            no_repo: p.no_repo,
            no_interaction: p.no_interaction,
            no_web: p.no_web,
            no_proposals: p.no_proposals,
            temperature: None,
        },
    };
    run_lifecycle(ctx, request).await
}

pub async fn ask(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    legacy(ctx, raw, Mode::Ask).await
}

pub async fn act(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    legacy(ctx, raw, Mode::Act).await
}

fn parse_mode(mode: &Option<Value>, when: &str) -> Result<Mode, RpcError> {
    mode.as_ref()
        .and_then(Value::as_str)
        .and_then(Mode::parse)
        .ok_or_else(|| {
            let got = mode.as_ref().map_or("undefined".to_string(), Value::to_string);
            bad(format!(
                "set run://: attributes.mode is required{when} and must be \"ask\" or \"act\" (got {got})"
            ))
        })
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn run_lifecycle(ctx: CallCtx, req: RunRequest) -> Result<Reply, RpcError> {
    let project_id = ctx.project()?.project_id;
    let store = ctx.app.store.clone();
    let alias = match &req.alias {
        Some(a) => a.clone(),
        None => {
            let model = req
                .model
                .as_deref()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    bad("set run://: attributes.model is required when alias is omitted")
                })?;
            format!("{model}_{}", now_millis())
        }
    };
    let existing = store
        .run(GetRun {
            alias: alias.clone(),
            project_id: Some(project_id),
        })
        .await
        .map_err(store_error)?;
    let Some(run) = existing else {
        return start_run(&ctx, project_id, alias, req).await;
    };
    if let Some(state) = &req.state {
        if state == "cancelled" {
            cancel(&ctx, &run).await?;
        }
        store
            .run(SetEntry(EntryWrite {
                state: Some(state.clone()),
                outcome: req.outcome.clone(),
                ..EntryWrite::new(run.id, format!("run://{}", run.alias), Writer::System)
            }))
            .await
            .map_err(store_error)?;
        return Ok(json!({ "ok": true, "alias": run.alias }).into());
    }
    if req.fork {
        let mode = parse_mode(&req.mode, " on fork")?;
        let model = req
            .model
            .clone()
            .or_else(|| run.model.clone())
            .unwrap_or_default();
        let child = format!("{model}_{}", now_millis());
        let fork = RunRequest {
            model: Some(model),
            alias: Some(child.clone()),
            ..req
        };
        return create_run(&ctx, project_id, child, fork, Some(&run), mode).await;
    }
    if let Some(prompt) = req.prompt.as_ref().filter(|p| !p.is_empty()) {
        let mode = parse_mode(&req.mode, " on inject")?;
        enqueue(&ctx, &run, mode, prompt.clone(), req.flags).await?;
    }
    Ok(json!({ "ok": true, "alias": run.alias }).into())
}

async fn start_run(
    ctx: &CallCtx,
    project_id: i64,
    alias: String,
    req: RunRequest,
) -> Result<Reply, RpcError> {
    if req.model.as_deref().is_none_or(str::is_empty) {
        return Err(bad(
            "set run://: attributes.model is required for a new run",
        ));
    }
    let mode = parse_mode(&req.mode, "")?;
    create_run(ctx, project_id, alias, req, None, mode).await
}

/// Validates, creates (or forks) a run and queues its first loop.
async fn create_run(
    ctx: &CallCtx,
    project_id: i64,
    alias: String,
    req: RunRequest,
    parent: Option<&RunRow>,
    mode: Mode,
) -> Result<Reply, RpcError> {
    let model = req.model.clone().unwrap_or_default();
    // Validate before anything exists, so a bad request never leaves a
    // run stuck at 102 (upstream's defect).
    let row = ctx
        .app
        .store
        .run(GetModel(model.clone()))
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            bad(format!(
                "Unknown model alias '{model}'. Define RUMMY_MODEL_{model} in your environment or call addModel."
            ))
        })?;
    ctx.app
        .engine
        .providers
        .resolve(&row.actual)
        .map_err(|e| bad(e.to_string()))?;
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(bad(
                "set run://: attributes.temperature must be between 0 and 2",
            ));
        }
    }
    if let Some(l) = req.context_limit {
        if l < 1024 {
            return Err(bad(
                "set run://: attributes.contextLimit must be at least 1024",
            ));
        }
    }
    let prompt = req.prompt.unwrap_or_default();
    let mut attempt = alias;
    let mut run = None;
    for n in 0..5 {
        let created = ctx
            .app
            .store
            .run(CreateRun {
                project_id,
                parent_run_id: parent.map(|p| p.id),
                alias: attempt.clone(),
                model: model.clone(),
                temperature: req.temperature.or(parent.and_then(|p| p.temperature)),
                persona: req
                    .persona
                    .clone()
                    .or(parent.and_then(|p| p.persona.clone())),
                context_limit: req.context_limit.or(parent.and_then(|p| p.context_limit)),
                prompt: prompt.clone(),
            })
            .await;
        match created {
            Ok(r) => {
                run = Some(r);
                break;
            }
            // A generated alias may collide within one millisecond.
            Err(crate::store::StoreError::Invalid(_))
                if (req.alias.is_none() || parent.is_some()) && n < 4 =>
            {
                attempt = format!("{model}_{}", now_millis() + n as u128 + 1);
            }
            Err(e) => return Err(store_error(e)),
        }
    }
    let run = run.ok_or_else(|| RpcError::internal("could not allocate a run alias"))?;
    enqueue(ctx, &run, mode, prompt, req.flags).await?;
    Ok(json!({ "ok": true, "alias": run.alias }).into())
}

async fn enqueue(
    ctx: &CallCtx,
    run: &RunRow,
    mode: Mode,
    prompt: String,
    flags: LoopFlags,
) -> Result<(), RpcError> {
    let actor = ctx
        .app
        .hub
        .send(EnsureRunActor {
            run_id: run.id,
            alias: run.alias.clone(),
            engine: ctx.app.engine.clone(),
        })
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    actor
        .send(Enqueue {
            mode,
            prompt,
            model: run.model.clone(),
            flags,
        })
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .map_err(store_error)
}

/// Cancels a run from any client of its project.
async fn cancel(ctx: &CallCtx, run: &RunRow) -> Result<(), RpcError> {
    // Whether anything is in flight is decided by the store, not by the
    // status read earlier: a loop queued a moment ago must be cancelled too.
    let actor = ctx
        .app
        .hub
        .send(RunFor {
            alias: run.alias.clone(),
        })
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let reason = "cancelled by a client".to_string();
    match actor {
        Some(actor) => actor
            .send(Abort { reason })
            .await
            .map_err(|e| RpcError::internal(e.to_string()))?
            .map_err(store_error),
        None => {
            let aborted = ctx
                .app
                .store
                .run(AbortRun {
                    run_id: run.id,
                    reason,
                })
                .await
                .map_err(store_error)?;
            if let Some(run) = aborted {
                publish_state(&ctx.app.engine, run.id, run.next_turn - 1, 499, None).await;
            }
            Ok(())
        }
    }
}

pub async fn get_runs(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetRunsParams = params("getRuns", raw)?;
    let project_id = ctx.project()?.project_id;
    let rows = ctx
        .app
        .store
        .run(ListRuns {
            project_id,
            limit: p.limit,
            offset: p.offset,
        })
        .await
        .map_err(store_error)?;
    Ok(json!(rows).into())
}

pub async fn get_run(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetRunParams = params("getRun", raw).map_err(|_| bad("run is required"))?;
    let project_id = ctx.project()?.project_id;
    let run = ctx
        .app
        .store
        .run(GetRun {
            alias: p.run.clone(),
            project_id: Some(project_id),
        })
        .await
        .map_err(store_error)?
        .ok_or_else(|| bad(format!("Run '{}' not found.", p.run)))?;
    let detail = run_detail(&ctx.app.engine, &run)
        .await
        .map_err(store_error)?;
    reply(&detail)
}
