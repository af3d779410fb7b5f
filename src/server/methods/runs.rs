//! Run lifecycle over RPC: `set` on `run://`, the older `ask`/`act`
//! verbs, `getRuns` and `getRun`. These translate JSON-RPC into run
//! service calls; the lifecycle itself lives in `run::service`.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::runs::{
    GetRunParams, GetRunsParams, LegacyRunParams, RunRenameParams, RunSetParams, RunSetResult,
    RunSummary,
};
use crate::run::report::run_detail;
use crate::run::service::{ConfigureRun, ContinueRun, ForkRun, RunSettings, StartRun};
use crate::run::{LoopFlags, RunServiceError};
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::paths::{normalize_path, scheme_of};
use crate::store::{GetRun, ListRuns};
use crate::tools::Mode;
use serde_json::{Map, Value};

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
    /// Continue with a new loop even while one runs (no steering).
    queue: bool,
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
        queue: typed(&attrs, "queue")?.unwrap_or(false),
        flags: LoopFlags {
            no_repo: typed(&attrs, "noRepo")?,
            no_interaction: typed(&attrs, "noInteraction")?,
            no_web: typed(&attrs, "noWeb")?,
            no_proposals: typed(&attrs, "noProposals")?,
            temperature: None,
            yolo: typed(&attrs, "yolo")?,
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
        queue: false,
        flags: LoopFlags {
            no_repo: p.no_repo,
            no_interaction: p.no_interaction,
            no_web: p.no_web,
            no_proposals: p.no_proposals,
            temperature: None,
            yolo: None,
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

/// Maps run-service failures onto JSON-RPC errors.
fn service_error(e: RunServiceError) -> RpcError {
    match e {
        RunServiceError::BadSetting { field, problem } => {
            bad(format!("set run://: attributes.{field} {problem}"))
        }
        RunServiceError::Store(e) => store_error(e),
        e if e.is_caller_error() => bad(e.to_string()),
        e => RpcError::internal(e.to_string()),
    }
}

fn ok(alias: &str) -> Result<Reply, RpcError> {
    reply(&RunSetResult {
        ok: true,
        alias: alias.to_string(),
    })
}

async fn run_lifecycle(ctx: CallCtx, req: RunRequest) -> Result<Reply, RpcError> {
    let project_id = ctx.project()?.project_id;
    let runs = &ctx.app.runs;
    let settings = RunSettings {
        temperature: req.temperature,
        persona: req.persona.clone(),
        context_limit: req.context_limit,
    };
    let existing = match &req.alias {
        Some(alias) => runs.find(project_id, alias).await.map_err(service_error)?,
        None => None,
    };
    let Some(run) = existing else {
        let model = req.model.clone().filter(|m| !m.is_empty());
        let Some(model) = model else {
            return Err(bad(if req.alias.is_none() {
                "set run://: attributes.model is required when alias is omitted"
            } else {
                "set run://: attributes.model is required for a new run"
            }));
        };
        let mode = parse_mode(&req.mode, "")?;
        let run = runs
            .start_run(StartRun {
                project_id,
                alias: req.alias,
                model,
                mode,
                prompt: req.prompt.unwrap_or_default(),
                settings,
                flags: req.flags,
            })
            .await
            .map_err(service_error)?;
        return ok(&run.alias);
    };
    if let Some(state) = &req.state {
        // A run's status (and its run:// entry) is the server's to set;
        // the one state a client may ask for is "cancelled".
        if state != "cancelled" {
            return Err(bad(format!(
                "set run://: state \"{state}\" cannot be set on a run; use \"cancelled\" to cancel it"
            )));
        }
        let reason = req
            .outcome
            .clone()
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "cancelled by a client".into());
        let cancelled = runs
            .cancel(project_id, &run.alias, &reason)
            .await
            .map_err(service_error)?;
        return ok(&cancelled.alias);
    }
    if req.fork {
        let mode = parse_mode(&req.mode, " on fork")?;
        let child = runs
            .fork(ForkRun {
                project_id,
                parent: run.alias.clone(),
                model: req.model,
                mode,
                prompt: req.prompt.unwrap_or_default(),
                settings,
                flags: req.flags,
            })
            .await
            .map_err(service_error)?;
        return ok(&child.alias);
    }
    let Some(prompt) = req.prompt.filter(|p| !p.is_empty()) else {
        // Attributes and no body: the run's stored settings change for its
        // next loops (spec 03 §2.2's `set run://x {attributes}`, a no-op in
        // 2.0.0).
        let flags = &req.flags;
        let any_flag = flags.no_repo.is_some()
            || flags.no_interaction.is_some()
            || flags.no_web.is_some()
            || flags.no_proposals.is_some()
            || flags.yolo.is_some();
        let any = any_flag
            || req.model.is_some()
            || req.temperature.is_some()
            || req.persona.is_some()
            || req.context_limit.is_some();
        if any {
            runs.configure(ConfigureRun {
                project_id,
                alias: run.alias.clone(),
                model: req.model.filter(|m| !m.is_empty()),
                temperature: req.temperature,
                persona: req.persona,
                context_limit: req.context_limit,
                flags: any_flag.then(|| req.flags.clone()),
            })
            .await
            .map_err(service_error)?;
        }
        return ok(&run.alias);
    };
    {
        let mode = parse_mode(&req.mode, " on inject")?;
        let flags = LoopFlags {
            temperature: req.temperature,
            ..req.flags
        };
        runs.continue_run(ContinueRun {
            project_id,
            alias: run.alias.clone(),
            mode,
            prompt,
            flags,
            queue: req.queue,
        })
        .await
        .map_err(service_error)?;
    }
    ok(&run.alias)
}

/// `run/rename {run, name}`.
pub async fn rename(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: RunRenameParams = params("run/rename", raw)?;
    let run = p
        .run
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("run is required"))?;
    let name = p
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name is required"))?;
    let alias = rename_run(&ctx, &run, &name).await?;
    ok(&alias)
}

/// Renames a run of the caller's project (`run/rename`, `mv run://a run://b`).
/// Answers the new alias.
pub async fn rename_run(ctx: &CallCtx, run: &str, to: &str) -> Result<String, RpcError> {
    let project_id = ctx.project()?.project_id;
    let renamed = ctx
        .app
        .runs
        .rename(project_id, run, to)
        .await
        .map_err(service_error)?;
    Ok(renamed.alias)
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
    let rows: Vec<RunSummary> = rows.into_iter().map(RunSummary::from).collect();
    reply(&rows)
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
