//! Session area: `rummy/hello`, `ping`, `discover`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `rummy/hello` params.
// `name` and `projectRoot` are `Option` only so that leaving one out gets
// its own message (`rummy/hello: name is required`) instead of serde's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelloParams {
    /// Project name; projects are found by name.
    #[schemars(required)]
    pub name: Option<String>,
    /// Absolute path of the project's directory.
    #[schemars(required)]
    pub project_root: Option<String>,
    /// The client's config file, stored with the project. Omitted keeps the stored one.
    pub config_path: Option<String>,
    /// The client's protocol version; its MAJOR must match the server's. Omitted skips the check.
    pub client_version: Option<String>,
    /// Extra notifications this connection wants; `"run/changed"` is the one there is.
    pub subscribe: Option<Vec<SubscribeName>>,
}

/// A notification a client may subscribe to in `rummy/hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SubscribeName {
    /// A pulse on every entry write: `{run, runId, path, changeType}`.
    #[serde(rename = "run/changed")]
    RunChanged,
}

/// `rummy/hello` result: the project this connection is now bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelloResult {
    /// The server's protocol version.
    pub rummy_version: String,
    pub project_id: i64,
    /// The root as the client sent it.
    pub project_root: String,
}

/// `ping` result: an empty object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PingResult {}

/// `discover` result: every method and notification with a description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DiscoverResult {
    pub methods: BTreeMap<String, MethodInfo>,
    pub notifications: BTreeMap<String, NotificationInfo>,
}

/// One method as `discover` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MethodInfo {
    pub description: String,
    /// Param name → `"<type> — <meaning>"`; a `?` after the type marks an optional param.
    pub params: BTreeMap<String, String>,
}

/// One notification as `discover` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationInfo {
    pub description: String,
}
