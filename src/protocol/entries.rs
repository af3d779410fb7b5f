//! Entries area: `set` on entry paths, `get`, `rm`, `cp`, `mv`, `update`,
//! `getEntries`, and the project's file rules (`file/constraint`,
//! `file/drop`, `getConstraints`). Clients write with the client tier.
//!
//! Required strings some handlers check themselves (`run is required`,
//! `path is required`) are `Option` here so the message stays theirs; the
//! schema still marks them required.

use super::runs::{RunSetParams, RunSetResult};
use super::{EntryState, Visibility};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `set` params: `path` on `run://` drives a run ([`RunSetParams`]), any
/// other path writes an entry ([`EntrySetParams`]).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SetParams {
    Run(RunSetParams),
    Entry(EntrySetParams),
}

/// `set` result: [`RunSetResult`] for `run://`, [`EntrySetResult`] otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SetResult {
    Run(RunSetResult),
    Entry(EntrySetResult),
    Resolved(ResolveResult),
    Vetoed(VetoResult),
}

/// `set {state}` on a proposed entry: the run and its status after the
/// resolution (202 while another proposal still waits, else 102).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResolveResult {
    pub run: String,
    pub status: i64,
}

/// An acceptance refused by a veto (a `readonly` file): the entry failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VetoResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub state: EntryState,
    pub outcome: String,
}

/// `set` on an entry path (anything but `run://`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntrySetParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Entry path; with `pattern` or `bodyFilter`, a pattern.
    pub path: String,
    /// New body. Omitted changes only state, outcome, visibility and attributes.
    pub body: Option<String>,
    #[schemars(with = "Option<EntryState>")]
    pub state: Option<String>,
    #[schemars(with = "Option<Visibility>")]
    pub visibility: Option<String>,
    /// Reason for the state.
    pub outcome: Option<String>,
    /// Merged into the entry's attributes.
    pub attributes: Option<Map<String, Value>>,
    /// Append `body` to the existing body (streaming).
    pub append: Option<bool>,
    /// Treat `path` as a pattern: a bulk update of every match.
    pub pattern: Option<bool>,
    /// Narrow pattern matches by body content (implies a bulk update).
    pub body_filter: Option<String>,
}

/// `set` result for an entry path: `{ok}`, plus `matched` for a bulk update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntrySetResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// How many entries a bulk update changed; absent for a single write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
}

/// `get` params: promotes matches to visible, or sets another visibility.
/// The result is `{"ok": true}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Path or pattern.
    #[schemars(required)]
    pub path: Option<String>,
    /// Narrow matches by body content.
    pub body_filter: Option<String>,
    /// Omitted means `visible`.
    #[schemars(with = "Option<Visibility>")]
    pub visibility: Option<String>,
}

/// `rm` params. The result is `{"ok": true}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RmParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Path or pattern.
    #[schemars(required)]
    pub path: Option<String>,
    /// Narrow matches by body content.
    pub body_filter: Option<String>,
}

/// `cp` and `mv` params. The result is `{"ok": true}`; a missing source is a no-op.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CopyParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Source path.
    #[schemars(required)]
    pub from: Option<String>,
    /// Destination path.
    #[schemars(required)]
    pub to: Option<String>,
    /// The copy's visibility. Omitted keeps the source's.
    #[schemars(with = "Option<Visibility>")]
    pub visibility: Option<String>,
}

/// `update` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The update text.
    #[schemars(required)]
    pub body: Option<String>,
    /// 1xx continues (omitted means 102); 200, 204, 422 and 500 conclude.
    pub status: Option<i64>,
    /// Extra attributes of the update record.
    pub attributes: Option<Map<String, Value>>,
}

/// `update` result: where the record was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// The `log://turn_N/update/…` path.
    pub path: String,
}

/// `getEntries` params: lists without promoting.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetEntriesParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Glob over paths. Omitted means `*`, which matches no `scheme://` path; `**` lists all.
    pub pattern: Option<String>,
    /// Only this scheme.
    pub scheme: Option<String>,
    /// Only this state.
    #[schemars(with = "Option<EntryState>")]
    pub state: Option<String>,
    /// Only this visibility.
    #[schemars(with = "Option<Visibility>")]
    pub visibility: Option<String>,
    /// Narrow matches by body content.
    pub body_filter: Option<String>,
    /// Include each row's `body` (omitted by default).
    pub with_body: Option<bool>,
    /// At most this many rows (at least 1).
    #[schemars(range(min = 1))]
    pub limit: Option<i64>,
    /// Only rows whose `id` is greater (the last `id` seen), ordered by `id` instead of path.
    pub since: Option<i64>,
}

/// One `getEntries` row, ordered by path (by `id` with `since`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntryInfo {
    /// The row's id in this run (grows with each new entry; for `since`).
    pub id: i64,
    pub path: String,
    /// Null for a bare file path.
    pub scheme: Option<String>,
    pub state: EntryState,
    pub outcome: Option<String>,
    #[schemars(with = "Visibility")]
    pub visibility: String,
    /// Estimated tokens of the body.
    pub tokens: i64,
    /// The entry's attributes object.
    pub attributes: Value,
    /// The entry's body, only with `withBody`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A project file rule's visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConstraintVisibility {
    /// Always in view.
    Active,
    /// In view, never written.
    Readonly,
    /// Never in view.
    Ignore,
}

/// `file/constraint` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct FileConstraintParams {
    /// Path or pattern; an absolute one is made relative to the project root.
    #[schemars(required)]
    pub pattern: Option<String>,
    #[schemars(required, with = "Option<ConstraintVisibility>")]
    pub visibility: Option<String>,
}

/// `file/drop` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct FileDropParams {
    /// The rule's pattern.
    #[schemars(required)]
    pub pattern: Option<String>,
}

/// `file/constraint` and `file/drop` result: the pattern as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilePatternResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// Relative to the project root.
    pub pattern: String,
}

/// One `getConstraints` row, ordered by pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConstraintInfo {
    pub pattern: String,
    #[schemars(with = "ConstraintVisibility")]
    pub visibility: String,
}
