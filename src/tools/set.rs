//! `<set path="P">text</set>`: write an entry; without text, change the
//! visibility of the matching entries.

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::paths::scheme_of;
use crate::store::patterns::is_pattern;
use crate::store::{
    ChangeVisibility, EntryState, EntryWrite, SetByPattern, SetEntry, Writer, VISIBILITIES,
};
use serde_json::{json, Map, Value};

pub struct Set;

#[async_trait::async_trait]
impl Tool for Set {
    fn name(&self) -> &'static str {
        "set"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_set.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        let target = row.attr("path").unwrap_or(row.path);
        match row.attr("error") {
            Some(error) => format!("# set {target}\n{error}"),
            None => format!("# set {target}"),
        }
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        let collapsed = row.body.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.chars().count() <= 80 {
            collapsed
        } else {
            format!("{}...", collapsed.chars().take(77).collect::<String>())
        }
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some(path) = cmd.path() else {
            ctx.write_log(
                log_path,
                "path is required",
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({ "error": "path is required" }),
            )
            .await?;
            return Ok(());
        };
        let text = cmd.text();
        let visibility = cmd.attr("visibility");
        if text.is_empty() {
            if let Some(v) = visibility {
                return change_visibility(ctx, &path, v, log_path).await;
            }
        }
        if scheme_of(&path).is_none() {
            // Project files change only through accepted proposals.
            let message = format!("File edits are not available yet; {path} was not changed.");
            ctx.write_log(
                log_path,
                text,
                EntryState::Failed,
                Some("unsupported".into()),
                None,
                json!({ "path": path, "error": message }),
            )
            .await?;
            return Ok(());
        }
        if let Some(v) = visibility.filter(|v| !VISIBILITIES.contains(v)) {
            return invalid_visibility(ctx, &path, v, log_path).await;
        }
        let filter = cmd.attr("filter").filter(|f| !f.is_empty());
        if filter.is_some() || is_pattern(&path) {
            return bulk_write(ctx, &path, filter, text, visibility, log_path).await;
        }
        let mut attributes = Map::new();
        if let Some(summary) = cmd.attr("summary") {
            let summary: String = summary.chars().take(80).collect();
            attributes.insert("summary".into(), Value::String(summary));
        }
        ctx.store
            .run(SetEntry(EntryWrite {
                body: Some(text.clone()),
                state: Some(EntryState::Resolved),
                visibility: Some(visibility.unwrap_or("visible").into()),
                attributes: Some(Value::Object(attributes.clone())),
                turn: ctx.turn,
                loop_id: Some(ctx.loop_id),
                ..EntryWrite::new(ctx.run_id, path.clone(), Writer::Model)
            }))
            .await?;
        attributes.insert("path".into(), Value::String(path));
        if let Some(v) = visibility {
            attributes.insert("visibility".into(), Value::String(v.into()));
        }
        ctx.write_log(
            log_path,
            text,
            EntryState::Resolved,
            None,
            None,
            Value::Object(attributes),
        )
        .await?;
        Ok(())
    }
}

/// A glob path or a `filter` attribute replaces the body of every match
/// (upstream writes a literal entry named by the glob instead, a defect).
async fn bulk_write(
    ctx: &TurnCtx,
    path: &str,
    filter: Option<&str>,
    text: String,
    visibility: Option<&str>,
    log_path: &str,
) -> Result<(), ToolError> {
    let changed = ctx
        .store
        .run(SetByPattern {
            run_id: ctx.run_id,
            pattern: path.to_string(),
            body_filter: filter.map(str::to_string),
            body: Some(text),
            visibility: visibility.map(str::to_string),
            writer: Writer::Model,
        })
        .await?;
    let attributes = json!({ "path": path, "filter": filter });
    let listing = changed.join("\n");
    log_matches(ctx, log_path, path, &changed, listing, None, attributes).await
}

/// Logs a command that acted on the entries matching `path`: the given
/// body when something matched, `{path} not found` (failed) otherwise.
async fn log_matches(
    ctx: &TurnCtx,
    log_path: &str,
    path: &str,
    matched: &[String],
    body: String,
    visibility: Option<&str>,
    attributes: Value,
) -> Result<(), ToolError> {
    let (body, state, outcome) = if matched.is_empty() {
        (
            format!("{path} not found"),
            EntryState::Failed,
            Some("not_found".into()),
        )
    } else {
        (body, EntryState::Resolved, None)
    };
    ctx.write_log(log_path, body, state, outcome, visibility, attributes)
        .await?;
    Ok(())
}

async fn invalid_visibility(
    ctx: &TurnCtx,
    path: &str,
    v: &str,
    log_path: &str,
) -> Result<(), ToolError> {
    let message = format!(
        "Invalid visibility \"{v}\" on <set path=\"{path}\"/>. Use visibility=\"visible|summarized|archived\"."
    );
    ctx.log_error(message.clone(), 400).await?;
    ctx.write_log(
        log_path,
        "",
        EntryState::Failed,
        Some("validation".into()),
        None,
        json!({ "path": path, "error": message }),
    )
    .await?;
    Ok(())
}

async fn change_visibility(
    ctx: &TurnCtx,
    path: &str,
    v: &str,
    log_path: &str,
) -> Result<(), ToolError> {
    if !VISIBILITIES.contains(&v) {
        return invalid_visibility(ctx, path, v, log_path).await;
    }
    let changed = ctx
        .store
        .run(ChangeVisibility {
            run_id: ctx.run_id,
            pattern: path.to_string(),
            body_filter: None,
            visibility: v.to_string(),
            promote_turn: None,
        })
        .await?;
    let attributes = json!({ "path": path, "visibility": v });
    let listing = format!("{} set to {v}", changed.join(", "));
    log_matches(
        ctx,
        log_path,
        path,
        &changed,
        listing,
        Some("archived"),
        attributes,
    )
    .await
}
