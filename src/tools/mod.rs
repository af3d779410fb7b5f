//! Tools: one module per tool, each owning its handler, its projections
//! and its doc text, all registered in one [`ToolRegistry`].

pub mod ask_user;
mod cp;
mod env;
mod get;
pub mod known;
mod mv;
mod rm;
mod set;
mod sh;
pub mod think;
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
    /// The run's editor, when a front end installed one: file reads ask
    /// it first (its unsaved buffers).
    pub editor: Option<Arc<dyn crate::run::editor::Editor>>,
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
            editor: None,
        }
    }

    /// The same context with the run's editor (see [`crate::run::editor`]).
    pub fn with_editor(mut self, editor: Option<Arc<dyn crate::run::editor::Editor>>) -> Self {
        self.editor = editor;
        self
    }

    /// A turn taken up again after a restart, with the error entries it
    /// had already written.
    pub fn with_errors(self, errors: u32) -> Self {
        self.errors.store(errors, Ordering::Relaxed);
        self
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
    // The byte offset of the 501st character, if there is one: slicing
    // there is what collecting 500 chars gives, without building the
    // string a character at a time.
    let Some((cut, _)) = body.char_indices().nth(500) else {
        return body.to_string();
    };
    let head = &body[..cut];
    format!("{head}\n[truncated — promote with <get path=\"{path}\"/> to read all]")
}

/// Upstream's display order (`TOOL_ORDER`); tools not listed follow in
/// alphabetical order, and `update` always comes last.
pub const TOOL_ORDER: [&str; 12] = [
    "think", "unknown", "known", "get", "set", "env", "sh", "rm", "cp", "mv", "ask_user", "search",
];

/// Where a tool sorts: listed ones by their place, then the rest by name,
/// then `update`.
fn order_key(name: &str) -> (u8, usize, &str) {
    if name == "update" {
        return (2, 0, "");
    }
    match TOOL_ORDER.iter().position(|n| *n == name) {
        Some(i) => (0, i, ""),
        None => (1, 0, name),
    }
}

/// What one loop offers the model (upstream's `resolveForLoop`): its mode,
/// the client's loop flags and `RUMMY_THINK`. It shapes only the advertised
/// list (system prompt and `commands=`); dispatch does not consult it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSet {
    pub mode: Mode,
    /// `RUMMY_THINK`: offer `<think>`.
    pub think: bool,
    /// `noInteraction`: no `ask_user`.
    pub no_interaction: bool,
    /// `noWeb`: no `search`.
    pub no_web: bool,
    /// `noProposals`: no `ask_user`, `env` or `sh`.
    pub no_proposals: bool,
}

impl ToolSet {
    /// A loop in `mode` without flags.
    pub fn new(mode: Mode, think: bool) -> ToolSet {
        ToolSet {
            mode,
            think,
            no_interaction: false,
            no_web: false,
            no_proposals: false,
        }
    }

    /// Whether a (non-hidden) tool of this name is offered.
    pub fn offers(&self, name: &str) -> bool {
        match name {
            "think" => self.think,
            "sh" => self.mode == Mode::Act && !self.no_proposals,
            "env" => !self.no_proposals,
            "ask_user" => !self.no_interaction && !self.no_proposals,
            "search" => !self.no_web,
            _ => true,
        }
    }
}

/// Scheme rows owned by tools that are not (or not yet) registered, so
/// their entries reach the packet; a registered tool's own rows win. The
/// categories follow spec 01 §1.5: channels (`sh`, `env`) and skills are
/// data, action schemes are logging, `think` is never shown to the model.
const TOOL_SCHEME_ROWS: &[SchemeDef] = &[
    SchemeDef::tool("sh", "data"),
    SchemeDef::tool("env", "data"),
    SchemeDef::tool("skill", "data"),
    SchemeDef {
        model_visible: false,
        ..SchemeDef::tool("think", "logging")
    },
    SchemeDef::tool("get", "logging"),
    SchemeDef::tool("set", "logging"),
    SchemeDef::tool("rm", "logging"),
    SchemeDef::tool("mv", "logging"),
    SchemeDef::tool("cp", "logging"),
    SchemeDef::tool("ask_user", "logging"),
    SchemeDef::tool("search", "logging"),
    SchemeDef::tool("update", "logging"),
    SchemeDef::tool("error", "logging"),
];

/// All tools, in display order.
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
    by_name: HashMap<&'static str, Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// The built-in tools (their order here does not matter: the registry
    /// sorts by [`TOOL_ORDER`]).
    pub fn builtin() -> ToolRegistry {
        ToolRegistry::of(vec![
            Arc::new(think::Think),
            Arc::new(known::Unknown),
            Arc::new(known::Known),
            Arc::new(get::Get),
            Arc::new(set::Set),
            Arc::new(env::ENV),
            Arc::new(sh::SH),
            Arc::new(rm::Rm),
            Arc::new(cp::Cp),
            Arc::new(mv::Mv),
            Arc::new(ask_user::AskUser),
            Arc::new(update::Update),
        ])
    }

    /// A registry of these tools, sorted into display order; a later tool
    /// replaces an earlier one of the same name.
    pub fn of(tools: Vec<Arc<dyn Tool>>) -> ToolRegistry {
        let mut registry = ToolRegistry {
            tools: Vec::new(),
            by_name: HashMap::new(),
        };
        for tool in tools {
            registry = registry.with(tool);
        }
        registry
    }

    /// Adds a tool in its place of the order, replacing one of the same
    /// name (embedding programs and tests).
    pub fn with(mut self, tool: Arc<dyn Tool>) -> ToolRegistry {
        self.tools.retain(|t| t.name() != tool.name());
        self.by_name.insert(tool.name(), tool.clone());
        self.tools.push(tool);
        self.tools
            .sort_by(|a, b| order_key(a.name()).cmp(&order_key(b.name())));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name)
    }

    /// Every registered tool's name, in display order (hidden ones too).
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Tools offered to the model by this loop, in order. Hidden tools (no
    /// doc: `known`, `unknown`) are never offered.
    pub fn advertised(&self, set: &ToolSet) -> Vec<&Arc<dyn Tool>> {
        self.tools
            .iter()
            .filter(|t| t.doc().is_some() && set.offers(t.name()))
            .collect()
    }

    /// Every scheme row to register at boot: the tools' own rows, then
    /// [`TOOL_SCHEME_ROWS`] not already covered, then a visible logging
    /// row for any other tool name (upstream's default). One row per name.
    pub fn schemes(&self) -> Vec<SchemeDef> {
        let mut defs: Vec<SchemeDef> = Vec::new();
        let declared = self.tools.iter().flat_map(|t| t.schemes());
        let defaults = self
            .tools
            .iter()
            .map(|t| SchemeDef::tool(t.name(), "logging"));
        for def in declared
            .chain(TOOL_SCHEME_ROWS.iter().cloned())
            .chain(defaults)
        {
            if !defs.iter().any(|d| d.name == def.name) {
                defs.push(def);
            }
        }
        defs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for tools other issues add.
    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Tool for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn doc(&self) -> Option<&'static str> {
            Some("doc")
        }
        async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
            Ok(())
        }
    }

    fn full() -> ToolRegistry {
        [
            "zeta", "search", "ask_user", "mv", "cp", "rm", "sh", "env", "alpha",
        ]
        .into_iter()
        .fold(ToolRegistry::builtin(), |r, n| r.with(Arc::new(Named(n))))
    }

    fn offered(r: &ToolRegistry, set: ToolSet) -> Vec<&'static str> {
        r.advertised(&set).iter().map(|t| t.name()).collect()
    }

    #[test]
    fn tools_sort_by_upstream_order_then_name_with_update_last() {
        assert_eq!(
            full().names(),
            [
                "think", "unknown", "known", "get", "set", "env", "sh", "rm", "cp", "mv",
                "ask_user", "search", "alpha", "zeta", "update"
            ]
        );
    }

    #[test]
    fn modes_and_flags_shape_the_offer() {
        let r = full();
        let act = ToolSet::new(Mode::Act, true);
        assert_eq!(
            offered(&r, act),
            [
                "think", "get", "set", "env", "sh", "rm", "cp", "mv", "ask_user", "search",
                "alpha", "zeta", "update"
            ]
        );
        let ask = offered(&r, ToolSet::new(Mode::Ask, true));
        assert!(!ask.contains(&"sh") && ask.contains(&"env"));
        let no_think = offered(&r, ToolSet::new(Mode::Act, false));
        assert!(!no_think.contains(&"think"));
        let quiet = offered(
            &r,
            ToolSet {
                no_interaction: true,
                ..act
            },
        );
        assert!(!quiet.contains(&"ask_user") && quiet.contains(&"sh"));
        let offline = offered(
            &r,
            ToolSet {
                no_web: true,
                ..act
            },
        );
        assert!(!offline.contains(&"search") && offline.contains(&"ask_user"));
        let no_proposals = offered(
            &r,
            ToolSet {
                no_proposals: true,
                ..act
            },
        );
        assert_eq!(
            no_proposals,
            ["think", "get", "set", "rm", "cp", "mv", "search", "alpha", "zeta", "update"]
        );
    }

    #[test]
    fn the_builtin_offer_in_ask_mode() {
        let r = ToolRegistry::builtin();
        assert_eq!(
            offered(&r, ToolSet::new(Mode::Ask, true)),
            ["think", "get", "set", "env", "rm", "cp", "mv", "ask_user", "update"]
        );
    }

    #[test]
    fn every_tool_scheme_has_one_row_with_its_category() {
        let defs = ToolRegistry::builtin().schemes();
        let row = |name: &str| {
            let rows: Vec<&SchemeDef> = defs.iter().filter(|d| d.name == name).collect();
            assert_eq!(rows.len(), 1, "{name}: {rows:?}");
            rows[0].clone()
        };
        for name in ["known", "sh", "env", "skill"] {
            assert_eq!(row(name).category, "data", "{name}");
        }
        assert_eq!(row("unknown").category, "unknown");
        for name in [
            "get", "set", "rm", "mv", "cp", "ask_user", "search", "update", "error",
        ] {
            assert_eq!(row(name).category, "logging", "{name}");
            assert!(row(name).model_visible, "{name}");
        }
        let think = row("think");
        assert!(!think.model_visible);
        assert_eq!(think.category, "logging");
        // The note tools' own rows (client writers) win over the defaults.
        assert!(row("known").writable_by.contains(&Writer::Client));
    }
}
