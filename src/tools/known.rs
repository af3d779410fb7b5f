//! `known://` and `unknown://`: the model's notes. Hidden tools: the model
//! writes them with `<set path="known://...">`; these own the schemes and
//! how their entries are shown.

use super::{truncated_summary, ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::{SchemeDef, Writer};

/// Clients may write notes too (upstream lets only `run` take client
/// writes, which leaves client entry writes unusable).
const WRITERS: &[Writer] = &[Writer::Model, Writer::Plugin, Writer::Client];

pub struct Known;
pub struct Unknown;

#[async_trait::async_trait]
impl Tool for Known {
    fn name(&self) -> &'static str {
        "known"
    }
    fn doc(&self) -> Option<&'static str> {
        None
    }
    fn schemes(&self) -> Vec<SchemeDef> {
        vec![SchemeDef {
            writable_by: WRITERS,
            ..SchemeDef::tool("known", "data")
        }]
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        truncated_summary(row.body, row.path)
    }
    async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
        Err(ToolError::Failed(
            "<known> is not a tool tag; write known:// entries with <set>".into(),
        ))
    }
}

#[async_trait::async_trait]
impl Tool for Unknown {
    fn name(&self) -> &'static str {
        "unknown"
    }
    fn doc(&self) -> Option<&'static str> {
        None
    }
    fn schemes(&self) -> Vec<SchemeDef> {
        vec![SchemeDef {
            writable_by: WRITERS,
            ..SchemeDef::tool("unknown", "unknown")
        }]
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        truncated_summary(row.body, row.path)
    }
    async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
        Err(ToolError::Failed(
            "<unknown> is not a tool tag; write unknown:// entries with <set>".into(),
        ))
    }
}
