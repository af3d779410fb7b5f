//! `<think>`: private reasoning before acting. No handler writes an entry:
//! the turn appends the body to its reasoning (`reasoning://N` and the
//! turn's `reasoning_content`), and the command stays among the turn's
//! recorded commands (cycle fingerprints see it). Offered only with
//! `RUMMY_THINK`; its scheme is registered either way, hidden from the model.

use super::{Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::SchemeDef;

pub struct Think;

#[async_trait::async_trait]
impl Tool for Think {
    fn name(&self) -> &'static str {
        "think"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_think.md"))
    }
    fn schemes(&self) -> Vec<SchemeDef> {
        vec![SchemeDef {
            model_visible: false,
            ..SchemeDef::tool("think", "logging")
        }]
    }
    /// Nothing to do: the turn has already taken the body as reasoning.
    async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
        Ok(())
    }
}
