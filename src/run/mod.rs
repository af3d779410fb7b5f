//! Runs: the run service (the one lifecycle API every front end calls),
//! the `RunRegistry` and `RunActor`s (loop queue, cancellable drain), the
//! turn executor (RECORD, DISPATCH), the verdict and the `run/state` report.

pub mod actor;
pub mod budget_turn;
pub mod caches;
pub mod cycles;
mod dispatch;
pub mod editor;
pub mod policy;
pub mod proposals;
pub mod registry;
pub mod report;
pub mod service;
mod step;
pub mod turn;
pub mod verdict;

use crate::config::Config;
use crate::hub::{Hub, Publish};
use crate::llm::ProviderRegistry;
use crate::protocol::notifications::Notification;
use crate::store::Store;
use crate::tools::ToolRegistry;
use actix::Addr;
use std::sync::Arc;

pub use actor::{Abort, Enqueue, RunActor};
pub use service::{RunService, RunServiceError};

/// The shared, immutable services a run works with.
pub struct Engine {
    pub store: Store,
    pub hub: Addr<Hub>,
    pub providers: ProviderRegistry,
    pub tools: Arc<ToolRegistry>,
    pub config: Arc<Config>,
    /// Live `StreamProducer`s of accepted `sh`/`env` commands.
    pub streams: Addr<crate::stream::StreamRegistry>,
    /// A front end's editor (`rummy acp`) serving file reads, writes and
    /// commands for its runs; empty otherwise.
    pub editor: editor::EditorSlot,
}

impl Engine {
    /// Sends a notification to every client of a project.
    pub fn publish(&self, project_id: i64, method: &'static str, params: serde_json::Value) {
        self.hub.do_send(Publish {
            project_id,
            notification: Notification { method, params },
        });
    }

    /// Sends a typed notification to every client of a project, encoded
    /// once, straight from the payload.
    pub fn publish_payload<N: crate::protocol::notifications::ServerNotification>(
        &self,
        project_id: i64,
        payload: &N,
    ) -> Result<(), serde_json::Error> {
        let frame = crate::protocol::jsonrpc::payload_frame(N::METHOD, payload)?;
        self.hub.do_send(crate::hub::PublishFrame {
            project_id,
            frame: frame.into(),
        });
        Ok(())
    }
}

/// Per-loop options a client chose when starting or continuing a run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_repo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_interaction: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_web: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proposals: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The server accepts this loop's proposals itself (not `ask_user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yolo: Option<bool>,
}

impl LoopFlags {
    /// These flags, with each one left out taken from `stored` (the run's
    /// stored flags). The temperature is not a stored flag: a loop without
    /// one uses the run's stored temperature when it runs.
    pub fn inherit(self, stored: &LoopFlags) -> LoopFlags {
        LoopFlags {
            no_repo: self.no_repo.or(stored.no_repo),
            no_interaction: self.no_interaction.or(stored.no_interaction),
            no_web: self.no_web.or(stored.no_web),
            no_proposals: self.no_proposals.or(stored.no_proposals),
            temperature: self.temperature,
            yolo: self.yolo.or(stored.yolo),
        }
    }

    /// The flags stored on a run (none for a run from before they were).
    pub fn stored(run: &crate::store::RunRow) -> LoopFlags {
        run.flags
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default()
    }

    /// What is stored on the run: the flags without the temperature.
    pub fn to_stored(&self) -> serde_json::Value {
        serde_json::to_value(LoopFlags {
            temperature: None,
            ..self.clone()
        })
        .unwrap_or_default()
    }
}
