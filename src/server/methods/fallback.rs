//! Tool fallbacks (spec 03 §2.2): `known`, `unknown`, `think`, `sh`, `env`
//! and `ask_user` called by name. Each records the call as
//! `log://turn_N/{tool}/{path}` (N = the run's next turn, read, not
//! consumed) and then does what the tool does for the model, writing as the
//! model tier: the note tools resolve at once, the proposing ones (`sh`,
//! `env`, `ask_user`) leave a proposal the run's next loop announces.
//! Everything is checked before the first write, so a refused call
//! changes nothing.

use super::entries::{bad, resolve_run};
use crate::protocol::jsonrpc::{RpcError, METHOD_NOT_FOUND};
use crate::protocol::tools::ToolCallParams;
use crate::protocol::StatusOkResult;
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::paths::{is_invalid_target, log_path, normalize_path, scheme_of};
use crate::store::{
    AllocateLogPaths, EntryState, EntryWrite, ListEntries, LogError, RunRow, SetEntry, Writer,
};
use crate::tools::known::size_gate;
use serde_json::{Map, Value};

/// A validated call.
struct Call {
    tool: &'static str,
    run: RunRow,
    path: String,
    body: String,
    to: Option<String>,
    attributes: Option<Map<String, Value>>,
}

/// Checks the call in upstream's order: the tool exists, `path is
/// required`, then the run.
async fn accept(ctx: &CallCtx, tool: &'static str, raw: Value) -> Result<Call, RpcError> {
    let offered =
        ctx.app.engine.tools.get(tool).is_some() && (tool != "think" || ctx.app.config.think);
    if !offered {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method '{tool}' not found."),
        ));
    }
    let p: ToolCallParams = params(tool, raw)?;
    let path = p
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("path is required"))?;
    if is_invalid_target(&path) {
        return Err(bad(format!(
            "{tool}: path is too long or contains non-printing characters"
        )));
    }
    let run = resolve_run(ctx, p.run).await?;
    Ok(Call {
        tool,
        run,
        path,
        body: p.body.unwrap_or_default(),
        to: p.to,
        attributes: p.attributes,
    })
}

/// The entry a note tool writes: `path` in the tool's own scheme (a path
/// without one gets it). Another scheme is refused: the model tier must
/// not reach other schemes through a note tool.
fn note_path(tool: &str, path: &str) -> Result<String, RpcError> {
    match scheme_of(path) {
        None => Ok(normalize_path(&format!("{tool}://{path}"))),
        Some(s) if s.eq_ignore_ascii_case(tool) => Ok(normalize_path(path)),
        Some(_) => Err(bad(format!("{tool}: path must be a {tool}:// path"))),
    }
}

/// Writes the call's resolved log entry, attributes `{...attributes, path, to}`
/// (the store adds `action`).
async fn record(ctx: &CallCtx, call: &Call) -> Result<(), RpcError> {
    let store = &ctx.app.store;
    let turn = call.run.next_turn;
    let path = store
        .run(AllocateLogPaths {
            run_id: call.run.id,
            bases: vec![log_path(turn, call.tool, &call.path)],
        })
        .await
        .map_err(store_error)?
        .pop()
        .ok_or_else(|| RpcError::internal("no log path was allocated"))?;
    let mut attributes = call.attributes.clone().unwrap_or_default();
    attributes.insert("path".into(), Value::String(call.path.clone()));
    if let Some(to) = &call.to {
        attributes.insert("to".into(), Value::String(to.clone()));
    }
    store
        .run(SetEntry(EntryWrite {
            body: Some(call.body.clone()),
            state: Some(EntryState::Resolved),
            attributes: Some(Value::Object(attributes)),
            turn,
            ..EntryWrite::new(call.run.id, path, Writer::Model)
        }))
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Writes a note entry as the model: resolved, the scheme's default
/// visibility, the caller's attributes (kept when none are given).
async fn write_note(ctx: &CallCtx, call: &Call, path: String) -> Result<(), RpcError> {
    ctx.app
        .store
        .run(SetEntry(EntryWrite {
            body: Some(call.body.clone()),
            state: Some(EntryState::Resolved),
            attributes: call.attributes.clone().map(Value::Object),
            turn: call.run.next_turn,
            ..EntryWrite::new(call.run.id, path, Writer::Model)
        }))
        .await
        .map_err(store_error)?;
    Ok(())
}

fn ok() -> Result<Reply, RpcError> {
    reply(&StatusOkResult::default())
}

/// `known`: a known:// entry, through the one size gate; an empty body
/// only records the call.
pub async fn known(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let call = accept(&ctx, "known", raw).await?;
    let target = note_path("known", &call.path)?;
    if let Some(over) = size_gate(&ctx.app.config, &target, &call.body) {
        return Err(bad(format!("known: {}", over.message())));
    }
    record(&ctx, &call).await?;
    if !call.body.is_empty() {
        write_note(&ctx, &call, target).await?;
    }
    ok()
}

/// `unknown`: an unknown:// entry, unless the run already has an unknown
/// with this exact body; then an error entry says it was deduplicated.
pub async fn unknown(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let call = accept(&ctx, "unknown", raw).await?;
    let target = note_path("unknown", &call.path)?;
    record(&ctx, &call).await?;
    if call.body.is_empty() {
        return ok();
    }
    let store = &ctx.app.store;
    let duplicate = store
        .run(ListEntries(call.run.id))
        .await
        .map_err(store_error)?
        .iter()
        .any(|e| e.scheme.as_deref() == Some("unknown") && e.body == call.body);
    if duplicate {
        let shown: String = call.body.chars().take(60).collect();
        store
            .run(LogError {
                run_id: call.run.id,
                turn: call.run.next_turn,
                loop_id: None,
                message: format!("Unknown deduped: \"{shown}\""),
                status: 400,
                attributes: Map::new(),
            })
            .await
            .map_err(store_error)?;
        return ok();
    }
    write_note(&ctx, &call, target).await?;
    ok()
}

/// `think`: only the record; a thought is kept nowhere else.
pub async fn think(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let call = accept(&ctx, "think", raw).await?;
    record(&ctx, &call).await?;
    ok()
}

/// Writes the call's log entry as a proposal, as the tool's handler would.
async fn propose(
    ctx: &CallCtx,
    call: &Call,
    body: String,
    attributes: Map<String, Value>,
) -> Result<(), RpcError> {
    let store = &ctx.app.store;
    let turn = call.run.next_turn;
    let path = store
        .run(AllocateLogPaths {
            run_id: call.run.id,
            bases: vec![log_path(turn, call.tool, &call.path)],
        })
        .await
        .map_err(store_error)?
        .pop()
        .ok_or_else(|| RpcError::internal("no log path was allocated"))?;
    store
        .run(SetEntry(EntryWrite {
            body: Some(body),
            state: Some(EntryState::Proposed),
            attributes: Some(Value::Object(attributes)),
            turn,
            ..EntryWrite::new(call.run.id, path, Writer::Model)
        }))
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The caller's attributes plus `path` (and `to`), as every fallback records.
fn call_attributes(call: &Call) -> Map<String, Value> {
    let mut attributes = call.attributes.clone().unwrap_or_default();
    attributes.insert("path".into(), Value::String(call.path.clone()));
    if let Some(to) = &call.to {
        attributes.insert("to".into(), Value::String(to.clone()));
    }
    attributes
}

/// A string attribute the caller gave, if not blank.
fn given(attributes: &Map<String, Value>, key: &str) -> Option<String> {
    attributes
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// `sh`/`env`: the command is `attributes.command`, else `path`.
async fn command(ctx: CallCtx, tool: &'static str, raw: Value) -> Result<Reply, RpcError> {
    let call = accept(&ctx, tool, raw).await?;
    let mut attributes = call_attributes(&call);
    let command = given(&attributes, "command").unwrap_or_else(|| call.path.clone());
    attributes.insert("command".into(), Value::String(command.clone()));
    attributes.insert("summary".into(), Value::String(command));
    propose(&ctx, &call, String::new(), attributes).await?;
    ok()
}

/// `sh`: a command with side effects, proposed.
pub async fn sh(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    command(ctx, "sh", raw).await
}

/// `env`: a command that only inspects, proposed.
pub async fn env(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    command(ctx, "env", raw).await
}

/// `ask_user`: the question is `attributes.question`, else `path`; the
/// body lists the choices.
pub async fn ask_user(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let call = accept(&ctx, "ask_user", raw).await?;
    let mut attributes = call_attributes(&call);
    let question = given(&attributes, "question").unwrap_or_else(|| call.path.clone());
    let options: Vec<Value> = crate::tools::ask_user::options(&call.body)
        .into_iter()
        .map(Value::String)
        .collect();
    attributes.insert("question".into(), Value::String(question.clone()));
    attributes.insert("options".into(), Value::Array(options));
    propose(&ctx, &call, question, attributes).await?;
    ok()
}
