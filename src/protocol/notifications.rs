//! Server-to-client notifications.

use serde::Serialize;
use serde_json::Value;

/// Every notification the server sends, with its description (for discover).
pub const NOTIFICATIONS: [(&str, &str); 2] = [
    (
        "run/state",
        "A run's state after each dispatched command and at each turn's end: \
         {run, turn, status, summary?, history, unknowns, telemetry}.",
    ),
    (
        "run/progress",
        "What a run is doing while the model works: {run, turn, status: thinking|processing|retrying}; \
         retrying adds {attempt, error, delayMs} before each wait between provider calls.",
    ),
];

/// A notification for every client of one project.
#[derive(Debug, Clone)]
pub struct Notification {
    pub method: &'static str,
    pub params: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunProgress<'a> {
    pub run: &'a str,
    pub turn: i64,
    pub status: &'a str,
}
