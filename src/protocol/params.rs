//! Request parameter shapes, checked by serde before any handler runs.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloParams {
    pub name: Option<String>,
    pub project_root: Option<String>,
    pub config_path: Option<String>,
    pub client_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddModelParams {
    pub alias: String,
    pub actual: String,
    pub context_length: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AliasParams {
    pub alias: String,
}

#[derive(Debug, Deserialize)]
pub struct RunParams {
    pub run: String,
}

/// `set` on `run://` (the run lifecycle).
#[derive(Debug, Deserialize)]
pub struct SetParams {
    pub path: Option<String>,
    pub body: Option<String>,
    pub state: Option<String>,
    pub outcome: Option<String>,
    #[serde(default)]
    pub attributes: Option<serde_json::Map<String, Value>>,
}

/// The legacy `ask` / `act` verbs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyRunParams {
    pub prompt: String,
    pub model: Option<String>,
    pub run: Option<String>,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    pub no_repo: Option<bool>,
    pub no_interaction: Option<bool>,
    pub no_web: Option<bool>,
    pub no_proposals: Option<bool>,
    pub fork: Option<bool>,
}

/// `set` on an entry path (everything but `run://`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntrySetParams {
    pub run: Option<String>,
    pub path: String,
    pub body: Option<String>,
    pub state: Option<String>,
    pub visibility: Option<String>,
    pub outcome: Option<String>,
    pub attributes: Option<serde_json::Map<String, Value>>,
    pub append: Option<bool>,
    pub pattern: Option<bool>,
    pub body_filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryGetParams {
    pub run: Option<String>,
    pub path: Option<String>,
    pub body_filter: Option<String>,
    pub visibility: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRmParams {
    pub run: Option<String>,
    pub path: Option<String>,
    pub body_filter: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EntryMoveParams {
    pub run: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub visibility: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateParams {
    pub run: Option<String>,
    pub body: Option<String>,
    pub status: Option<i64>,
    pub attributes: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEntriesParams {
    pub run: Option<String>,
    pub pattern: Option<String>,
    pub scheme: Option<String>,
    pub state: Option<String>,
    pub visibility: Option<String>,
    pub body_filter: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConstraintParams {
    pub pattern: Option<String>,
    pub visibility: Option<String>,
}
