//! The demo's scripted provider: a transcript shipped in `examples/demo/`
//! (the task, the starting project files and the model's replies turn by
//! turn), replayed offline behind the ordinary `Provider` trait so the rest
//! of the engine runs exactly as it does against a real model.

use crate::llm::{Completion, CompletionRequest, LlmError, Provider};
use crate::store::TurnUsage;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The provider name of replayed models (`replay/<transcript>`).
pub const REPLAY_PROVIDER: &str = "replay";
/// The window the replay reports, so budget figures look like a real model's.
pub const REPLAY_CONTEXT: i64 = 32_768;

/// The transcript shipped with the binary.
pub const DEMO_TRANSCRIPT: &str = include_str!("../../examples/demo/transcript.json");

/// A scripted session.
#[derive(Debug, Clone, Deserialize)]
pub struct Transcript {
    /// Names the transcript (the replay's model name).
    pub name: String,
    pub mode: String,
    pub prompt: String,
    /// Starting project files: relative path -> contents.
    pub files: BTreeMap<String, String>,
    /// The model's reply for each turn, in order.
    pub replies: Vec<String>,
}

impl Transcript {
    pub fn demo() -> Result<Transcript, serde_json::Error> {
        serde_json::from_str(DEMO_TRANSCRIPT)
    }
}

/// Answers each completion with the transcript's next reply.
pub struct ReplayProvider {
    replies: Vec<String>,
    next: AtomicUsize,
    /// Tokens per character, as the server estimates them.
    divisor: f64,
}

impl ReplayProvider {
    pub fn new(transcript: &Transcript, token_divisor: f64) -> ReplayProvider {
        ReplayProvider {
            replies: transcript.replies.clone(),
            next: AtomicUsize::new(0),
            divisor: token_divisor,
        }
    }
}

#[async_trait::async_trait]
impl Provider for ReplayProvider {
    fn name(&self) -> &'static str {
        REPLAY_PROVIDER
    }

    async fn complete(&self, request: &CompletionRequest<'_>) -> Result<Completion, LlmError> {
        let turn = self.next.fetch_add(1, Ordering::SeqCst);
        let Some(content) = self.replies.get(turn).cloned() else {
            return Err(LlmError::Client {
                status: 400,
                message: format!(
                    "the replay transcript has no reply for call {} (it holds {})",
                    turn + 1,
                    self.replies.len()
                ),
            });
        };
        // No real usage to report: prompt tokens stay 0 so the packet's
        // own measure is shown; the reply is counted like the server counts.
        let completion_tokens = (content.chars().count() as f64 / self.divisor).ceil() as i64;
        Ok(Completion {
            content,
            reasoning: None,
            usage: TurnUsage {
                completion_tokens,
                total_tokens: completion_tokens,
                ..TurnUsage::default()
            },
            model: Some(format!("{REPLAY_PROVIDER}/{}", request.model)),
        })
    }

    async fn context_size(&self, _model: &str) -> Result<Option<i64>, LlmError> {
        Ok(Some(REPLAY_CONTEXT))
    }
}
