//! Runs area: `set` on `run://` (start, continue, fork, cancel), the older
//! `ask`/`act` verbs, `getRuns` and `getRun`.
//!
//! Run statuses are HTTP-like integers on the wire: 100 queued, 102
//! running, 200 done, 202 waiting, 204/422 concluded by the model, 499
//! cancelled, 500 failed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `set` params when `path` is `run://` or `run://{alias}`.
// `attributes` stays an open object in Rust so each key can be checked
// with its own message (`set run://: attributes.temperature: …`); its
// schema is `RunAttributes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunSetParams {
    /// `run://{alias}`, or `run://` for a new run named `{model}_{milliseconds}`.
    #[schemars(required, pattern(r"^[Rr][Uu][Nn]://"))]
    pub path: Option<String>,
    /// The prompt: starts a new run or continues (injects into) an existing one.
    pub body: Option<String>,
    /// On an existing run only `"cancelled"` is accepted: it cancels the run.
    pub state: Option<String>,
    /// Reason recorded with `state`.
    pub outcome: Option<String>,
    /// Run settings; `model` and `mode` are needed to start, continue or fork.
    #[serde(default)]
    #[schemars(with = "Option<RunAttributes>")]
    pub attributes: Option<Map<String, Value>>,
}

/// The settings a client gives in `set run://` `attributes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunAttributes {
    /// Model alias. Required for a new run; a fork omitting it keeps the parent's.
    pub model: Option<String>,
    /// Required to start, continue or fork a run.
    pub mode: Option<RunMode>,
    /// Sampling temperature, 0 to 2. Omitted uses `RUMMY_TEMPERATURE` (or the parent's on a fork).
    pub temperature: Option<f64>,
    /// Persona text. Omitted keeps none (or the parent's on a fork).
    pub persona: Option<String>,
    /// Cap on the context window in tokens, at least 1024. Omitted uses the model's window.
    pub context_limit: Option<i64>,
    /// Do not scan project files.
    pub no_repo: Option<bool>,
    /// No questions to the user.
    pub no_interaction: Option<bool>,
    /// No web search.
    pub no_web: Option<bool>,
    /// No proposals (no `ask_user`, `env`, `sh`).
    pub no_proposals: Option<bool>,
    /// The server accepts every proposal itself, vetoes included (`ask_user` still waits for a client).
    pub yolo: Option<bool>,
    /// On an existing run with a body: queue the prompt as a new loop even while a loop runs
    /// (without it, a prompt matching the running loop's mode and flags joins its next turn).
    pub queue: Option<bool>,
    /// On an existing run: start a child run that shares the parent's entries.
    pub fork: Option<bool>,
}

/// How a run may act: `ask` answers, `act` also changes files and runs commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    Ask,
    Act,
}

/// `ask` / `act` params (older verbs; the same as `set` on `run://` with that mode).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyRunParams {
    /// What to do.
    pub prompt: String,
    /// Model alias; required for a new run.
    pub model: Option<String>,
    /// Alias of a run to continue. Omitted starts a new run.
    pub run: Option<String>,
    /// 0 to 2.
    pub temperature: Option<f64>,
    /// Persona text.
    pub persona: Option<String>,
    /// At least 1024.
    pub context_limit: Option<i64>,
    /// Do not scan project files.
    pub no_repo: Option<bool>,
    /// No questions to the user.
    pub no_interaction: Option<bool>,
    /// No web search.
    pub no_web: Option<bool>,
    /// No proposals.
    pub no_proposals: Option<bool>,
    /// Fork `run` instead of continuing it.
    pub fork: Option<bool>,
}

/// The reply of every run lifecycle call: the run it addressed (a fork's
/// child, a new run's generated alias). The run itself goes on; only
/// `run/state`, `getRun` and `getRuns` show how it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSetResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub alias: String,
}

/// `run/rename` params (beyond 2.0.0: upstream documents the method but
/// does not serve it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunRenameParams {
    /// The run's current alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The new alias; refused when any run holds it.
    #[schemars(required)]
    pub name: Option<String>,
}

/// `getRuns` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetRunsParams {
    /// Page size. Omitted lists every run.
    pub limit: Option<i64>,
    /// Rows to skip. Omitted starts at the newest.
    pub offset: Option<i64>,
}

/// One `getRuns` row, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    /// The run's alias.
    pub run: String,
    pub status: i64,
    /// The last turn taken (0 before the first).
    pub turn: i64,
    /// Body of the newest update, of any status; null without one.
    pub summary: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created: Option<String>,
}

/// `getRun` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetRunParams {
    /// Run alias.
    pub run: String,
}

/// `getRun` result: one run in detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetRunResult {
    pub run: String,
    /// The last turn taken (0 before the first).
    pub turn: i64,
    pub status: i64,
    /// Model alias.
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    pub context: RunContext,
    /// Body of the newest `prompt://` entry; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user_prompt: Option<String>,
    /// Body of the newest update, of any status; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_summary: Option<String>,
    /// The run's proposals waiting on a client's decision, oldest first,
    /// shaped like `run/proposal` items (beyond 2.0.0).
    #[serde(rename = "pendingProposals", default)]
    pub pending_proposals: Vec<super::notifications::ProposedEntry>,
}

/// What a run holds: usage, reasoning, unparsed content and its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunContext {
    pub telemetry: RunUsage,
    /// `reasoning://N` entries.
    pub reasoning: Vec<TurnText>,
    /// `content://N` entries (reply text outside any tag).
    pub content: Vec<TurnText>,
    pub history: Vec<RunHistoryItem>,
}

/// A run's summed provider usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunUsage {
    pub prompt_tokens: i64,
    /// Prompt tokens the provider served from its cache.
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    /// Completion tokens spent on reasoning.
    pub reasoning_tokens: i64,
    pub total_tokens: i64,
    pub cost: f64,
}

/// One entry body with the turn that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TurnText {
    pub path: String,
    pub body: String,
    pub turn: i64,
}

/// One `getRun` history row (its attributes parsed, unlike `run/state`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunHistoryItem {
    /// The entry's scheme (`log`, `prompt`, …).
    pub tool: Option<String>,
    pub path: String,
    pub body: String,
    /// The entry's attributes; null if they are not JSON.
    pub attributes: Option<Value>,
    pub turn: i64,
}
