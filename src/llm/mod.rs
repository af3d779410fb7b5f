//! LLM providers behind one trait, chosen by the first path segment of a
//! model's `actual` name (`openai/gpt-4o` -> provider `openai`, wire model
//! `gpt-4o`). Each provider speaks its service's own wire format; the
//! registry adds retries (`retry.rs`) around single calls.

pub mod errors;
mod http;
pub mod ollama;
pub mod openai;
pub mod openrouter;
pub mod retry;
pub mod xai;

pub use errors::{looks_like_context_exceeded, ErrorClass, LlmError};
pub use retry::{RetryNotice, RetryObserver};
// Re-exported so callers keep naming the model rule through `llm`.
pub use crate::model_spec::{check_alias, check_model, ModelSpecError, PROVIDER_NAMES};

use crate::config::{Config, RetrySettings};
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

/// What one completion call sends.
#[derive(Debug, Clone, Copy)]
pub struct CompletionRequest<'a> {
    /// The wire model name (the `actual` name without its provider segment).
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub temperature: Option<f64>,
    /// The window the packet was budgeted for. Ollama sizes its context
    /// (`num_ctx`) to it; the others decide their window themselves.
    pub context_size: Option<i64>,
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

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider segment of `actual` names (`openai`, `ollama` ...).
    fn name(&self) -> &'static str;
    /// One chat completion, one HTTP call, no retries. Dropping the future
    /// aborts the request.
    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError>;
    /// The model's context window, when the service tells.
    async fn context_size(&self, model: &str) -> Result<Option<i64>, LlmError>;
}

/// The configured providers by name, the reasons the others are off, and
/// the retry policy around every call.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    inert: HashMap<&'static str, String>,
    retry: RetrySettings,
}

impl ProviderRegistry {
    /// Providers whose settings are present; the others stay inert and say
    /// which setting they lack.
    pub fn from_config(config: &Config) -> ProviderRegistry {
        let mut registry = ProviderRegistry {
            retry: config.retry.clone(),
            ..ProviderRegistry::default()
        };
        let timeout = config.fetch_timeout;
        match &config.openai {
            Some(s) => registry.insert(Arc::new(openai::OpenAi::new(s.clone(), timeout))),
            None => registry.off("openai", "set OPENAI_BASE_URL"),
        }
        match &config.ollama {
            Some(s) => registry.insert(Arc::new(ollama::Ollama::new(s.clone(), timeout))),
            None => registry.off("ollama", "set OLLAMA_BASE_URL"),
        }
        match &config.openrouter {
            Some(s) if s.api_key.is_some() => {
                registry.insert(Arc::new(openrouter::OpenRouter::new(s.clone(), timeout)))
            }
            Some(_) => registry.off("openrouter", "set OPENROUTER_API_KEY"),
            None => registry.off(
                "openrouter",
                "set OPENROUTER_BASE_URL and OPENROUTER_API_KEY",
            ),
        }
        match &config.xai {
            Some(s) if s.api_key.is_some() => {
                registry.insert(Arc::new(xai::Xai::new(s.clone(), timeout)))
            }
            Some(_) => registry.off("xai", "set XAI_API_KEY"),
            None => registry.off("xai", "set XAI_BASE_URL and XAI_API_KEY"),
        }
        registry
    }

    fn off(&mut self, name: &'static str, fix: &str) {
        self.inert.insert(name, fix.to_string());
    }

    /// Adds (or replaces) a provider under its name.
    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.inert.remove(provider.name());
        self.providers.insert(provider.name(), provider);
    }

    /// The retry policy around calls made through this registry.
    pub fn retry_settings(&self) -> &RetrySettings {
        &self.retry
    }

    pub fn set_retry_settings(&mut self, retry: RetrySettings) {
        self.retry = retry;
    }

    /// The provider for an `actual` model name and the model name to send.
    pub fn resolve(&self, actual: &str) -> Result<(Arc<dyn Provider>, String), LlmError> {
        let (name, model) = actual.split_once('/').unwrap_or((actual, ""));
        if model.is_empty() {
            return Err(LlmError::NotConfigured(format!(
                "Model \"{actual}\" is not of the form {{provider}}/{{model}}."
            )));
        }
        if let Some(p) = self.providers.get(name) {
            return Ok((p.clone(), model.to_string()));
        }
        Err(LlmError::NotConfigured(match self.inert.get(name) {
            Some(fix) => format!(
                "Provider \"{name}\" is not configured, so model \"{actual}\" cannot run: {fix}."
            ),
            None => format!(
                "No LLM provider registered for model \"{actual}\". Check your RUMMY_* env vars \
                 (known providers: {}).",
                PROVIDER_NAMES.join(", ")
            ),
        }))
    }

    /// One completion with retries; `observer` hears about each wait.
    pub async fn complete(
        &self,
        provider: &dyn Provider,
        request: &CompletionRequest<'_>,
        observer: RetryObserver<'_>,
    ) -> Result<Completion, LlmError> {
        retry::with_retry(&self.retry, observer, || provider.complete(request)).await
    }

    /// A context-window look-up with the same retries (waits are logged only).
    pub async fn context_size(
        &self,
        provider: &dyn Provider,
        model: &str,
    ) -> Result<Option<i64>, LlmError> {
        retry::with_retry(&self.retry, &|_| {}, || provider.context_size(model)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(Arc<dyn Provider>, String), LlmError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn unknown_and_unconfigured_providers_say_so() {
        let registry = ProviderRegistry::default();
        assert!(message(registry.resolve("nope/model")).contains("No LLM provider registered"));
        let config = Config::from_vars([("RUMMY_HOME", "/tmp/rummy-home")]).unwrap();
        let registry = ProviderRegistry::from_config(&config);
        let m = message(registry.resolve("ollama/llama3"));
        assert!(
            m.contains("\"ollama\" is not configured") && m.contains("OLLAMA_BASE_URL"),
            "{m}"
        );
        let m = message(registry.resolve("openrouter/anthropic/claude"));
        assert!(m.contains("OPENROUTER_API_KEY"), "{m}");
        let m = message(registry.resolve("xai/grok-4"));
        assert!(m.contains("XAI_BASE_URL"), "{m}");
    }

    #[test]
    fn configured_providers_resolve_with_the_wire_model() {
        let config = Config::from_vars([
            ("RUMMY_HOME", "/tmp/rummy-home"),
            ("OLLAMA_BASE_URL", "http://127.0.0.1:9"),
            ("OPENROUTER_API_KEY", "k"),
            ("XAI_BASE_URL", "http://127.0.0.1:9/v1/responses"),
            ("XAI_API_KEY", "k"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9"),
        ])
        .unwrap();
        let registry = ProviderRegistry::from_config(&config);
        for (actual, name, wire) in [
            ("openai/gpt-4o", "openai", "gpt-4o"),
            ("ollama/qwen3:8b", "ollama", "qwen3:8b"),
            (
                "openrouter/anthropic/claude",
                "openrouter",
                "anthropic/claude",
            ),
            ("xai/grok-4", "xai", "grok-4"),
        ] {
            let (p, m) = registry.resolve(actual).unwrap();
            assert_eq!((p.name(), m.as_str()), (name, wire));
        }
    }
}
