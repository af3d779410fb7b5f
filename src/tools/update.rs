//! `<update status="N">text</update>`: progress (1xx) or the loop's end.

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::{EntryState, RunStatus};
use serde_json::{json, Value};

pub struct Update;

/// Statuses that end the loop.
pub const TERMINAL: [RunStatus; 4] = RunStatus::TERMINAL;

/// The run status an update's status code ends the loop with, if it is terminal.
pub fn terminal_status(code: i64) -> Option<RunStatus> {
    RunStatus::terminal(code)
}

#[async_trait::async_trait]
impl Tool for Update {
    fn name(&self) -> &'static str {
        "update"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_update.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        format!("# update\n{}", row.body)
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        self.visible(row)
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let mut attributes = serde_json::Map::new();
        for (k, v) in &cmd.attrs {
            attributes.insert(k.clone(), Value::String(v.clone()));
        }
        attributes.insert(
            "status".into(),
            cmd.status()
                .map(Value::from)
                .unwrap_or_else(|| json!(cmd.attr("status"))),
        );
        ctx.write_log(
            log_path,
            cmd.text(),
            EntryState::Resolved,
            None,
            None,
            Value::Object(attributes),
        )
        .await?;
        Ok(())
    }
}
