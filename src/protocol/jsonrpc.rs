//! JSON-RPC 2.0 framing: requests in, results, errors and notifications out.

use serde::Serialize;
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// An error object as sent to clients (never with `data`).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
}

/// One parsed inbound frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A call expecting a reply.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A call without id: executed, never answered.
    Notification { method: String, params: Value },
    /// Unusable frame: answer with this error (id null when unknown).
    Invalid { id: Value, error: RpcError },
}

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Inbound {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Inbound::Invalid {
                id: Value::Null,
                error: RpcError::new(PARSE_ERROR, format!("Parse error: {e}")),
            }
        }
    };
    let Value::Object(mut obj) = value else {
        let message = if value.is_array() {
            "Invalid Request: batch requests are not supported; send one request per frame"
        } else {
            "Invalid Request: expected a JSON object"
        };
        return Inbound::Invalid {
            id: Value::Null,
            error: RpcError::new(INVALID_REQUEST, message),
        };
    };
    let id = obj.remove("id");
    let reply_id = match &id {
        Some(v @ (Value::Number(_) | Value::String(_) | Value::Null)) => v.clone(),
        _ => Value::Null,
    };
    let invalid = |message: &str| Inbound::Invalid {
        id: reply_id.clone(),
        error: RpcError::new(INVALID_REQUEST, format!("Invalid Request: {message}")),
    };
    if let Some(v) = obj.get("jsonrpc") {
        if v != "2.0" {
            return invalid("jsonrpc must be \"2.0\"");
        }
    }
    if matches!(
        id,
        Some(Value::Bool(_) | Value::Array(_) | Value::Object(_))
    ) {
        return invalid("id must be a number, a string or null");
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(_) => return invalid("method must be a non-empty string"),
        None => return invalid("method is required"),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => json!({}),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Inbound::Invalid {
                id: reply_id,
                error: RpcError::invalid_params("params must be an object"),
            }
        }
    };
    match id {
        Some(id) => Inbound::Request { id, method, params },
        None => Inbound::Notification { method, params },
    }
}

pub fn result_frame(id: &Value, result: &Value) -> String {
    json!({ "jsonrpc": "2.0", "result": result, "id": id }).to_string()
}

pub fn error_frame(id: &Value, error: &RpcError) -> String {
    json!({ "jsonrpc": "2.0", "error": error, "id": id }).to_string()
}

/// A notification frame straight from its typed payload: the same text
/// `notification_frame` makes from the payload's `Value` (object keys keep
/// their order, `preserve_order`), without building that `Value` first.
pub fn payload_frame<P: serde::Serialize>(
    method: &str,
    params: &P,
) -> Result<String, serde_json::Error> {
    // Serialized through borrows: `json!` would first deep-copy `params`,
    // and a `run/state` carries the run's whole history.
    #[derive(serde::Serialize)]
    struct Frame<'a, P> {
        jsonrpc: &'static str,
        method: &'a str,
        params: &'a P,
    }
    serde_json::to_string(&Frame {
        jsonrpc: "2.0",
        method,
        params,
    })
}

pub fn notification_frame(method: &str, params: &Value) -> String {
    match payload_frame(method, params) {
        Ok(text) => text,
        // A `Value` always serializes; kept total rather than trusted.
        Err(e) => {
            tracing::error!(method, "could not encode a notification: {e}");
            json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(i: Inbound) -> i64 {
        match i {
            Inbound::Invalid { error, .. } => error.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_notification_frame_is_the_envelope_around_its_params() {
        let params = json!({"run": "r", "history": [{"body": "a\"b\n", "turn": 1}], "z": null});
        let frame = notification_frame("run/state", &params);
        assert_eq!(
            frame,
            r#"{"jsonrpc":"2.0","method":"run/state","params":{"run":"r","history":[{"body":"a\"b\n","turn":1}],"z":null}}"#
        );
        let back: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(back["params"], params);
    }

    #[test]
    fn frames() {
        assert_eq!(code(parse_frame("{nope")), PARSE_ERROR);
        assert_eq!(code(parse_frame("[1,2]")), INVALID_REQUEST);
        assert_eq!(code(parse_frame("42")), INVALID_REQUEST);
        assert_eq!(code(parse_frame(r#"{"id":1}"#)), INVALID_REQUEST);
        assert_eq!(
            code(parse_frame(r#"{"id":1,"method":"x","params":[1]}"#)),
            INVALID_PARAMS
        );
        assert_eq!(
            code(parse_frame(r#"{"id":{},"method":"x"}"#)),
            INVALID_REQUEST
        );
        assert_eq!(
            parse_frame(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            Inbound::Request {
                id: json!("a"),
                method: "ping".into(),
                params: json!({})
            }
        );
        assert!(matches!(
            parse_frame(r#"{"method":"ping"}"#),
            Inbound::Notification { .. }
        ));
    }
}
