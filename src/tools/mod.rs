//! Tools: one module per tool, each owning its handler, its projections
//! and its doc text, all registered in one [`ToolRegistry`].

mod cp;
mod get;
pub mod known;
mod mv;
mod rm;
mod set;
pub mod update;

use crate::config::Config;
use crate::parse::Command;
use crate::store::{
    EntryState, EntryWrite, LogError, SchemeDef, SetEntry, Store, StoreError, Writer,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Ask (no side effects outside the store) or act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Ask,
    Act,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "ask" => Some(Mode::Ask),
            "act" => Some(Mode::Act),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ask => "ask",
            Mode::Act => "act",
        }
    }
}

/// What a tool handler may touch during one turn.
pub struct TurnCtx {
    pub store: Store,
    pub config: Arc<Config>,
    pub run_id: i64,
    pub loop_id: i64,
    pub turn: i64,
    pub mode: Mode,
    errors: AtomicU32,
}

impl TurnCtx {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        run_id: i64,
        loop_id: i64,
        turn: i64,
        mode: Mode,
    ) -> Self {
        TurnCtx {
            store,
            config,
            run_id,
            loop_id,
            turn,
            mode,
            errors: AtomicU32::new(0),
        }
    }

    /// Error entries written this turn; any makes the turn a strike.
    pub fn error_count(&self) -> u32 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Writes a `log://turn_N/error/...` record and counts it.
    pub async fn log_error(
        &self,
        message: impl Into<String>,
        status: i64,
    ) -> Result<String, StoreError> {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.store
            .run(LogError {
                run_id: self.run_id,
                turn: self.turn,
                loop_id: Some(self.loop_id),
                message: message.into(),
                status,
                attributes: Map::new(),
            })
            .await
    }

    /// Writes a command's log entry at its recorded path.
    pub async fn write_log(
        &self,
        path: &str,
        body: impl Into<String>,
        state: EntryState,
        outcome: Option<String>,
        visibility: Option<&str>,
        attributes: Value,
    ) -> Result<(), StoreError> {
        self.store
            .run(SetEntry(EntryWrite {
                body: Some(body.into()),
                state: Some(state),
                outcome,
                visibility: visibility.map(str::to_string),
                attributes: Some(attributes),
                turn: self.turn,
                loop_id: Some(self.loop_id),
                ..EntryWrite::new(self.run_id, path, Writer::Model)
            }))
            .await
            .map(|_| ())
    }
}

/// A handler failure; either kind aborts the rest of the turn's commands.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The writer tier may not write that scheme (reported as a 403).
    #[error("{0}")]
    Permission(String),
    /// Anything else the handler could not do (reported as a crash, 500).
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::Permission { .. } => ToolError::Permission(e.to_string()),
            e => ToolError::Failed(e.to_string()),
        }
    }
}

/// A row as a projection sees it.
pub struct ProjectionRow<'a> {
    pub path: &'a str,
    pub body: &'a str,
    pub attributes: &'a Map<String, Value>,
}

impl ProjectionRow<'_> {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// One tool (or scheme owner) of the registry.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    fn name(&self) -> &'static str;
    /// Doc text for the system prompt; `None` for hidden tools.
    fn doc(&self) -> Option<&'static str>;
    /// Schemes this tool owns.
    fn schemes(&self) -> Vec<SchemeDef> {
        Vec::new()
    }
    /// The full view of an entry whose projection key is this tool.
    fn visible(&self, row: &ProjectionRow) -> String {
        row.body.to_string()
    }
    /// The cheap view of the same entry.
    fn summarized(&self, _row: &ProjectionRow) -> String {
        String::new()
    }
    /// Runs one command whose log entry lives at `log_path`.
    async fn dispatch(&self, ctx: &TurnCtx, cmd: &Command, log_path: &str)
        -> Result<(), ToolError>;
}

/// Keeps the first 500 characters and says how to see the rest.
pub fn truncated_summary(body: &str, path: &str) -> String {
    if body.chars().count() <= 500 {
        return body.to_string();
    }
    let head: String = body.chars().take(500).collect();
    format!("{head}\n[truncated — promote with <get path=\"{path}\"/> to read all]")
}

/// All tools, in advertised order.
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
    by_name: HashMap<&'static str, Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// The built-in tools. Order follows upstream's TOOL_ORDER with
    /// `update` last.
    pub fn builtin() -> ToolRegistry {
        let tools: Vec<Arc<dyn Tool>> = vec![
            Arc::new(known::Unknown),
            Arc::new(known::Known),
            Arc::new(get::Get),
            Arc::new(set::Set),
            Arc::new(rm::Rm),
            Arc::new(cp::Cp),
            Arc::new(mv::Mv),
            Arc::new(update::Update),
        ];
        let by_name = tools.iter().map(|t| (t.name(), t.clone())).collect();
        ToolRegistry { tools, by_name }
    }

    /// Adds a tool after the others, replacing one of the same name
    /// (embedding programs and tests).
    pub fn with(mut self, tool: Arc<dyn Tool>) -> ToolRegistry {
        self.tools.retain(|t| t.name() != tool.name());
        self.by_name.insert(tool.name(), tool.clone());
        self.tools.push(tool);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name)
    }

    /// Tools offered to the model in this mode, in order.
    pub fn advertised(&self, _mode: Mode) -> Vec<&Arc<dyn Tool>> {
        self.tools.iter().filter(|t| t.doc().is_some()).collect()
    }

    /// Every scheme the tools own (registered at boot).
    pub fn schemes(&self) -> Vec<SchemeDef> {
        let mut defs: Vec<SchemeDef> = self.tools.iter().flat_map(|t| t.schemes()).collect();
        for tool in &self.tools {
            if !defs.iter().any(|d| d.name == tool.name()) {
                defs.push(SchemeDef::tool(tool.name(), "logging"));
            }
        }
        defs.push(SchemeDef::tool("error", "logging"));
        defs
    }
}
