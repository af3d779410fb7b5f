//! `<set>` on a project file: nothing touches the disk here. A write (new
//! file or full rewrite) becomes a proposal at the command's log path; an
//! edit form is applied to the file as it is on disk and its result is
//! proposed at `set://{file}` (spec 01 §7), the log entry showing the edit.
//! Accepting either writes the file (`run::proposals`).

use super::{edit_merge, merge_block, summary_attr};
use crate::files;
use crate::hedberg::{self, Detected};
use crate::parse::Command;
use crate::store::patterns::is_pattern;
use crate::store::{EntryState, EntryWrite, GetRunById, ProjectRoot, SetEntry, Writer};
use crate::tokens::count_tokens;
use crate::tools::{ToolError, TurnCtx};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

async fn fail(
    ctx: &TurnCtx,
    log_path: &str,
    outcome: &str,
    path: &str,
    error: String,
) -> Result<(), ToolError> {
    ctx.write_log(
        log_path,
        "",
        EntryState::Failed,
        Some(outcome.into()),
        None,
        json!({ "path": path, "error": error }),
    )
    .await?;
    Ok(())
}

async fn project_root(ctx: &TurnCtx) -> Result<Option<PathBuf>, ToolError> {
    let run = ctx.store.run(GetRunById(ctx.run_id)).await?;
    Ok(ctx
        .store
        .run(ProjectRoot(run.project_id))
        .await?
        .map(PathBuf::from))
}

/// The change as the attributes every file proposal carries.
fn change_attrs(ctx: &TurnCtx, path: &str, old: &str, new: &str) -> Map<String, Value> {
    let divisor = ctx.config.token_divisor;
    let mut attributes = Map::new();
    attributes.insert("path".into(), json!(path));
    attributes.insert("patch".into(), json!(hedberg::unified_diff(path, old, new)));
    attributes.insert("beforeTokens".into(), json!(count_tokens(old, divisor)));
    attributes.insert("afterTokens".into(), json!(count_tokens(new, divisor)));
    attributes
}

pub(super) async fn propose(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    detected: Detected,
    log_path: &str,
) -> Result<(), ToolError> {
    if is_pattern(path) {
        let error = format!("a file edit takes one file path, not a pattern ({path})");
        return fail(ctx, log_path, "validation", path, error).await;
    }
    let Some(root) = project_root(ctx).await? else {
        let error = format!("{path}: the project has no root directory");
        return fail(ctx, log_path, "not_found", path, error).await;
    };
    let file = match files::confine(&root, path) {
        Ok(f) => f,
        Err(e) => return fail(ctx, log_path, "validation", path, e.to_string()).await,
    };
    let (r, f) = (root.clone(), file.clone());
    let current = tokio::task::spawn_blocking(move || files::read_text(&r, &f))
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let current = match current {
        Ok(c) => c,
        Err(e) => return fail(ctx, log_path, "validation", path, e.to_string()).await,
    };
    let summary = summary_attr(cmd);
    if let Detected::Full(text) = detected {
        let old = current.unwrap_or_default();
        let mut attributes = change_attrs(ctx, &file, &old, &text);
        attributes.insert("merge".into(), json!(merge_block(&old, &text)));
        // Upstream writes `summary` even when the model gave none (null).
        attributes.insert("summary".into(), json!(summary));
        ctx.write_log(
            log_path,
            text,
            EntryState::Proposed,
            None,
            None,
            Value::Object(attributes),
        )
        .await?;
        return Ok(());
    }
    let Some(old) = current else {
        let error = format!("{path} not found in context");
        return fail(ctx, log_path, "not_found", path, error).await;
    };
    let edit = detected.into_edit(&cmd.body);
    let merge = edit_merge(&edit);
    let applied = match hedberg::apply(&old, &edit) {
        Ok(a) => a,
        Err(e) => {
            let before = count_tokens(&old, ctx.config.token_divisor);
            let mut attributes = Map::new();
            attributes.insert("path".into(), json!(file));
            attributes.insert("error".into(), json!(e.to_string()));
            attributes.insert("beforeTokens".into(), json!(before));
            attributes.insert("afterTokens".into(), json!(before));
            if let Some(m) = &merge {
                attributes.insert("merge".into(), json!(m));
            }
            ctx.write_log(
                log_path,
                "",
                EntryState::Failed,
                Some("conflict".into()),
                None,
                Value::Object(attributes),
            )
            .await?;
            return Ok(());
        }
    };
    let mut attributes = change_attrs(ctx, &file, &old, &applied.body);
    if let Some(m) = &merge {
        attributes.insert("merge".into(), json!(m));
    }
    if let Some(s) = &summary {
        attributes.insert("summary".into(), json!(s));
    }
    // An edit's entries carry `warning` and `error` as upstream's do, null
    // when there is nothing to say.
    let warning = (!applied.warnings.is_empty()).then(|| applied.warnings.join("\n"));
    attributes.insert("warning".into(), json!(warning));
    attributes.insert("error".into(), Value::Null);
    ctx.store
        .run(SetEntry(EntryWrite {
            body: Some(applied.body.clone()),
            state: Some(EntryState::Proposed),
            attributes: Some(Value::Object(attributes.clone())),
            turn: ctx.turn,
            loop_id: Some(ctx.loop_id),
            ..EntryWrite::new(ctx.run_id, format!("set://{file}"), Writer::Model)
        }))
        .await?;
    attributes.insert("proposal".into(), json!(format!("set://{file}")));
    let body = merge.unwrap_or(applied.body);
    ctx.write_log(
        log_path,
        body,
        EntryState::Resolved,
        None,
        None,
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}
