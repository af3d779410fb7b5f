//! Tool fallbacks: tools that are not RPC methods of their own (`known`,
//! `unknown`, `think`) are callable by name and run as the model would
//! run them (spec 03 §2.2). Each answers `{"status": "ok"}`.
//!
//! `path` and `run` are `Option` so that leaving one out gets the
//! handler's own message (`path is required` is checked first); the
//! schema still marks both required.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Params of a tool fallback method.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolCallParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The tool's target path (for `known`/`unknown`, the entry; a path without a scheme gets the tool's).
    #[schemars(required)]
    pub path: Option<String>,
    /// Entry content; omitted means empty.
    pub body: Option<String>,
    /// Destination path, recorded with the call.
    pub to: Option<String>,
    /// Extra attributes: recorded with the call, and stored on a known or unknown entry.
    pub attributes: Option<Map<String, Value>>,
}
