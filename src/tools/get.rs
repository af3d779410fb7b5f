//! `<get path="P"/>`: promote entries (by path or glob) into view.

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::patterns::is_pattern;
use crate::store::{ChangeVisibility, EntryState};
use serde_json::json;

pub struct Get;

/// The content filter: the `body` attribute, or the tag text when the path
/// came as an attribute (upstream ignores that text, a defect).
fn body_filter(cmd: &Command) -> Option<String> {
    if let Some(b) = cmd.attr("body").filter(|b| !b.is_empty()) {
        return Some(b.to_string());
    }
    let text = cmd.body.trim();
    (cmd.attr("path").is_some_and(|p| !p.is_empty()) && !text.is_empty()).then(|| text.to_string())
}

#[async_trait::async_trait]
impl Tool for Get {
    fn name(&self) -> &'static str {
        "get"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_get.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        format!(
            "# get {}\n{}",
            row.attr("path").unwrap_or(row.path),
            row.body
        )
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some(path) = cmd.path() else {
            let message = "Missing required \"path\" attribute on <get>. Use <get path=\"...\"/>.";
            ctx.log_error(message, 400).await?;
            ctx.write_log(
                log_path,
                message,
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({}),
            )
            .await?;
            return Ok(());
        };
        let promoted = ctx
            .store
            .run(ChangeVisibility {
                run_id: ctx.run_id,
                pattern: path.clone(),
                body_filter: body_filter(cmd),
                visibility: "visible".into(),
                promote_turn: Some(ctx.turn),
            })
            .await?;
        let body = if promoted.is_empty() {
            format!("{path} not found")
        } else if is_pattern(&path) || body_filter(cmd).is_some() {
            promoted.join("\n")
        } else {
            format!("{path} promoted")
        };
        ctx.write_log(
            log_path,
            body,
            EntryState::Resolved,
            None,
            None,
            json!({ "path": path }),
        )
        .await?;
        Ok(())
    }
}
