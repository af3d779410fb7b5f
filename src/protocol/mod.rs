//! Wire types: JSON-RPC framing and one module per protocol area, plain
//! serde structs with no behaviour. Handlers deserialize their params into
//! these types and reply with them; `discover` and `rummy schema` are
//! derived from the same types (see [`schema`]), so neither can drift from
//! what the server sends.
//!
//! Field names follow the wire byte for byte: upstream mixes camelCase
//! (`projectRoot`, `contextLimit`) and snake_case (`context_length`,
//! `prompt_tokens`), so each struct renames only what the wire renames.

pub mod entries;
pub mod jsonrpc;
pub mod models;
pub mod notifications;
pub mod runs;
pub mod schema;
pub mod session;
pub mod streams;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The protocol version clients must match on MAJOR.
pub const PROTOCOL_VERSION: &str = "2.0.0";

/// `{"ok": true}`: the reply of most entry writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OkResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
}

impl Default for OkResult {
    fn default() -> Self {
        OkResult { ok: true }
    }
}

/// `{"status": "ok"}`: the reply of the methods upstream answers that way
/// (kept byte for byte, distinct from [`OkResult`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatusOkResult {
    pub status: StatusOk,
}

/// The single value `"ok"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StatusOk {
    #[default]
    #[serde(rename = "ok")]
    Ok,
}

/// A method that takes no params (any object is accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoParams {}

/// An entry's lifecycle state on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    Proposed,
    Streaming,
    Resolved,
    Failed,
    Cancelled,
}

/// How an entry is shown to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Visible,
    Summarized,
    Archived,
}
