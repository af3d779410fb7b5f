//! Where the ACP handlers' engine calls go: the engine in this process
//! (through [`EngineBridge`]), or, when another rummy process holds the
//! database, that process's WebSocket ([`Remote`]). The handlers see one
//! set of calls either way; this module holds the in-process side,
//! `remote` the WebSocket one.

use super::agent::internal;
use super::editor::AcpEditor;
use super::remote::Remote;
use super::EngineBridge;
use crate::hub::{FrameCollector, Unsubscribe};
use crate::protocol::notifications::{RunLogItem, UnknownItem};
use crate::protocol::runs::TurnText;
use crate::run::actor::{Resolution, Resolve};
use crate::run::service::{ConfigureRun, ContinueRun, RunSettings, StartRun};
use crate::run::LoopFlags;
use crate::server::admission::resolve_project_root;
use crate::store::{GetEntry, UpsertProject};
use crate::tools::Mode;
use actix::prelude::*;
use agent_client_protocol::Error;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The engine the ACP agent drives.
#[derive(Clone)]
pub(super) enum Backend {
    /// The engine runs in this process.
    Local(EngineBridge),
    /// The process holding the database runs it; we are its WebSocket client.
    Remote(Arc<Remote>),
}

/// What `session/load` replays of a run.
pub(super) struct Loaded {
    pub history: Vec<RunLogItem>,
    pub unknowns: Vec<UnknownItem>,
    pub reasoning: Vec<TurnText>,
    pub model: Option<String>,
    /// The run's stored yolo flag (later loops start in yolo).
    pub yolo: bool,
    /// The run's id, known in process only (the editor seam needs it).
    pub run_id: Option<i64>,
}

/// A prompt's way into the run: the answer to an open question, a new
/// loop of a started run, or the run's first loop.
pub(super) struct Begin {
    pub project_id: i64,
    pub alias: String,
    pub model: String,
    pub mode: Mode,
    pub started: bool,
    pub yolo: bool,
    /// The open question (its path) the text answers.
    pub question: Option<String>,
    pub text: String,
}

/// The project's notifications (JSON-RPC frames) for one prompt turn.
pub(super) struct Subscription {
    pub events: mpsc::UnboundedReceiver<serde_json::Value>,
    /// The hub client to unsubscribe, in process; a remote subscriber is
    /// dropped with its receiver.
    hub_client: Option<u64>,
}

fn invalid(message: impl ToString) -> Error {
    Error::invalid_params().data(message.to_string())
}

impl Backend {
    /// Installs the ACP client as the engine's editor. A remote engine
    /// cannot use it (the client's fs and terminal are reachable from this
    /// process only), which is said once on stderr.
    pub async fn install_editor(&self, editor: AcpEditor) -> Result<(), Error> {
        match self {
            Backend::Local(engine) => engine
                .call(move |server| async move { server.engine.editor.install(Arc::new(editor)) })
                .await
                .map(|_| ())
                .map_err(internal),
            Backend::Remote(remote) => {
                tracing::warn!(
                    "rummy acp: the server at {} holds the database and runs these sessions; \
                     the ACP client's fs methods are not used (that server reads and writes \
                     files on disk), and commands the client accepts run in this process, not \
                     in its terminal",
                    remote.url
                );
                Ok(())
            }
        }
    }

    /// Binds the project at `cwd`, validated like `rummy/hello`: its id and
    /// canonical root.
    pub async fn project(&self, cwd: PathBuf) -> Result<(i64, PathBuf), Error> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.project(cwd).await,
        };
        engine
            .call(move |server| async move {
                let given = cwd.to_string_lossy().into_owned();
                let allowed = server.engine.config.project_roots.clone();
                let canonical =
                    tokio::task::spawn_blocking(move || resolve_project_root(&given, &allowed))
                        .await
                        .map_err(internal)?
                        .map_err(invalid)?;
                let id = server
                    .store
                    .run(UpsertProject {
                        name: canonical.clone(),
                        project_root: canonical.clone(),
                        config_path: None,
                    })
                    .await
                    .map_err(internal)?;
                Ok((id, PathBuf::from(canonical)))
            })
            .await
            .map_err(internal)?
    }

    /// The run `alias` of the project, for `session/load`.
    pub async fn load(&self, project_id: i64, alias: &str) -> Result<Loaded, Error> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.load(project_id, alias).await,
        };
        let lookup = alias.to_string();
        engine
            .call(move |server| async move {
                let run = server
                    .runs
                    .find(project_id, &lookup)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| invalid(format!("no session {lookup} in this project")))?;
                let state = crate::run::report::run_state(
                    &server.engine,
                    &run,
                    run.next_turn - 1,
                    run.status,
                    None,
                    None,
                )
                .await
                .map_err(internal)?;
                let reasoning = crate::run::report::run_detail(&server.engine, &run)
                    .await
                    .map(|d| d.context.reasoning)
                    .unwrap_or_default();
                Ok(Loaded {
                    history: state.history,
                    unknowns: state.unknowns,
                    reasoning,
                    model: run.model.clone(),
                    yolo: LoopFlags::stored(&run).yolo.unwrap_or(false),
                    run_id: Some(run.id),
                })
            })
            .await
            .map_err(internal)?
    }

    /// Subscribes to the project's notifications (before a run starts, so
    /// none is missed).
    pub async fn subscribe(&self, project_id: i64) -> Result<Subscription, Error> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => {
                return remote.subscribe(project_id).map(|events| Subscription {
                    events,
                    hub_client: None,
                })
            }
        };
        let (tx, events) = mpsc::unbounded_channel();
        let client_id = engine
            .call(move |server| async move {
                server.subscribe(project_id, FrameCollector(tx).start().recipient())
            })
            .await
            .map_err(internal)?;
        Ok(Subscription {
            events,
            hub_client: Some(client_id),
        })
    }

    pub async fn unsubscribe(&self, sub: Subscription) {
        if let (Backend::Local(engine), Some(client_id)) = (self, sub.hub_client) {
            let _ = engine
                .call(move |server| async move { server.hub.do_send(Unsubscribe { client_id }) })
                .await;
        }
    }

    /// Starts the prompt's loop (or answers the open question); the run's
    /// id when known.
    pub async fn begin(&self, b: Begin) -> Result<Option<i64>, String> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.begin(b).await,
        };
        if let Some(path) = b.question.clone() {
            // The prompt answers the model's open question.
            return self
                .resolve(
                    b.project_id,
                    &b.alias,
                    path,
                    Resolution::Accept,
                    Some(b.text),
                )
                .await
                .map(|()| None);
        }
        engine
            .call(move |server| async move {
                let flags = LoopFlags {
                    yolo: b.yolo.then_some(true),
                    ..LoopFlags::default()
                };
                let run = if b.started {
                    server
                        .runs
                        .continue_run(ContinueRun {
                            project_id: b.project_id,
                            alias: b.alias,
                            mode: b.mode,
                            prompt: b.text,
                            flags,
                            queue: false,
                        })
                        .await
                } else {
                    server
                        .runs
                        .start_run(StartRun {
                            project_id: b.project_id,
                            alias: Some(b.alias),
                            model: b.model,
                            mode: b.mode,
                            prompt: b.text,
                            settings: RunSettings::default(),
                            flags,
                        })
                        .await
                };
                run.map(|r| Some(r.id)).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Settles a proposal of the run.
    pub async fn resolve(
        &self,
        project_id: i64,
        alias: &str,
        path: String,
        action: Resolution,
        output: Option<String>,
    ) -> Result<(), String> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => {
                return remote
                    .resolve(project_id, alias, &path, action, output)
                    .await
            }
        };
        let a = alias.to_string();
        engine
            .call(move |server| async move {
                let resolve = Resolve {
                    path,
                    action,
                    output,
                    reply: None,
                };
                server
                    .runs
                    .resolve(project_id, &a, resolve)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Cancels the run's loop.
    pub async fn cancel(&self, project_id: i64, alias: &str, reason: &str) -> Result<(), String> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.cancel(project_id, alias, reason).await,
        };
        let (a, r) = (alias.to_string(), reason.to_string());
        engine
            .call(move |server| async move {
                server
                    .runs
                    .cancel(project_id, &a, &r)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Stores `yolo: true` on the run, for its later loops.
    pub async fn store_yolo(&self, project_id: i64, alias: &str) -> Result<(), String> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.store_yolo(project_id, alias).await,
        };
        let a = alias.to_string();
        engine
            .call(move |server| async move {
                server
                    .runs
                    .configure(ConfigureRun {
                        project_id,
                        alias: a,
                        flags: Some(LoopFlags {
                            yolo: Some(true),
                            ..LoopFlags::default()
                        }),
                        ..ConfigureRun::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Runs a command this session accepted, beside the turn: in process
    /// through the editor seam or on the server; over the WebSocket here,
    /// streamed to the server as a client's command is.
    pub fn run_accepted(
        &self,
        project_id: i64,
        alias: &str,
        path: &str,
        command: &str,
        root: &std::path::Path,
    ) {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => {
                return remote.run_accepted(project_id, alias, path, command, root)
            }
        };
        let (a, p) = (alias.to_string(), path.to_string());
        let spawned = engine.spawn(move |server| async move {
            match server.runs.find(project_id, &a).await {
                Ok(Some(run)) => {
                    crate::run::proposals::run_accepted_command(&server.engine, &run, &p).await
                }
                Ok(None) => tracing::warn!("run {a} is gone; {p} not run"),
                Err(e) => tracing::warn!("could not run {p}: {e}"),
            }
        });
        if spawned.is_err() {
            tracing::warn!("the engine stopped; {path} not run");
        }
    }

    /// The bodies of entries `paths` of the run (empty where missing).
    pub async fn bodies(
        &self,
        project_id: i64,
        alias: &str,
        run_id: Option<i64>,
        paths: Vec<String>,
    ) -> Vec<String> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.bodies(project_id, alias, paths).await,
        };
        let Some(run_id) = run_id else {
            return Vec::new();
        };
        engine
            .call(move |server| async move {
                let mut out = Vec::new();
                for path in paths {
                    let body = server
                        .store
                        .run(GetEntry { run_id, path })
                        .await
                        .ok()
                        .flatten()
                        .map(|r| r.body)
                        .unwrap_or_default();
                    out.push(body);
                }
                out
            })
            .await
            .unwrap_or_default()
    }

    /// The run's reasoning entries; none when they cannot be read.
    pub async fn reasoning(&self, project_id: i64, alias: &str) -> Vec<TurnText> {
        let engine = match self {
            Backend::Local(engine) => engine,
            Backend::Remote(remote) => return remote.reasoning(project_id, alias).await,
        };
        let a = alias.to_string();
        engine
            .call(move |server| async move {
                let run = server.runs.find(project_id, &a).await.ok().flatten()?;
                crate::run::report::run_detail(&server.engine, &run)
                    .await
                    .ok()
                    .map(|d| d.context.reasoning)
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}
