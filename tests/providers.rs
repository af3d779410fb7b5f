//! The four LLM providers against fake services that speak each service's
//! real wire format, including its real error bodies: replies, usage,
//! context discovery, every error class, retries, deadlines, aborts, and
//! whole runs through the turn loop by model alias.

mod common;
#[path = "providers/errors.rs"]
mod errors;
#[path = "providers/fake.rs"]
mod fake;
#[path = "providers/runs.rs"]
mod runs;
#[path = "providers/wire.rs"]
mod wire;

use fake::FakeService;
use rummy::llm::{
    ChatMessage, Completion, CompletionRequest, LlmError, ProviderRegistry, RetryNotice,
};
use rummy::Config;
use std::sync::Mutex;

/// Paths of each service on the fake.
pub const OPENAI_CHAT: &str = "/v1/chat/completions";
pub const OLLAMA_CHAT: &str = "/api/chat";
pub const OPENROUTER_CHAT: &str = "/api/v1/chat/completions";
pub const XAI_RESPONSES: &str = "/xai/v1/responses";

/// Retry settings in milliseconds, so tests never wait for real backoff.
pub const FAST_RETRY: [(&str, &str); 7] = [
    ("RUMMY_LLM_BACKOFF", "5"),
    ("RUMMY_LLM_MAX_BACKOFF", "20"),
    ("RUMMY_LLM_RATE_LIMIT_DEADLINE", "3000"),
    ("RUMMY_LLM_UNAVAILABLE_DEADLINE", "3000"),
    ("RUMMY_LLM_GATEWAY_DEADLINE", "3000"),
    ("RUMMY_LLM_SERVER_DEADLINE", "3000"),
    ("RUMMY_LLM_NETWORK_DEADLINE", "3000"),
];

/// Settings pointing all four providers at one fake service.
pub fn provider_vars(fake: &FakeService) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = vec![
        (
            "RUMMY_HOME".into(),
            std::env::temp_dir().display().to_string(),
        ),
        ("RUMMY_FETCH_TIMEOUT".into(), "20000".into()),
        ("OPENAI_BASE_URL".into(), fake.url("/v1")),
        ("OPENAI_API_KEY".into(), "sk-test".into()),
        ("OLLAMA_BASE_URL".into(), fake.url("")),
        ("OPENROUTER_BASE_URL".into(), fake.url("/api/v1")),
        ("OPENROUTER_API_KEY".into(), "sk-or-test".into()),
        ("XAI_BASE_URL".into(), fake.url(XAI_RESPONSES)),
        ("XAI_API_KEY".into(), "xai-test".into()),
    ];
    vars.extend(
        FAST_RETRY
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    vars
}

/// A registry for the fake, with `overrides` applied over [`provider_vars`].
pub fn registry(fake: &FakeService, overrides: &[(&str, &str)]) -> ProviderRegistry {
    let mut vars = provider_vars(fake);
    vars.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    ProviderRegistry::from_config(&Config::from_vars(vars).expect("config"))
}

pub fn packet() -> Vec<ChatMessage> {
    vec![
        ChatMessage {
            role: "system",
            content: "You are a test.".into(),
        },
        ChatMessage {
            role: "user",
            content: "<prompt>hi</prompt>".into(),
        },
    ]
}

/// One completion through the registry (with its retries); returns the
/// outcome and every retry notice.
pub async fn call(
    registry: &ProviderRegistry,
    actual: &str,
) -> (Result<Completion, LlmError>, Vec<RetryNotice>) {
    let (provider, model) = registry.resolve(actual).expect("provider resolves");
    let messages = packet();
    let request = CompletionRequest {
        model: &model,
        messages: &messages,
        temperature: Some(0.5),
        context_size: Some(8192),
    };
    let notices = Mutex::new(Vec::new());
    let observer = |n: &RetryNotice| notices.lock().unwrap().push(n.clone());
    let result = registry
        .complete(provider.as_ref(), &request, &observer)
        .await;
    (result, notices.into_inner().unwrap())
}
