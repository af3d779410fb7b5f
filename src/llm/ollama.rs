//! Ollama's native chat API: `POST {base}/api/chat` with `stream: false`,
//! the window from `POST {base}/api/show`.
//!
//! Ollama silently cuts a prompt to its loaded window (`num_ctx`, small by
//! default), so every request sends `options.num_ctx` = the window the
//! packet was budgeted for.

use super::errors::{ErrorStyle, LlmError};
use super::http::{as_i64, discovery_timeout, exchange, join_reasoning};
use super::{Completion, CompletionRequest, Provider};
use crate::config::OllamaSettings;
use crate::store::TurnUsage;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const STYLE: ErrorStyle = ErrorStyle {
    label: "Ollama",
    key_setting: None,
};

pub struct Ollama {
    base: String,
    timeout: Duration,
    http: reqwest::Client,
    /// Models that refused `think: true` ("does not support thinking"):
    /// a cache of the server's answer, not run state.
    no_think: Mutex<HashSet<String>>,
}

impl Ollama {
    pub fn new(settings: OllamaSettings, timeout: Duration) -> Ollama {
        let trimmed = settings.base_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string();
        Ollama {
            base,
            timeout,
            http: reqwest::Client::new(),
            no_think: Mutex::new(HashSet::new()),
        }
    }

    fn no_think(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set only ever grows; a panic elsewhere cannot leave it torn.
        self.no_think
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn chat(&self, request: &CompletionRequest<'_>, think: bool) -> Result<Value, LlmError> {
        let mut options = json!({});
        if let Some(t) = request.temperature {
            options["temperature"] = json!(t);
        }
        if let Some(n) = request.context_size {
            options["num_ctx"] = json!(n);
        }
        let mut payload = json!({
            "model": request.model,
            "messages": request.messages,
            "stream": false,
            "options": options,
        });
        if think {
            payload["think"] = json!(true);
        }
        let http = self
            .http
            .post(format!("{}/api/chat", self.base))
            .json(&payload);
        exchange(STYLE, http, self.timeout).await
    }
}

/// Reads a non-streamed `/api/chat` reply.
pub fn parse_chat(body: &Value) -> Result<Completion, LlmError> {
    if let Some(e) = body.get("error").and_then(Value::as_str) {
        return Err(STYLE.classify(super::errors::HttpFailure {
            status: 500,
            body: e,
            retry_after: None,
        }));
    }
    let message = body
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            LlmError::malformed(STYLE.label, "no message in the reply", &body.to_string())
        })?;
    let prompt = as_i64(body.get("prompt_eval_count"));
    let completion = as_i64(body.get("eval_count"));
    Ok(Completion {
        content: message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        reasoning: join_reasoning(message.get("thinking").and_then(Value::as_str)),
        usage: TurnUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..TurnUsage::default()
        },
        model: body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The window `/api/show` reports: the Modelfile's `num_ctx` when the
/// operator set one, else the model's trained `*.context_length`.
pub fn parse_show(body: &Value) -> Option<i64> {
    let configured = body
        .get("parameters")
        .and_then(Value::as_str)
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut parts = line.split_whitespace();
                (parts.next() == Some("num_ctx"))
                    .then(|| parts.next()?.parse::<i64>().ok())
                    .flatten()
            })
        });
    let trained = body
        .get("model_info")
        .and_then(Value::as_object)
        .and_then(|info| {
            info.iter()
                .find(|(k, _)| k.ends_with(".context_length"))
                .and_then(|(_, v)| v.as_i64())
        });
    configured.or(trained).filter(|n| *n > 0)
}

#[async_trait::async_trait]
impl Provider for Ollama {
    fn name(&self) -> &'static str {
        "ollama"
    }

    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError> {
        let think = !self.no_think().contains(request.model);
        let body = match self.chat(request, think).await {
            Err(LlmError::Client {
                status: 400,
                message,
            }) if think && message.contains("does not support thinking") => {
                tracing::info!(
                    model = request.model,
                    "Ollama model does not think; asking without think"
                );
                self.no_think().insert(request.model.to_string());
                self.chat(request, false).await?
            }
            other => other?,
        };
        parse_chat(&body)
    }

    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError> {
        let request = self
            .http
            .post(format!("{}/api/show", self.base))
            .json(&json!({ "model": model }));
        let shown = exchange(STYLE, request, discovery_timeout(self.timeout))
            .await
            .map_err(|e| match e {
                LlmError::Client { status, message } => LlmError::Client {
                    status,
                    message: format!(
                        "{message} (POST /api/show failed. Is Ollama running at {}?)",
                        self.base
                    ),
                },
                other => other,
            })?;
        match parse_show(&shown) {
            Some(n) => Ok(Some(n)),
            None => Err(LlmError::malformed(
                STYLE.label,
                format!("/api/show returned no context_length for model '{model}'"),
                &shown.to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_reply() {
        let body = json!({
            "model": "qwen3:8b", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "hi", "thinking": "hmm"},
            "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 4
        });
        let c = parse_chat(&body).unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.reasoning.as_deref(), Some("hmm"));
        assert_eq!(
            (
                c.usage.prompt_tokens,
                c.usage.completion_tokens,
                c.usage.total_tokens
            ),
            (26, 4, 30)
        );
        let bare = parse_chat(&json!({"message": {"role": "assistant", "content": "x"}})).unwrap();
        assert_eq!(bare.usage, TurnUsage::default());
        assert!(parse_chat(&json!({"done": true})).is_err());
    }

    #[test]
    fn show_reply() {
        let body = json!({"parameters": "stop \"<|im_end|>\"\nnum_ctx                        8192",
                          "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960}});
        assert_eq!(parse_show(&body), Some(8192));
        let body = json!({"model_info": {"llama.context_length": 131072}});
        assert_eq!(parse_show(&body), Some(131072));
        assert_eq!(parse_show(&json!({"model_info": {}})), None);
    }
}
