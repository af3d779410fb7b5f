//! LLM providers behind one trait, chosen by the first path segment of a
//! model's `actual` name (`openai/gpt-4o` -> provider `openai`).

pub mod openai;

use crate::config::Config;
use crate::store::TurnUsage;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// One chat message of the packet.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

/// A provider's reply.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub content: String,
    pub reasoning: Option<String>,
    pub usage: TurnUsage,
    /// The model name the provider reports, if any.
    pub model: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The packet did not fit the model's window (a 413 strike, not fatal).
    #[error("{0}")]
    ContextExceeded(String),
    #[error("{provider} API error: {status} - {body}")]
    Http {
        provider: &'static str,
        status: u16,
        body: String,
    },
    #[error("{provider} request failed: {message}")]
    Network {
        provider: &'static str,
        message: String,
    },
    #[error("{provider} did not answer within {seconds}s")]
    Timeout {
        provider: &'static str,
        seconds: u64,
    },
    #[error("{provider} returned a malformed reply: {message}")]
    Malformed {
        provider: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotConfigured(String),
}

/// Upstream's test for "the context was too long" (spec 03 §6.3), applied
/// to a provider's error text.
pub fn looks_like_context_exceeded(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let after = |first: &str, seconds: &[&str]| {
        words
            .iter()
            .position(|w| w.starts_with(first))
            .is_some_and(|i| words[i..].iter().any(|w| seconds.contains(w)))
    };
    after("context", &["size", "length", "limit"])
        || after("token", &["limit", "exceed", "exceeded", "exceeds"])
        || after("too", &["long", "large"])
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// One chat completion. Dropping the future aborts the request.
    async fn complete(
        &self,
        model: &str,
        messages: &[ChatMessage],
        temperature: Option<f64>,
    ) -> Result<Completion, LlmError>;
    /// The model's context window, when the service tells.
    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError>;
}

/// The configured providers by name.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: HashMap<&'static str, Arc<dyn Provider>>,
}

impl ProviderRegistry {
    /// Providers whose settings are present; others stay inert.
    pub fn from_config(config: &Config) -> ProviderRegistry {
        let mut registry = ProviderRegistry::default();
        if let Some(settings) = &config.openai {
            registry.insert(Arc::new(openai::OpenAi::new(
                settings.clone(),
                config.fetch_timeout,
            )));
        }
        registry
    }

    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.name(), provider);
    }

    /// The provider for an `actual` model name and the model name to send.
    pub fn resolve(&self, actual: &str) -> Result<(Arc<dyn Provider>, String), LlmError> {
        let (name, model) = actual.split_once('/').unwrap_or((actual, ""));
        match self.providers.get(name) {
            Some(p) if !model.is_empty() => Ok((p.clone(), model.to_string())),
            _ => Err(LlmError::NotConfigured(format!(
                "No LLM provider registered for model \"{actual}\". Check your RUMMY_* env vars \
                 (e.g. OPENAI_BASE_URL for openai/...)."
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_exceeded_detection() {
        assert!(looks_like_context_exceeded(
            "This model's maximum context length is 8192 tokens"
        ));
        assert!(looks_like_context_exceeded("prompt too long"));
        assert!(looks_like_context_exceeded("token limit exceeded"));
        assert!(!looks_like_context_exceeded("rate limited, try later"));
    }

    #[test]
    fn unknown_provider_is_a_clear_error() {
        let registry = ProviderRegistry::default();
        let err = registry.resolve("nope/model").err().map(|e| e.to_string());
        assert!(err
            .unwrap_or_default()
            .contains("No LLM provider registered"));
    }
}
