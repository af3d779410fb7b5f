//! The engine hosted in this process, without a listener: runs go through
//! the run service and notifications come from the hub, as an embedding
//! program receives them (`tests/embedding.rs`).

use super::driver::{Decision, Event, RunBackend, RunEnd, RunRequest};
use super::CliError;
use crate::hub::FrameCollector;
use crate::run::actor::{Resolution, Resolve};
use crate::run::report::run_detail;
use crate::run::service::{RunSettings, StartRun};
use crate::run::{LoopFlags, RunServiceError};
use crate::server::admission::resolve_project_root;
use crate::store::UpsertProject;
use crate::ServerHandle;
use actix::prelude::*;
use std::path::Path;
use tokio::sync::mpsc;

pub struct LocalBackend {
    server: ServerHandle,
    project_id: i64,
    events: mpsc::UnboundedReceiver<serde_json::Value>,
}

/// A run-service refusal of the caller's request is a usage error (exit 2).
fn service_error(e: RunServiceError) -> CliError {
    if e.is_caller_error() {
        CliError::Usage(e.to_string())
    } else {
        CliError::Failed(e.to_string())
    }
}

impl LocalBackend {
    /// Binds the project at `root` (an existing directory) and subscribes
    /// to its notifications.
    pub async fn open(server: ServerHandle, root: &Path) -> Result<LocalBackend, CliError> {
        let given = root.to_string_lossy().into_owned();
        let allowed = server.engine.config.project_roots.clone();
        let canonical = tokio::task::spawn_blocking(move || resolve_project_root(&given, &allowed))
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .map_err(CliError::Usage)?;
        let project_id = server
            .store
            .run(UpsertProject {
                // The canonical directory names the project: two checkouts
                // with one folder name stay two projects.
                name: canonical.clone(),
                project_root: canonical,
                config_path: None,
            })
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let (tx, events) = mpsc::unbounded_channel();
        server.subscribe(project_id, FrameCollector(tx).start().recipient());
        Ok(LocalBackend {
            server,
            project_id,
            events,
        })
    }

    pub fn server(&self) -> &ServerHandle {
        &self.server
    }
}

#[async_trait::async_trait(?Send)]
impl RunBackend for LocalBackend {
    fn describe(&self) -> String {
        "the engine in this process".into()
    }

    async fn start(&mut self, req: &RunRequest) -> Result<String, CliError> {
        let run = self
            .server
            .runs
            .start_run(StartRun {
                project_id: self.project_id,
                alias: None,
                model: req.model.clone(),
                mode: req.mode,
                prompt: req.prompt.clone(),
                settings: RunSettings::default(),
                flags: LoopFlags {
                    yolo: req.yolo.then_some(true),
                    ..LoopFlags::default()
                },
            })
            .await
            .map_err(service_error)?;
        Ok(run.alias)
    }

    async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await.map(|f| Event::from_frame(&f))
    }

    async fn resolve(
        &mut self,
        alias: &str,
        path: &str,
        decision: Decision,
    ) -> Result<(), CliError> {
        let (action, output) = match decision {
            Decision::Accept(body) => (Resolution::Accept, body),
            Decision::Reject(body) => (Resolution::Reject, body),
        };
        self.server
            .runs
            .resolve(
                self.project_id,
                alias,
                Resolve {
                    path: path.to_string(),
                    action,
                    output,
                    reply: None,
                },
            )
            .await
            .map(|_| ())
            .map_err(service_error)
    }

    async fn cancel(&mut self, alias: &str, reason: &str) -> Result<(), CliError> {
        self.server
            .runs
            .cancel(self.project_id, alias, reason)
            .await
            .map(|_| ())
            .map_err(service_error)
    }

    async fn finish(&mut self, alias: &str) -> Result<RunEnd, CliError> {
        let run = self
            .server
            .runs
            .find(self.project_id, alias)
            .await
            .map_err(service_error)?
            .ok_or_else(|| CliError::Failed(format!("run {alias} vanished")))?;
        let detail = run_detail(&self.server.engine, &run)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
        Ok(RunEnd {
            status: detail.status,
            summary: detail.last_summary,
        })
    }

    async fn close(&mut self) {
        self.server.stop().await;
    }
}
