//! Entry RPCs, written with the client writer tier: `set` (beyond
//! `run://`), `get`, `rm`, `cp`, `mv`, `update`, `getEntries`, and the
//! project's file constraints. Runs are addressed within the caller's
//! project only.

use crate::files::confine;
use crate::protocol::entries::{
    ConstraintInfo, CopyParams, EntryInfo, EntrySetParams, EntrySetResult, FileConstraintParams,
    FileDropParams, FilePatternResult, GetEntriesParams, GetParams, ResolveResult, RmParams,
    SetResult, UpdateParams, UpdateResult, VetoResult,
};
use crate::protocol::jsonrpc::RpcError;
use crate::protocol::OkResult;
use crate::run::actor::{Resolution, Resolve};
use crate::run::RunServiceError;
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::{
    AppendEntry, ChangeVisibility, Constraint, CopyEntry, DropConstraint, EntryListItem, EntryPage,
    EntryState, EntryWrite, GetEntry, GetRun, ListConstraints, PagedEntries, QueryEntries,
    RemoveEntries, RunRow, SetByPattern, SetConstraint, SetEntry, WriteUpdate, Writer, CONSTRAINTS,
    RESOLUTION_ATTR,
};
use serde_json::Value;
use std::path::Path;

impl From<EntryListItem> for EntryInfo {
    fn from(e: EntryListItem) -> Self {
        EntryInfo {
            id: e.id,
            path: e.path,
            scheme: e.scheme,
            state: e.state,
            outcome: e.outcome,
            visibility: e.visibility,
            tokens: e.tokens,
            attributes: e.attributes,
            body: e.body,
        }
    }
}

impl From<Constraint> for ConstraintInfo {
    fn from(c: Constraint) -> Self {
        ConstraintInfo {
            pattern: c.pattern,
            visibility: c.visibility,
        }
    }
}

pub(super) fn bad(message: impl Into<String>) -> RpcError {
    RpcError::invalid_params(message)
}

/// A state named on the wire; an unknown name is refused before anything is written.
fn entry_state(state: Option<String>) -> Result<Option<EntryState>, RpcError> {
    state
        .map(|s| s.parse::<EntryState>().map_err(|e| bad(e.to_string())))
        .transpose()
}

/// The caller's run by alias: `run is required` / `Run 'x' not found.`
pub(super) async fn resolve_run(ctx: &CallCtx, run: Option<String>) -> Result<RunRow, RpcError> {
    find_run(ctx, run, |alias| format!("Run '{alias}' not found.")).await
}

/// The caller's run by alias, with the method's own not-found wording
/// (upstream words it differently per method).
pub(super) async fn find_run(
    ctx: &CallCtx,
    run: Option<String>,
    not_found: fn(&str) -> String,
) -> Result<RunRow, RpcError> {
    let alias = run
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("run is required"))?;
    let project_id = ctx.project()?.project_id;
    ctx.app
        .store
        .run(GetRun {
            alias: alias.clone(),
            project_id: Some(project_id),
        })
        .await
        .map_err(store_error)?
        .ok_or_else(|| bad(not_found(&alias)))
}

fn ok() -> Result<Reply, RpcError> {
    reply(&OkResult::default())
}

/// `set` on anything but `run://` (routed here by the runs handler).
pub async fn set_entry(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: EntrySetParams = params("set", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let store = &ctx.app.store;
    let bulk = p.pattern.unwrap_or(false) || p.body_filter.is_some() || p.append.unwrap_or(false);
    if let (Some(state), false) = (p.state.as_deref(), bulk) {
        if let Some(action) = resolution_of(state) {
            if let Some(found) = proposal(&ctx, &run, &p.path).await? {
                return resolve_proposal(&ctx, &run, found, action, p.body).await;
            }
        }
    }
    if p.pattern.unwrap_or(false) || p.body_filter.is_some() {
        let matched = store
            .run(SetByPattern {
                run_id: run.id,
                pattern: p.path,
                body_filter: p.body_filter,
                body: p.body.filter(|_| !p.append.unwrap_or(false)),
                visibility: p.visibility,
                writer: Writer::Client,
            })
            .await
            .map_err(store_error)?;
        return reply(&EntrySetResult {
            ok: true,
            matched: Some(matched.len()),
        });
    }
    if p.append.unwrap_or(false) {
        let chunk = p.body.ok_or_else(|| bad("set: append needs a body"))?;
        store
            .run(AppendEntry {
                run_id: run.id,
                path: p.path,
                chunk,
                writer: Writer::Client,
            })
            .await
            .map_err(store_error)?;
        return reply(&EntrySetResult {
            ok: true,
            matched: None,
        });
    }
    store
        .run(SetEntry(EntryWrite {
            body: p.body,
            state: entry_state(p.state)?,
            outcome: p.outcome,
            visibility: p.visibility,
            attributes: p.attributes.map(Value::Object),
            turn: run.next_turn - 1,
            ..EntryWrite::new(run.id, p.path, Writer::Client)
        }))
        .await
        .map_err(store_error)?;
    reply(&EntrySetResult {
        ok: true,
        matched: None,
    })
}

/// The decision a `set {state}` on a proposal stands for (spec 03 §2.1).
fn resolution_of(state: &str) -> Option<Resolution> {
    match state {
        "resolved" => Some(Resolution::Accept),
        "cancelled" => Some(Resolution::Reject),
        "failed" => Some(Resolution::Error),
        _ => None,
    }
}

/// The entry at `path` when it is, or was, a proposal: pending ones are
/// resolved, settled ones refused; anything else is an ordinary write.
async fn proposal(ctx: &CallCtx, run: &RunRow, path: &str) -> Result<Option<String>, RpcError> {
    let row = ctx
        .app
        .store
        .run(GetEntry {
            run_id: run.id,
            path: path.to_string(),
        })
        .await
        .map_err(store_error)?;
    let Some(row) = row else { return Ok(None) };
    let was_proposal = serde_json::from_str::<Value>(&row.attributes)
        .ok()
        .is_some_and(|a| a.get(RESOLUTION_ATTR).is_some());
    Ok((row.state == EntryState::Proposed || was_proposal).then_some(row.path))
}

async fn resolve_proposal(
    ctx: &CallCtx,
    run: &RunRow,
    path: String,
    action: Resolution,
    output: Option<String>,
) -> Result<Reply, RpcError> {
    let project_id = ctx.project()?.project_id;
    let settled = ctx
        .app
        .runs
        .resolve(
            project_id,
            &run.alias,
            Resolve {
                path,
                action,
                output,
                reply: None,
            },
        )
        .await
        .map_err(|e| match e {
            RunServiceError::Store(e) => store_error(e),
            e if e.is_caller_error() => bad(e.to_string()),
            e => RpcError::internal(e.to_string()),
        })?;
    if settled.vetoed {
        return reply(&SetResult::Vetoed(VetoResult {
            ok: true,
            state: settled.state,
            outcome: settled.outcome.unwrap_or_default(),
        }));
    }
    reply(&SetResult::Resolved(ResolveResult {
        run: run.alias.clone(),
        status: settled.status.code(),
    }))
}

pub async fn get(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetParams = params("get", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let path = p
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("path is required"))?;
    let visibility = p.visibility.unwrap_or_else(|| "visible".into());
    // Promotion stamps the run's current turn without consuming one
    // (upstream burns a turn number per call).
    let promote_turn = (visibility == "visible").then_some(run.next_turn.max(1) - 1);
    ctx.app
        .store
        .run(ChangeVisibility {
            run_id: run.id,
            pattern: path,
            body_filter: p.body_filter,
            visibility,
            promote_turn,
        })
        .await
        .map_err(store_error)?;
    ok()
}

pub async fn rm(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: RmParams = params("rm", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let path = p
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("path is required"))?;
    ctx.app
        .store
        .run(RemoveEntries {
            run_id: run.id,
            path,
            body_filter: p.body_filter,
            writer: Writer::Client,
        })
        .await
        .map_err(store_error)?;
    ok()
}

async fn copy(
    ctx: CallCtx,
    raw: Value,
    method: &str,
    remove_source: bool,
) -> Result<Reply, RpcError> {
    let p: CopyParams = params(method, raw)?;
    // `mv run://a run://b` renames the run (spec 03 §2.2; 2.0.0 leaves the
    // alias as it was).
    if remove_source {
        let from = p
            .from
            .as_deref()
            .map(crate::store::paths::normalize_path)
            .unwrap_or_default();
        let to =
            p.to.as_deref()
                .map(crate::store::paths::normalize_path)
                .unwrap_or_default();
        if let (Some(a), Some(b)) = (from.strip_prefix("run://"), to.strip_prefix("run://")) {
            super::runs::rename_run(&ctx, a, b).await?;
            return ok();
        }
    }
    let run = resolve_run(&ctx, p.run).await?;
    let from = p
        .from
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad("from is required"))?;
    let to =
        p.to.filter(|t| !t.is_empty())
            .ok_or_else(|| bad("to is required"))?;
    ctx.app
        .store
        .run(CopyEntry {
            run_id: run.id,
            from,
            to,
            visibility: p.visibility,
            turn: run.next_turn - 1,
            loop_id: None,
            writer: Writer::Client,
            remove_source,
        })
        .await
        .map_err(store_error)?;
    ok()
}

pub async fn cp(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    copy(ctx, raw, "cp", false).await
}

pub async fn mv(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    copy(ctx, raw, "mv", true).await
}

/// A client's update record, written by the system on its behalf (in
/// upstream the client tier may not write `log://`, so this always fails).
pub async fn update(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: UpdateParams = params("update", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let body = p
        .body
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("body is required"))?;
    let path = ctx
        .app
        .store
        .run(WriteUpdate {
            run_id: run.id,
            turn: (run.next_turn - 1).max(0),
            loop_id: None,
            body,
            status: p.status.unwrap_or(102),
            attributes: p.attributes.unwrap_or_default(),
            writer: Writer::System,
        })
        .await
        .map_err(store_error)?;
    reply(&UpdateResult { ok: true, path })
}

pub async fn get_entries(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetEntriesParams = params("getEntries", raw)?;
    if let Some(limit) = p.limit.filter(|l| *l < 1) {
        return Err(bad(format!(
            "getEntries: limit must be a positive integer (got {limit})"
        )));
    }
    if let Some(since) = p.since.filter(|s| *s < 0) {
        return Err(bad(format!(
            "getEntries: since must be an entry id of 0 or more (got {since})"
        )));
    }
    let run = resolve_run(&ctx, p.run).await?;
    // Bodies include what the run's streams have received so far.
    crate::stream::flush_run(&ctx.app.engine, run.id).await;
    let query = QueryEntries {
        run_id: run.id,
        pattern: p.pattern.unwrap_or_else(|| "*".into()),
        body_filter: p.body_filter,
        scheme: p.scheme,
        state: entry_state(p.state)?,
        visibility: p.visibility,
        token_divisor: ctx.app.config.token_divisor,
    };
    let page = EntryPage {
        with_body: p.with_body.unwrap_or(false),
        limit: p.limit,
        since: p.since,
    };
    let rows = ctx
        .app
        .store
        .run(PagedEntries { query, page })
        .await
        .map_err(store_error)?;
    let rows: Vec<EntryInfo> = rows.into_iter().map(EntryInfo::from).collect();
    reply(&rows)
}

fn constraint_pattern(
    ctx: &CallCtx,
    method: &str,
    pattern: Option<String>,
) -> Result<String, RpcError> {
    let pattern = pattern
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| bad(format!("{method}: pattern is required")))?;
    let root = &ctx.project()?.project_root;
    confine(Path::new(root), &pattern).map_err(|e| bad(format!("{method}: {e}")))
}

pub async fn file_constraint(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: FileConstraintParams = params("file/constraint", raw)?;
    let pattern = constraint_pattern(&ctx, "file/constraint", p.pattern)?;
    let visibility = p
        .visibility
        .filter(|v| CONSTRAINTS.contains(&v.as_str()))
        .ok_or_else(|| {
            bad("file/constraint: visibility must be one of active, readonly, ignore")
        })?;
    let project_id = ctx.project()?.project_id;
    ctx.app
        .store
        .run(SetConstraint {
            project_id,
            pattern: pattern.clone(),
            visibility,
        })
        .await
        .map_err(store_error)?;
    reply(&FilePatternResult { ok: true, pattern })
}

pub async fn file_drop(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: FileDropParams = params("file/drop", raw)?;
    let pattern = constraint_pattern(&ctx, "file/drop", p.pattern)?;
    let project_id = ctx.project()?.project_id;
    ctx.app
        .store
        .run(DropConstraint {
            project_id,
            pattern: pattern.clone(),
        })
        .await
        .map_err(store_error)?;
    reply(&FilePatternResult { ok: true, pattern })
}

pub async fn get_constraints(ctx: CallCtx, _: Value) -> Result<Reply, RpcError> {
    let project_id = ctx.project()?.project_id;
    let rows = ctx
        .app
        .store
        .run(ListConstraints(project_id))
        .await
        .map_err(store_error)?;
    let rows: Vec<ConstraintInfo> = rows.into_iter().map(ConstraintInfo::from).collect();
    reply(&rows)
}
