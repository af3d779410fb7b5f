//! `<rm path="P" [body="F"] [preview]/>` or `<rm>P</rm>`: remove the run's
//! entries at a path or matching a glob. Also holds what `cp` and `mv`
//! share with it: source matching, preview listings and failed log entries.

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::paths::log_path as log_path_of;
use crate::store::{
    AllocateLogPaths, EntryState, MatchEntries, RemoveEntries, SourceMatch, Writer,
};
use crate::tokens::count_tokens;
use serde_json::{json, Map, Value};

pub struct Rm;

/// The content filter: the `body` attribute, or the tag text when the path
/// came as an attribute (as `<get>` reads it).
fn body_filter(cmd: &Command) -> Option<String> {
    if let Some(b) = cmd.attr("body").filter(|b| !b.is_empty()) {
        return Some(b.to_string());
    }
    let text = crate::hedberg::js_trim(&cmd.body);
    (cmd.attr("path").is_some_and(|p| !p.is_empty()) && !text.is_empty()).then(|| text.to_string())
}

/// The run's entries at `path` (normalized) or matching it as a pattern,
/// passing `filter`.
pub(super) async fn find_matches(
    ctx: &TurnCtx,
    path: &str,
    filter: Option<&str>,
) -> Result<Vec<SourceMatch>, ToolError> {
    Ok(ctx
        .store
        .run(MatchEntries {
            run_id: ctx.run_id,
            pattern: path.to_string(),
            body_filter: filter.map(str::to_string),
        })
        .await?)
}

/// Token count of a match's body, as `<get>` listings report it.
pub(super) fn tokens_of(ctx: &TurnCtx, m: &SourceMatch) -> i64 {
    count_tokens(&m.body, ctx.config.token_divisor)
}

/// Upstream's pattern-listing body: `PREVIEW {tool} path="P"[ body="F"]: {n}
/// matched ({Σ} tokens)` and one line per match.
pub(super) fn preview_body(
    tool: &str,
    path: &str,
    filter: Option<&str>,
    total_tokens: i64,
    lines: &[String],
) -> String {
    let filter = filter.map(|f| format!(" body=\"{f}\"")).unwrap_or_default();
    format!(
        "PREVIEW {tool} path=\"{path}\"{filter}: {} matched ({total_tokens} tokens)\n{}",
        lines.len(),
        lines.join("\n")
    )
}

/// Fails the command's log entry: empty body (as upstream's rm), the
/// message in `attributes.error`, which the projections show.
pub(super) async fn fail(
    ctx: &TurnCtx,
    log_path: &str,
    outcome: &str,
    error: impl Into<String>,
    mut attributes: Map<String, Value>,
) -> Result<(), ToolError> {
    attributes.insert("error".into(), Value::String(error.into()));
    ctx.write_log(
        log_path,
        "",
        EntryState::Failed,
        Some(outcome.into()),
        None,
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}

pub(super) fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Files are removed only through accepted proposals (body = the file,
/// attrs `{path}`): the only match's at the command's log path, else each
/// at its own. Matching entries of other schemes are removed at once and
/// the command's log lists both.
async fn propose_removals(
    ctx: &TurnCtx,
    log_path: &str,
    path: &str,
    matches: &[SourceMatch],
    files: &[&str],
) -> Result<(), ToolError> {
    if let ([file], 1) = (files, matches.len()) {
        ctx.write_log(
            log_path,
            *file,
            EntryState::Proposed,
            None,
            None,
            json!({ "path": file }),
        )
        .await?;
        return Ok(());
    }
    let mut lines = Vec::new();
    for m in matches.iter().filter(|m| m.scheme.is_some()) {
        let removed = ctx
            .store
            .run(RemoveEntries {
                run_id: ctx.run_id,
                path: m.path.clone(),
                body_filter: None,
                writer: Writer::Model,
            })
            .await?;
        lines.extend(removed);
    }
    let own = ctx
        .store
        .run(AllocateLogPaths {
            run_id: ctx.run_id,
            bases: files
                .iter()
                .map(|f| log_path_of(ctx.turn, "rm", f))
                .collect(),
        })
        .await?;
    for (file, at) in files.iter().zip(&own) {
        ctx.write_log(
            at,
            *file,
            EntryState::Proposed,
            None,
            None,
            json!({ "path": file }),
        )
        .await?;
        lines.push(format!("{file} (proposed: {at})"));
    }
    ctx.write_log(
        log_path,
        lines.join("\n"),
        EntryState::Resolved,
        None,
        None,
        json!({ "path": path }),
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Tool for Rm {
    fn name(&self) -> &'static str {
        "rm"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_rm.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        let header = format!("# rm {}", row.attr("path").unwrap_or(row.path));
        if !row.body.is_empty() {
            return format!("{header}\n{}", row.body);
        }
        // Our failures keep upstream's empty body; the model still reads why.
        match row.attr("error") {
            Some(error) => format!("{header}\n{error}"),
            None => header,
        }
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some(path) = cmd.path() else {
            return fail(ctx, log_path, "validation", "path is required", Map::new()).await;
        };
        let filter = body_filter(cmd);
        let matches = find_matches(ctx, &path, filter.as_deref()).await?;
        if cmd.preview() {
            // Upstream documents preview and deletes anyway (spec 02 §3.3).
            let total = matches.iter().map(|m| tokens_of(ctx, m)).sum();
            let lines: Vec<String> = matches
                .iter()
                .map(|m| format!("{} ({})", m.path, tokens_of(ctx, m)))
                .collect();
            let body = preview_body("rm", &path, filter.as_deref(), total, &lines);
            ctx.write_log(
                log_path,
                body,
                EntryState::Resolved,
                None,
                None,
                json!({ "path": path }),
            )
            .await?;
            return Ok(());
        }
        let path_attr = || attrs(&[("path", json!(path))]);
        if matches.is_empty() {
            let error = format!("{path} not found");
            return fail(ctx, log_path, "not_found", error, path_attr()).await;
        }
        let files: Vec<&str> = matches
            .iter()
            .filter(|m| m.scheme.is_none())
            .map(|m| m.path.as_str())
            .collect();
        if !files.is_empty() {
            return propose_removals(ctx, log_path, &path, &matches, &files).await;
        }
        let removed = ctx
            .store
            .run(RemoveEntries {
                run_id: ctx.run_id,
                path: path.clone(),
                body_filter: filter,
                writer: Writer::Model,
            })
            .await?;
        ctx.write_log(
            log_path,
            removed.join("\n"),
            EntryState::Resolved,
            None,
            None,
            json!({ "path": path }),
        )
        .await?;
        Ok(())
    }
}
