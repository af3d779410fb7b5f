//! `<mv path="SRC">DEST</mv>` (or `to="DEST"`): move an entry, or every
//! match of a glob (destination rule in `cp`), to scheme paths. With a
//! valid `visibility` and no destination it changes the visibility of
//! every match in place instead.

use super::cp::{copy_or_move, project, source_and_visibility};
use super::rm::{fail, find_matches, preview_body, tokens_of};
use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::{ChangeVisibility, EntryState};
use serde_json::{json, Value};

pub struct Mv;

/// `<mv path="G" visibility="V"/>`: upstream's body `{paths} set to {V}`,
/// archived; no match fails `not_found` (upstream logs an empty list).
async fn change_visibility(
    ctx: &TurnCtx,
    cmd: &Command,
    log_path: &str,
    source: &str,
    visibility: &str,
) -> Result<(), ToolError> {
    let filter = cmd.attr("body").filter(|b| !b.is_empty());
    let attributes =
        super::rm::attrs(&[("path", json!(source)), ("visibility", json!(visibility))]);
    if cmd.preview() {
        let matches = find_matches(ctx, source, filter).await?;
        let total = matches.iter().map(|m| tokens_of(ctx, m)).sum();
        let lines: Vec<String> = matches
            .iter()
            .map(|m| format!("{} ({})", m.path, tokens_of(ctx, m)))
            .collect();
        let body = preview_body("mv", source, filter, total, &lines);
        ctx.write_log(
            log_path,
            body,
            EntryState::Resolved,
            None,
            None,
            Value::Object(attributes),
        )
        .await?;
        return Ok(());
    }
    let changed = ctx
        .store
        .run(ChangeVisibility {
            run_id: ctx.run_id,
            pattern: source.to_string(),
            body_filter: filter.map(str::to_string),
            visibility: visibility.to_string(),
            promote_turn: None,
        })
        .await?;
    if changed.is_empty() {
        return fail(
            ctx,
            log_path,
            "not_found",
            format!("{source} not found"),
            attributes,
        )
        .await;
    }
    ctx.write_log(
        log_path,
        format!("{} set to {visibility}", changed.join(", ")),
        EntryState::Resolved,
        None,
        Some("archived"),
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Tool for Mv {
    fn name(&self) -> &'static str {
        "mv"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_mv.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        project("mv", row)
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some((source, visibility)) = source_and_visibility(ctx, cmd, log_path, "mv").await?
        else {
            return Ok(());
        };
        if let (Some(v), None) = (visibility, super::cp::destination(cmd)) {
            return change_visibility(ctx, cmd, log_path, &source, v).await;
        }
        copy_or_move(ctx, cmd, log_path, true, source, visibility).await
    }
}
