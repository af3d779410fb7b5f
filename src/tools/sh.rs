//! `<sh>command</sh>` (and `<env>`, which shares all of this): a shell
//! command becomes a proposal (body "", attributes = the command's fields
//! plus `summary`); accepting it opens two output channels,
//! `{tool}://turn_N/{command}_1` (stdout) and `_2` (stderr), which the
//! client (or the server, in a yolo run) fills through the stream methods
//! (spec 02 §3.3, spec 03 §4.3). Ask mode refuses `<sh>` and allows
//! `<env>` (run::policy).

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::EntryState;
use serde_json::{json, Map, Value};

/// A streaming command tool: `sh` or `env`.
pub struct Shell {
    name: &'static str,
    doc: &'static str,
}

/// `<sh>`: commands with side effects.
pub const SH: Shell = Shell {
    name: "sh",
    doc: include_str!("../../config/prompts/tool_sh.md"),
};

impl Shell {
    pub(super) const fn new(name: &'static str, doc: &'static str) -> Shell {
        Shell { name, doc }
    }
}

/// The recorded attributes of a command: its fields minus the tag name,
/// plus `summary` = the command (what the model and clients see).
fn proposal_attributes(cmd: &Command) -> (String, Map<String, Value>) {
    let mut attributes = match cmd.to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    attributes.remove("name");
    let command = attributes
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    attributes.insert("summary".into(), Value::String(command.clone()));
    (command, attributes)
}

#[async_trait::async_trait]
impl Tool for Shell {
    fn name(&self) -> &'static str {
        self.name
    }
    fn doc(&self) -> Option<&'static str> {
        Some(self.doc)
    }
    /// Log rows and channel rows alike: `# sh {command}` over the body.
    fn visible(&self, row: &ProjectionRow) -> String {
        format!(
            "# {} {}\n{}",
            self.name,
            row.attr("command").unwrap_or_default(),
            row.body
        )
    }
    fn summarized(&self, _row: &ProjectionRow) -> String {
        String::new()
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let (command, attributes) = proposal_attributes(cmd);
        if command.trim().is_empty() {
            let error = format!("command is required: <{0}>command</{0}>", self.name);
            ctx.write_log(
                log_path,
                "",
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({ "error": error }),
            )
            .await?;
            return Ok(());
        }
        ctx.write_log(
            log_path,
            "",
            EntryState::Proposed,
            None,
            None,
            Value::Object(attributes),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposal_carries_the_command_as_its_summary() {
        let parsed = crate::parse::parse("<sh>ls -la</sh>", 10);
        let (command, attrs) = proposal_attributes(&parsed.commands[0]);
        assert_eq!(command, "ls -la");
        assert_eq!(
            Value::Object(attrs),
            json!({ "command": "ls -la", "summary": "ls -la" })
        );
    }
}
