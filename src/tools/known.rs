//! `known://` and `unknown://`: the model's notes. Hidden tools: the model
//! writes them with `<set path="known://...">`; these own the schemes and
//! how their entries are shown.

use super::{truncated_summary, ProjectionRow, Tool, ToolError, TurnCtx};
use crate::config::Config;
use crate::parse::Command;
use crate::store::paths::scheme_of;
use crate::store::{SchemeDef, Writer};
use crate::tokens::count_tokens;

/// A model write to `known://` refused for its size (spec 01 §8.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    pub tokens: i64,
    pub max: i64,
}

impl Oversize {
    /// The log entry's outcome: `overflow:{tokens}`.
    pub fn outcome(&self) -> String {
        format!("overflow:{}", self.tokens)
    }

    /// What the model reads next turn.
    pub fn message(&self) -> String {
        format!(
            "Entry too large ({} tokens, max {}). Split it into several smaller known:// entries, one topic each.",
            self.tokens, self.max
        )
    }
}

/// The known:// size gate, for every model write of `body` to `path`
/// (upstream checks it only on the RPC fallback, a defect). The body of a
/// refused write must not be stored.
pub fn size_gate(config: &Config, path: &str, body: &str) -> Option<Oversize> {
    if scheme_of(path) != Some("known") || body.is_empty() {
        return None;
    }
    let tokens = count_tokens(body, config.token_divisor);
    let max = i64::from(config.max_entry_tokens);
    (tokens > max).then_some(Oversize { tokens, max })
}

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
