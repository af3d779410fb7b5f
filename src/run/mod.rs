//! Runs: the run service (the one lifecycle API every front end calls),
//! the `RunRegistry` and `RunActor`s (loop queue, cancellable drain), the
//! turn executor (RECORD, DISPATCH), the verdict and the `run/state` report.

pub mod actor;
pub mod budget_turn;
pub mod cycles;
mod dispatch;
pub mod policy;
pub mod proposals;
pub mod registry;
pub mod report;
pub mod service;
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
}

impl Engine {
    /// Sends a notification to every client of a project.
    pub fn publish(&self, project_id: i64, method: &'static str, params: serde_json::Value) {
        self.hub.do_send(Publish {
            project_id,
            notification: Notification { method, params },
        });
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
