//! OpenRouter: OpenAI-shaped chat completions at `{base}/chat/completions`
//! with its attribution headers, reasoning and cost accounting.

use super::errors::{ErrorStyle, LlmError};
use super::http::{discovery_timeout, exchange};
use super::openai::parse_completion;
use super::{Completion, CompletionRequest, Provider};
use crate::config::OpenRouterSettings;
use serde_json::{json, Value};
use std::time::Duration;

const STYLE: ErrorStyle = ErrorStyle {
    label: "OpenRouter",
    key_setting: Some("OPENROUTER_API_KEY"),
};

pub struct OpenRouter {
    base: String,
    api_key: String,
    http_referer: Option<String>,
    x_title: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
}

impl OpenRouter {
    /// `settings.api_key` is required; without it the registry keeps the
    /// provider inert and never builds one.
    pub fn new(settings: OpenRouterSettings, timeout: Duration) -> OpenRouter {
        OpenRouter {
            base: settings.base_url.trim_end_matches('/').to_string(),
            api_key: settings.api_key.unwrap_or_default(),
            http_referer: settings.http_referer,
            x_title: settings.x_title,
            timeout,
            http: reqwest::Client::new(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for OpenRouter {
    fn name(&self) -> &'static str {
        "openrouter"
    }

    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError> {
        let mut payload = json!({
            "model": request.model,
            "messages": request.messages,
            "include_reasoning": true,
            // Puts the call's cost into `usage.cost`.
            "usage": { "include": true },
        });
        if let Some(t) = request.temperature {
            payload["temperature"] = json!(t);
        }
        let mut http = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .bearer_auth(&self.api_key);
        if let Some(referer) = &self.http_referer {
            http = http.header("HTTP-Referer", referer);
        }
        if let Some(title) = &self.x_title {
            http = http.header("X-Title", title);
        }
        let body = exchange(STYLE, http.json(&payload), self.timeout).await?;
        parse_completion(STYLE, &body)
    }

    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError> {
        let request = self
            .http
            .get(format!("{}/models", self.base))
            .bearer_auth(&self.api_key);
        let listing = exchange(STYLE, request, discovery_timeout(self.timeout)).await?;
        let found = listing
            .get("data")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|m| m.get("id").and_then(Value::as_str) == Some(model))
            })
            .and_then(|m| m.get("context_length").and_then(Value::as_i64))
            .filter(|n| *n > 0);
        match found {
            Some(n) => Ok(Some(n)),
            None => Err(LlmError::Client {
                status: 404,
                message: format!(
                    "OpenRouter /models has no context_length for \"{model}\". Check the model id, \
                     or give its window with RUMMY_CONTEXT_{{alias}} or addModel contextLength."
                ),
            }),
        }
    }
}
