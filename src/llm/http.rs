//! The one HTTP exchange every provider makes: send, read the whole body,
//! classify a failure, parse JSON. Dropping the future drops the request.

use super::errors::{retry_after, ErrorStyle, HttpFailure, LlmError};
use serde_json::Value;
use std::time::Duration;

/// Sends a request and returns the JSON of a 2xx reply.
pub async fn exchange(
    style: ErrorStyle,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<Value, LlmError> {
    let response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| LlmError::transport(style.label, &e, timeout))?;
    let status = response.status();
    let wait = retry_after(response.headers());
    let text = response
        .text()
        .await
        .map_err(|e| LlmError::transport(style.label, &e, timeout))?;
    if !status.is_success() {
        return Err(style.classify(HttpFailure {
            status: status.as_u16(),
            body: &text,
            retry_after: wait,
        }));
    }
    serde_json::from_str(&text).map_err(|e| LlmError::malformed(style.label, e, &text))
}

/// Context-window look-ups are small; they should not wait as long as a
/// completion may.
pub fn discovery_timeout(fetch_timeout: Duration) -> Duration {
    fetch_timeout.min(Duration::from_secs(10))
}

pub fn as_i64(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// First non-zero number among the given spots of a usage object.
pub fn first_number(usage: &Value, pointers: &[&str]) -> i64 {
    pointers
        .iter()
        .map(|p| as_i64(usage.pointer(p)))
        .find(|n| *n > 0)
        .unwrap_or(0)
}

/// Joins reasoning fragments the way upstream does: truthy, de-duplicated,
/// newline-separated; `None` when there are none.
pub fn join_reasoning<'a>(parts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut kept: Vec<&str> = Vec::new();
    for part in parts {
        if !part.is_empty() && !kept.contains(&part) {
            kept.push(part);
        }
    }
    (!kept.is_empty()).then(|| kept.join("\n"))
}
