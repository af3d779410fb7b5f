//! xAI (Grok) through its responses API: `POST $XAI_BASE_URL` (the
//! `.../v1/responses` endpoint itself) with `input` instead of `messages`,
//! and `output[]` items instead of `choices`.

use super::errors::{ErrorStyle, LlmError};
use super::http::{as_i64, discovery_timeout, exchange, join_reasoning};
use super::{Completion, CompletionRequest, Provider};
use crate::config::XaiSettings;
use crate::store::TurnUsage;
use serde_json::{json, Value};
use std::time::Duration;

const STYLE: ErrorStyle = ErrorStyle {
    label: "xAI",
    key_setting: Some("XAI_API_KEY"),
};

/// `usage.cost_in_usd_ticks` per US dollar.
const TICKS_PER_USD: f64 = 1e10;

pub struct Xai {
    endpoint: String,
    api_key: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl Xai {
    /// `settings.api_key` is required; without it the registry keeps the
    /// provider inert and never builds one.
    pub fn new(settings: XaiSettings, timeout: Duration) -> Xai {
        let base = settings.base_url.trim_end_matches('/');
        // Upstream posts to XAI_BASE_URL verbatim; an API root such as
        // `https://api.x.ai/v1` would then 404, so it gets `/responses`.
        let endpoint = if base.ends_with("/responses") {
            base.to_string()
        } else {
            format!("{base}/responses")
        };
        Xai {
            endpoint,
            api_key: settings.api_key.unwrap_or_default(),
            timeout,
            http: reqwest::Client::new(),
        }
    }

    /// Another endpoint beside `/responses` (e.g. `models`).
    fn sibling(&self, tail: &str) -> Option<String> {
        self.endpoint
            .strip_suffix("/responses")
            .map(|root| format!("{root}/{tail}"))
    }

    async fn get(&self, url: String) -> Result<Value, LlmError> {
        let request = self.http.get(url).bearer_auth(&self.api_key);
        exchange(STYLE, request, discovery_timeout(self.timeout)).await
    }
}

/// The text of a content value: a string, or the text parts of an array.
fn text_of(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| {
                    matches!(
                        p.get("type").and_then(Value::as_str),
                        Some("text" | "output_text" | "reasoning_text" | "summary_text")
                    )
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// Reads a responses-API body.
pub fn parse_response(body: &Value) -> Result<Completion, LlmError> {
    let failed = body.get("status").and_then(Value::as_str) == Some("failed");
    let Some(output) = body
        .get("output")
        .and_then(Value::as_array)
        .filter(|_| !failed)
    else {
        return Err(STYLE.embedded(body).unwrap_or_else(|| {
            LlmError::malformed(STYLE.label, "no output[] in the reply", &body.to_string())
        }));
    };
    let mut content: Vec<String> = Vec::new();
    let mut reasoning: Vec<String> = Vec::new();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => content.extend(text_of(item.get("content"))),
            Some("reasoning") => {
                reasoning.extend(text_of(item.get("content")));
                reasoning.extend(text_of(item.get("summary")));
            }
            _ => {}
        }
    }
    let usage = body.get("usage").filter(|u| u.is_object());
    let number = |p: &str| as_i64(usage.and_then(|u| u.pointer(p)));
    let (input, output_tokens) = (number("/input_tokens"), number("/output_tokens"));
    Ok(Completion {
        content: content.join("\n"),
        reasoning: join_reasoning(reasoning.iter().map(String::as_str)),
        usage: TurnUsage {
            prompt_tokens: input,
            completion_tokens: output_tokens,
            total_tokens: input + output_tokens,
            cached_tokens: number("/input_tokens_details/cached_tokens"),
            reasoning_tokens: number("/output_tokens_details/reasoning_tokens"),
            cost: usage
                .and_then(|u| u.get("cost_in_usd_ticks"))
                .and_then(Value::as_f64)
                .map_or(0.0, |ticks| ticks / TICKS_PER_USD),
            ..TurnUsage::default()
        },
        model: body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The `context_length` of `model` in a `/models` listing (`data` or
/// `models`, by `id` or `id-latest`).
fn listed_window(listing: &Value, model: &str) -> Option<i64> {
    let list = listing
        .get("data")
        .or_else(|| listing.get("models"))
        .and_then(Value::as_array)?;
    list.iter()
        .find(|m| {
            m.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id == model || format!("{id}-latest") == model)
        })
        .and_then(|m| m.get("context_length").and_then(Value::as_i64))
        .filter(|n| *n > 0)
}

#[async_trait::async_trait]
impl Provider for Xai {
    fn name(&self) -> &'static str {
        "xai"
    }

    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError> {
        let mut payload = json!({ "model": request.model, "input": request.messages });
        if let Some(t) = request.temperature {
            payload["temperature"] = json!(t);
        }
        let http = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.api_key)
            .json(&payload);
        let body = exchange(STYLE, http, self.timeout).await?;
        parse_response(&body)
    }

    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError> {
        if let Some(url) = self.sibling("models") {
            match self.get(url).await {
                Ok(listing) => {
                    if let Some(n) = listed_window(&listing, model) {
                        return Ok(Some(n));
                    }
                }
                // Only a refusal falls through; a network failure is retried.
                Err(e) if e.class() == super::ErrorClass::Client => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(url) = self.sibling(&format!("language-models/{model}")) {
            if let Ok(found) = self.get(url).await {
                if let Some(n) = found
                    .get("context_length")
                    .and_then(Value::as_i64)
                    .filter(|n| *n > 0)
                {
                    return Ok(Some(n));
                }
            }
        }
        Err(LlmError::Client {
            status: 404,
            message: format!(
                "Cannot determine context size for xAI model \"{model}\". Give its window with \
                 RUMMY_CONTEXT_{{alias}} or addModel contextLength."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_items() {
        let body = json!({
            "id": "resp_1", "object": "response", "model": "grok-4", "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]},
                {"type": "message", "id": "msg_1", "role": "assistant",
                 "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
            ],
            "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40},
                      "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 6},
                      "total_tokens": 110, "cost_in_usd_ticks": 25_000_000}
        });
        let c = parse_response(&body).unwrap();
        assert_eq!(c.content, "hi");
        assert_eq!(c.reasoning.as_deref(), Some("think"));
        assert_eq!(c.usage.cached_tokens, 40);
        assert_eq!(c.usage.reasoning_tokens, 6);
        assert_eq!(c.usage.total_tokens, 110);
        assert!((c.usage.cost - 0.0025).abs() < 1e-12);
        assert_eq!(c.model.as_deref(), Some("grok-4"));
    }

    #[test]
    fn string_content_missing_usage_and_failures() {
        let body = json!({"output": [{"type": "message", "content": "plain"}]});
        let c = parse_response(&body).unwrap();
        assert_eq!(c.content, "plain");
        assert_eq!(c.usage, TurnUsage::default());
        assert!(matches!(
            parse_response(&json!({})),
            Err(LlmError::Malformed { .. })
        ));
        let failed = json!({"status": "failed", "output": [], "error": {"code": "server_error", "message": "x"}});
        assert!(parse_response(&failed).unwrap_err().class().to_string() == "gateway");
    }

    #[test]
    fn an_api_root_gets_the_responses_endpoint() {
        for base in ["https://api.x.ai/v1", "https://api.x.ai/v1/responses/"] {
            let x = Xai::new(
                XaiSettings {
                    base_url: base.into(),
                    api_key: Some("k".into()),
                },
                Duration::from_secs(1),
            );
            assert_eq!(x.endpoint, "https://api.x.ai/v1/responses");
            assert_eq!(
                x.sibling("models").as_deref(),
                Some("https://api.x.ai/v1/models")
            );
        }
    }

    #[test]
    fn listings() {
        let l = json!({"data": [{"id": "grok-4", "context_length": 256000}]});
        assert_eq!(listed_window(&l, "grok-4-latest"), Some(256000));
        assert_eq!(listed_window(&json!({"models": []}), "grok-4"), None);
    }
}
