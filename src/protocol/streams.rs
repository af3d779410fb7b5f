//! Streams area: a client running a proposed command streams its output
//! into the run (`stream`) and reports how it ended (`stream/completed`,
//! `stream/aborted`, `stream/cancel`).
//!
//! Params are optional in the Rust types (and required in the schema) so
//! a missing one gets upstream's own message (`channel is required
//! (numeric)`, ...), in upstream's order.
//!
//! `path` is always the command's `log://turn_N/{action}/…` entry; the
//! output channels are derived from it (`{action}://turn_N/…_{channel}`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `stream` params: one chunk of a channel's output. The result is `{"status": "ok"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The command's log entry.
    #[schemars(required)]
    pub path: Option<String>,
    /// 1 for stdout, 2 for stderr.
    #[schemars(required)]
    pub channel: Option<i64>,
    /// Text appended to the channel's entry.
    #[schemars(required)]
    pub chunk: Option<String>,
}

/// `stream/completed` params: the command exited.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamCompletedParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The command's log entry.
    #[schemars(required)]
    pub path: Option<String>,
    /// Omitted means 0; non-zero marks the channels failed (`exit:<code>`).
    pub exit_code: Option<i64>,
    /// How long the command ran, as shown in the log entry (e.g. `0.1s`).
    pub duration: Option<String>,
}

/// `stream/completed` and `stream/cancel` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamFinishedResult {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// How many output channels were closed.
    pub channels: i64,
}

/// `stream/aborted` params: the client killed the command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamAbortedParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The command's log entry.
    #[schemars(required)]
    pub path: Option<String>,
    /// Why; omitted records `aborted`.
    pub reason: Option<String>,
    /// How long the command ran.
    pub duration: Option<String>,
}

/// `stream/aborted` result (upstream answers `status`, not `ok`, here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamAbortedResult {
    pub status: super::StatusOk,
    /// How many output channels were closed.
    pub channels: i64,
}

/// `stream/cancel` params: the user cancelled the command; every client
/// of the project then gets `stream/cancelled`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamCancelParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// The command's log entry.
    #[schemars(required)]
    pub path: Option<String>,
    /// Why; omitted records `cancelled`.
    pub reason: Option<String>,
}
