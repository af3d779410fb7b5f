//! OpenAI-compatible chat completions (OpenAI, llama.cpp, vLLM ...).

use super::{looks_like_context_exceeded, ChatMessage, Completion, LlmError, Provider};
use crate::config::OpenAiSettings;
use crate::store::TurnUsage;
use serde_json::{json, Value};
use std::time::Duration;

const NAME: &str = "OpenAI-compatible";

pub struct OpenAi {
    base: String,
    api_key: Option<String>,
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
            timeout,
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    fn network(&self, e: reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout {
                provider: NAME,
                seconds: self.timeout.as_secs(),
            }
        } else {
            LlmError::Network {
                provider: NAME,
                message: e.to_string(),
            }
        }
    }
}

fn as_i64(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// First non-zero number among the given spots of a usage object.
fn first_number(usage: &Value, pointers: &[&str]) -> i64 {
    pointers
        .iter()
        .map(|p| as_i64(usage.pointer(p)))
        .find(|n| *n > 0)
        .unwrap_or(0)
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

/// Pulls content, reasoning, usage and model out of a completion body.
pub fn parse_completion(body: &Value) -> Result<Completion, LlmError> {
    let message = body
        .pointer("/choices/0/message")
        .ok_or_else(|| LlmError::Malformed {
            provider: NAME,
            message: "no choices[0].message in the reply".into(),
        })?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut reasoning: Vec<&str> = Vec::new();
    for key in ["reasoning_content", "reasoning", "thinking"] {
        if let Some(text) = message.get(key).and_then(Value::as_str) {
            if !text.is_empty() && !reasoning.contains(&text) {
                reasoning.push(text);
            }
        }
    }
    Ok(Completion {
        content,
        reasoning: (!reasoning.is_empty()).then(|| reasoning.join("\n")),
        usage: body.get("usage").map(parse_usage).unwrap_or_default(),
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

    async fn complete(
        &self,
        model: &str,
        messages: &[ChatMessage],
        temperature: Option<f64>,
    ) -> Result<Completion, LlmError> {
        let mut payload = json!({ "model": model, "messages": messages, "think": true });
        if let Some(t) = temperature {
            payload["temperature"] = json!(t);
        }
        let response = self
            .request(self.http.post(format!("{}/v1/chat/completions", self.base)))
            .timeout(self.timeout)
            .json(&payload)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.network(e))?;
        if !status.is_success() {
            if looks_like_context_exceeded(&text) {
                return Err(LlmError::ContextExceeded(format!(
                    "{NAME} API error: {} - {text}",
                    status.as_u16()
                )));
            }
            return Err(LlmError::Http {
                provider: NAME,
                status: status.as_u16(),
                body: text,
            });
        }
        let body: Value = serde_json::from_str(&text).map_err(|e| LlmError::Malformed {
            provider: NAME,
            message: e.to_string(),
        })?;
        parse_completion(&body)
    }

    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError> {
        // llama.cpp reports the loaded window at /props.
        if let Ok(r) = self
            .request(self.http.get(format!("{}/props", self.base)))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            if r.status().is_success() {
                if let Ok(v) = r.json::<Value>().await {
                    if let Some(n) = v
                        .pointer("/default_generation_settings/n_ctx")
                        .and_then(Value::as_i64)
                    {
                        return Ok(Some(n));
                    }
                }
            }
        }
        let r = self
            .request(self.http.get(format!("{}/v1/models", self.base)))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.network(e))?;
        if !r.status().is_success() {
            return Err(LlmError::Http {
                provider: NAME,
                status: r.status().as_u16(),
                body: format!("/v1/models failed. Is the server running at {}?", self.base),
            });
        }
        let v: Value = r.json().await.map_err(|e| LlmError::Malformed {
            provider: NAME,
            message: e.to_string(),
        })?;
        let models = v.get("data").and_then(Value::as_array);
        let chosen = models.and_then(|list| {
            list.iter()
                .find(|m| m.get("id").and_then(Value::as_str) == Some(model))
                .or_else(|| list.first())
        });
        Ok(chosen.and_then(|m| {
            m.pointer("/meta/n_ctx_train")
                .or_else(|| m.get("context_length"))
                .and_then(Value::as_i64)
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
        let c = parse_completion(&body).unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.reasoning.as_deref(), Some("r"));
        assert_eq!(c.usage.cached_tokens, 4);
        assert_eq!(c.usage.cost, 0.5);
        assert_eq!(c.model.as_deref(), Some("m1"));
        assert!(parse_completion(&json!({"choices": []})).is_err());
    }

    #[test]
    fn missing_usage_is_zero() {
        let c = parse_completion(&json!({"choices": [{"message": {"content": "x"}}]})).unwrap();
        assert_eq!(c.usage, TurnUsage::default());
    }
}
