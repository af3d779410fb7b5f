//! OpenAI-compatible chat completions: OpenAI itself, llama.cpp's server,
//! vLLM and anything else serving `POST /v1/chat/completions`.

use super::errors::{ErrorStyle, LlmError};
use super::http::{as_i64, discovery_timeout, exchange, first_number, join_reasoning};
use super::{Completion, CompletionRequest, Provider};
use crate::config::OpenAiSettings;
use crate::store::TurnUsage;
use serde_json::{json, Value};
use std::time::Duration;

const STYLE: ErrorStyle = ErrorStyle {
    label: "OpenAI-compatible",
    key_setting: None,
};

pub struct OpenAi {
    /// The server root, without a trailing `/v1`.
    base: String,
    api_key: Option<String>,
    think: bool,
    timeout: Duration,
    http: reqwest::Client,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings, timeout: Duration) -> OpenAi {
        let trimmed = settings.base_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string();
        OpenAi {
            base,
            api_key: settings.api_key,
            think: settings.think,
            timeout,
            http: reqwest::Client::new(),
        }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// llama.cpp reports the loaded window at `/props`; anything else
    /// answering there is ignored.
    async fn llama_cpp_window(&self) -> Option<i64> {
        let request = self.authorized(self.http.get(format!("{}/props", self.base)));
        let props = exchange(STYLE, request, discovery_timeout(self.timeout))
            .await
            .ok()?;
        props
            .pointer("/default_generation_settings/n_ctx")
            .and_then(Value::as_i64)
            .filter(|n| *n > 0)
    }
}

/// Reads usage as upstream's telemetry does (spec 03 §6.5).
pub fn parse_usage(usage: &Value) -> TurnUsage {
    TurnUsage {
        context_tokens: 0,
        prompt_tokens: as_i64(usage.get("prompt_tokens")),
        completion_tokens: as_i64(usage.get("completion_tokens")),
        total_tokens: as_i64(usage.get("total_tokens")),
        cached_tokens: first_number(
            usage,
            &[
                "/cached_tokens",
                "/prompt_tokens_details/cached_tokens",
                "/input_tokens_details/cached_tokens",
                "/cache_read_input_tokens",
            ],
        ),
        reasoning_tokens: first_number(
            usage,
            &[
                "/reasoning_tokens",
                "/completion_tokens_details/reasoning_tokens",
                "/output_tokens_details/reasoning_tokens",
            ],
        ),
        cost: usage.get("cost").and_then(Value::as_f64).unwrap_or(0.0),
        reasoning_content: None,
    }
}

/// Pulls content, reasoning, usage and model out of a chat-completions
/// body (shared with OpenRouter, which adds `reasoning_details`).
pub fn parse_completion(style: ErrorStyle, body: &Value) -> Result<Completion, LlmError> {
    if let Some(e) = style
        .embedded(body)
        .filter(|_| body.get("choices").is_none())
    {
        return Err(e);
    }
    let message = body
        .pointer("/choices/0/message")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            LlmError::malformed(style.label, "no choices[0].message", &body.to_string())
        })?;
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    let details = message
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("text").or_else(|| d.get("summary")))
        .filter_map(Value::as_str);
    let reasoning = join_reasoning(
        ["reasoning_content", "reasoning", "thinking"]
            .into_iter()
            .filter_map(text)
            .chain(details),
    );
    Ok(Completion {
        content: text("content").unwrap_or_default().to_string(),
        reasoning,
        usage: body
            .get("usage")
            .filter(|u| u.is_object())
            .map(parse_usage)
            .unwrap_or_default(),
        model: body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[async_trait::async_trait]
impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError> {
        let mut payload = json!({ "model": request.model, "messages": request.messages });
        if self.think {
            payload["think"] = json!(true);
        }
        if let Some(t) = request.temperature {
            payload["temperature"] = json!(t);
        }
        let http = self
            .authorized(self.http.post(format!("{}/v1/chat/completions", self.base)))
            .json(&payload);
        let body = exchange(STYLE, http, self.timeout).await?;
        parse_completion(STYLE, &body)
    }

    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError> {
        if let Some(n) = self.llama_cpp_window().await {
            return Ok(Some(n));
        }
        let request = self.authorized(self.http.get(format!("{}/v1/models", self.base)));
        let listing = exchange(STYLE, request, discovery_timeout(self.timeout))
            .await
            .map_err(|e| match e {
                LlmError::Client { status, message } => LlmError::Client {
                    status,
                    message: format!(
                        "{message} (GET /v1/models failed. Is the server running at {}?)",
                        self.base
                    ),
                },
                other => other,
            })?;
        let models = listing.get("data").and_then(Value::as_array);
        // Upstream takes the first entry; a server hosting several models
        // is better served by the one asked for.
        let chosen = models.and_then(|list| {
            list.iter()
                .find(|m| m.get("id").and_then(Value::as_str) == Some(model))
                .or_else(|| list.first())
        });
        Ok(chosen.and_then(|m| {
            ["/meta/n_ctx_train", "/context_length", "/max_model_len"]
                .iter()
                .find_map(|p| m.pointer(p).and_then(Value::as_i64))
                .filter(|n| *n > 0)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_fields() {
        let body = json!({
            "model": "m1",
            "choices": [{"message": {"content": "hi", "reasoning_content": "r", "reasoning": "r"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                      "prompt_tokens_details": {"cached_tokens": 4}, "cost": 0.5}
        });
        let c = parse_completion(STYLE, &body).unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.reasoning.as_deref(), Some("r"));
        assert_eq!(c.usage.cached_tokens, 4);
        assert_eq!(c.usage.cost, 0.5);
        assert_eq!(c.model.as_deref(), Some("m1"));
        let e = parse_completion(STYLE, &json!({"choices": []})).unwrap_err();
        assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
    }

    #[test]
    fn missing_usage_is_zero() {
        let c =
            parse_completion(STYLE, &json!({"choices": [{"message": {"content": "x"}}]})).unwrap();
        assert_eq!(c.usage, TurnUsage::default());
        let c = parse_completion(
            STYLE,
            &json!({"choices": [{"message": {"content": null}}], "usage": null}),
        )
        .unwrap();
        assert_eq!(c.content, "");
    }

    #[test]
    fn reasoning_details_join_the_reasoning() {
        let body = json!({"choices": [{"message": {"content": "x", "reasoning": "a",
            "reasoning_details": [{"type": "reasoning.text", "text": "a"}, {"type": "reasoning.summary", "summary": "b"}]}}]});
        let c = parse_completion(STYLE, &body).unwrap();
        assert_eq!(c.reasoning.as_deref(), Some("a\nb"));
    }

    #[test]
    fn an_error_inside_a_200_is_an_error() {
        let body = json!({"error": {"code": 503, "message": "no capacity"}});
        let e = parse_completion(STYLE, &body).unwrap_err();
        assert_eq!(e.class(), crate::llm::ErrorClass::Unavailable);
    }
}
