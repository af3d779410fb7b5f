//! Server-to-client notifications: every client bound to the run's
//! project receives them.
//!
//! Sent today: `run/state`, `run/progress`, `run/proposal`,
//! `stream/cancelled` and `run/resolved` (beyond 2.0.0). Defined from spec
//! 03 §3 and **not sent yet**: `ui/render`, `ui/notify` (the registry in
//! [`super::schema`] marks them `"sent": false`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A payload type and the method it is sent as.
pub trait ServerNotification: Serialize + JsonSchema {
    const METHOD: &'static str;
}

/// A notification ready for the hub: its method and serialized payload.
#[derive(Debug, Clone)]
pub struct Notification {
    pub method: &'static str,
    pub params: Value,
}

/// `run/state`: a run's state at the end of each turn and when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStateNotification {
    pub run: String,
    pub turn: i64,
    /// 102 while it continues; the final status when it ends.
    pub status: i64,
    /// Body of the newest update with status 200; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub history: Vec<RunLogItem>,
    /// The run's open `unknown://` entries.
    pub unknowns: Vec<UnknownItem>,
    pub telemetry: RunTelemetry,
}

impl ServerNotification for RunStateNotification {
    const METHOD: &'static str = "run/state";
}

/// One `run/state` history row: a log, prompt or unknown entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunLogItem {
    /// The entry's scheme.
    pub tool: Option<String>,
    pub state: super::EntryState,
    pub outcome: Option<String>,
    pub path: String,
    pub body: String,
    pub turn: i64,
    /// The entry's attributes as a JSON string (upstream sends it unparsed).
    pub attributes: String,
}

/// An open question the model recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnknownItem {
    pub path: String,
    pub body: String,
}

/// Token accounting of a run at one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunTelemetry {
    /// The run's model alias.
    #[serde(rename = "modelAlias")]
    pub model_alias: String,
    /// The model the provider reported this turn, else the alias.
    pub model: String,
    /// The temperature sent this turn; absent when none was set or no call was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The context window (model's, capped by the run's `contextLimit`); null if unknown.
    pub context_size: Option<i64>,
    pub context_tokens: i64,
    /// `context_size × RUMMY_BUDGET_CEILING`, floored.
    pub ceiling: Option<i64>,
    /// Equal to `context_tokens`.
    pub token_usage: i64,
    /// `ceiling − token_usage`, at least 0.
    pub tokens_free: Option<i64>,
    /// Run totals from here on.
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub total_tokens: i64,
    pub cost: f64,
    /// The turn's context by category.
    pub context_distribution: Vec<ContextBucket>,
}

/// One category of a turn's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextBucket {
    /// `data`, `logging`, `unknown`, `prompt` or `system`.
    pub bucket: String,
    pub tokens: i64,
    pub entries: i64,
}

/// `run/progress`: what a run is doing while the model works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunProgressNotification {
    pub run: String,
    pub turn: i64,
    pub status: ProgressStatus,
    /// `retrying` only: how many provider calls have failed so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// `retrying` only: the failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `retrying` only: the wait before the next call, in milliseconds.
    #[serde(rename = "delayMs", skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl ServerNotification for RunProgressNotification {
    const METHOD: &'static str = "run/progress";
}

/// A turn's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProgressStatus {
    /// Context assembled; the provider is about to be called.
    Thinking,
    /// The provider replied; commands are being recorded and run.
    Processing,
    /// A provider call failed and is retried after `delayMs`.
    Retrying,
}

/// `run/proposal`: an entry awaits a client's decision; the next comes
/// only after this one is resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunProposalNotification {
    pub run: String,
    /// One item.
    pub proposed: Vec<ProposedEntry>,
}

impl ServerNotification for RunProposalNotification {
    const METHOD: &'static str = "run/proposal";
}

/// An entry in state `proposed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProposedEntry {
    pub path: String,
    pub body: String,
    /// The entry's attributes as a JSON string.
    pub attributes: String,
    pub turn: i64,
}

/// `run/resolved` (beyond 2.0.0): a proposal was settled, by a client's
/// decision or because its run was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResolvedNotification {
    pub run: String,
    /// The proposal's entry.
    pub path: String,
    /// `resolved` (accepted), `failed` (rejected, vetoed or errored) or `cancelled`.
    pub state: super::EntryState,
    /// Why, when it did not resolve: `permission`, `readonly`, `error`, `aborted`.
    pub outcome: Option<String>,
}

impl ServerNotification for RunResolvedNotification {
    const METHOD: &'static str = "run/resolved";
}

/// `stream/cancelled`: a client (or the run's cancel) cancelled a streaming command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamCancelledNotification {
    pub run: String,
    /// The command's log entry.
    pub path: String,
    pub reason: Option<String>,
}

impl ServerNotification for StreamCancelledNotification {
    const METHOD: &'static str = "stream/cancelled";
}

/// `ui/render` (**not sent yet**; upstream registers it and never sends it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UiRenderNotification {
    pub text: String,
    /// Append to what is shown instead of replacing it.
    pub append: bool,
}

impl ServerNotification for UiRenderNotification {
    const METHOD: &'static str = "ui/render";
}

/// `ui/notify` (**not sent yet**; upstream registers it and never sends it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UiNotifyNotification {
    pub text: String,
    /// e.g. `info`, `warn`, `error`.
    pub level: String,
}

impl ServerNotification for UiNotifyNotification {
    const METHOD: &'static str = "ui/notify";
}

/// `run/changed`: an entry of a run changed (only to clients that listed
/// it in hello's `subscribe`); reconcile with `getEntries` and `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunChangedNotification {
    /// The run's alias.
    pub run: String,
    pub run_id: i64,
    pub path: String,
    pub change_type: ChangeType,
}

impl ServerNotification for RunChangedNotification {
    const METHOD: &'static str = "run/changed";
}

/// What happened to the entry, read from what the write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    /// Written whole (new, or a full write over it).
    Upsert,
    /// Streamed output appended.
    Append,
    /// Its body changed without a full write.
    Body,
    /// Its state or outcome changed.
    Resolve,
    /// Made visible.
    Promote,
    /// Summarized or archived.
    Demote,
    /// Its attributes changed.
    Attributes,
    /// Removed from the run.
    Remove,
}

impl Notification {
    /// Serializes a typed payload for the hub.
    pub fn of<N: ServerNotification>(payload: &N) -> Result<Self, serde_json::Error> {
        Ok(Notification {
            method: N::METHOD,
            params: serde_json::to_value(payload)?,
        })
    }
}
