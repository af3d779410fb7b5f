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
pub mod skills;
pub mod streams;
pub mod tools;

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

/// An entry's lifecycle state: the store's enum is the wire type too.
pub use crate::store::EntryState;

/// How an entry is shown to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Visible,
    Summarized,
    Archived,
}

#[cfg(test)]
mod wire_tests {
    //! Byte-for-byte shapes of replies and notifications clients already
    //! parse (spec 03 §§1–3, §8): key names, order, and which keys are left out.
    use super::entries::EntrySetResult;
    use super::notifications::{
        ContextBucket, ProgressStatus, RunLogItem, RunProgressNotification, RunStateNotification,
        RunTelemetry, UnknownItem,
    };
    use super::runs::RunSetResult;
    use super::session::HelloResult;
    use super::*;

    fn text<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn replies_keep_their_wire_shape() {
        let hello = HelloResult {
            rummy_version: PROTOCOL_VERSION.into(),
            project_id: 1,
            project_root: "/abs/proj".into(),
        };
        assert_eq!(
            text(&hello),
            r#"{"rummyVersion":"2.0.0","projectId":1,"projectRoot":"/abs/proj"}"#
        );
        assert_eq!(text(&StatusOkResult::default()), r#"{"status":"ok"}"#);
        assert_eq!(text(&OkResult::default()), r#"{"ok":true}"#);
        let single = EntrySetResult {
            ok: true,
            matched: None,
        };
        assert_eq!(text(&single), r#"{"ok":true}"#);
        let bulk = EntrySetResult {
            ok: true,
            matched: Some(3),
        };
        assert_eq!(text(&bulk), r#"{"ok":true,"matched":3}"#);
        let run = RunSetResult {
            ok: true,
            alias: "fake_1".into(),
        };
        assert_eq!(text(&run), r#"{"ok":true,"alias":"fake_1"}"#);
    }

    #[test]
    fn progress_adds_retry_fields_only_when_retrying() {
        let mut p = RunProgressNotification {
            run: "r".into(),
            turn: 1,
            status: ProgressStatus::Thinking,
            attempt: None,
            error: None,
            delay_ms: None,
        };
        assert_eq!(text(&p), r#"{"run":"r","turn":1,"status":"thinking"}"#);
        p.status = ProgressStatus::Retrying;
        p.attempt = Some(2);
        p.error = Some("429".into());
        p.delay_ms = Some(1000);
        assert_eq!(
            text(&p),
            r#"{"run":"r","turn":1,"status":"retrying","attempt":2,"error":"429","delayMs":1000}"#
        );
    }

    #[test]
    fn run_state_leaves_out_an_absent_summary_and_temperature() {
        let telemetry = RunTelemetry {
            model_alias: "fake".into(),
            model: "fake-model".into(),
            temperature: None,
            context_size: Some(32768),
            context_tokens: 3001,
            ceiling: Some(29491),
            token_usage: 3001,
            tokens_free: Some(26490),
            prompt_tokens: 1500,
            cached_tokens: 0,
            completion_tokens: 40,
            reasoning_tokens: 0,
            total_tokens: 1540,
            cost: 0.0,
            context_distribution: vec![ContextBucket {
                bucket: "data".into(),
                tokens: 3,
                entries: 1,
            }],
        };
        let state = RunStateNotification {
            run: "fake_1".into(),
            turn: 1,
            status: 102,
            summary: None,
            history: vec![],
            unknowns: vec![],
            telemetry: telemetry.clone(),
        };
        // The frame encoded straight from the payload is the frame of its
        // `Value`, byte for byte, with every kind of field present.
        let full = RunStateNotification {
            summary: Some("done \"quoted\" \u{e9}".into()),
            history: vec![RunLogItem {
                tool: Some("set".into()),
                state: crate::store::EntryState::Failed,
                outcome: Some("status:500".into()),
                path: "log://turn_1/set/known%3A//a".into(),
                body: "line\nnext\t\u{1f600}".into(),
                turn: 1,
                attributes: "{\"path\":\"known://a\"}".into(),
            }],
            unknowns: vec![UnknownItem {
                path: "unknown://q".into(),
                body: "why?".into(),
            }],
            telemetry: RunTelemetry {
                temperature: Some(0.7),
                cost: 0.00123,
                ..telemetry
            },
            ..state.clone()
        };
        for s in [&state, &full] {
            let value = serde_json::to_value(s).unwrap();
            assert_eq!(
                jsonrpc::payload_frame("run/state", s).unwrap(),
                jsonrpc::notification_frame("run/state", &value)
            );
        }
        assert_eq!(
            text(&state),
            concat!(
                r#"{"run":"fake_1","turn":1,"status":102,"history":[],"unknowns":[],"telemetry":{"#,
                r#""modelAlias":"fake","model":"fake-model","context_size":32768,"context_tokens":3001,"#,
                r#""ceiling":29491,"token_usage":3001,"tokens_free":26490,"prompt_tokens":1500,"#,
                r#""cached_tokens":0,"completion_tokens":40,"reasoning_tokens":0,"total_tokens":1540,"#,
                r#""cost":0.0,"context_distribution":[{"bucket":"data","tokens":3,"entries":1}]}}"#
            )
        );
    }
}
