//! `rummy acp`: rummy as an Agent Client Protocol agent on stdin/stdout,
//! so ACP editors (Zed, Neovim plugins, JetBrains) drive it directly.
//!
//! The engine runs in this process (run service, store, providers,
//! settings), without a listener unless `--listen` asks for one; when
//! another rummy process holds the database, its WebSocket serves instead
//! (`remote`, behind the same `backend` calls). The ACP
//! SDK wants `Send` futures while the engine lives on actix's single
//! thread, so [`EngineBridge`] carries jobs from the ACP side to a local
//! task that owns the [`ServerHandle`]. `mapping` holds the pure
//! translations, `agent` the handlers.

pub mod agent;
mod backend;
mod editor;
pub mod mapping;
mod output;
mod permission;
mod remote;

use crate::store::db::LockError;
use crate::{Config, Server, ServerHandle, StartOptions};
use backend::Backend;
use remote::Remote;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, clap::Args)]
pub struct AcpArgs {
    /// Model alias (RUMMY_MODEL_<alias>); defaults to the only one configured.
    #[arg(long, value_name = "ALIAS")]
    pub model: Option<String>,
    /// Also listen for rummy WebSocket clients (PORT, RUMMY_BIND), so they
    /// can watch the same runs.
    #[arg(long)]
    pub listen: bool,
}

type Job = Box<dyn FnOnce(Rc<ServerHandle>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// The `Send` handle through which ACP handlers reach the engine.
#[derive(Clone)]
pub struct EngineBridge {
    jobs: mpsc::UnboundedSender<Job>,
}

/// The engine stopped (the process is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the rummy engine is not running")]
pub struct EngineGone;

impl EngineBridge {
    /// Starts the local task that runs jobs against `server`; must be
    /// called inside the actix system.
    pub fn start(server: Rc<ServerHandle>) -> EngineBridge {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        actix::spawn(async move {
            while let Some(job) = rx.recv().await {
                // Jobs run concurrently: a resolve must not wait behind a
                // long call of another session.
                actix::spawn(job(server.clone()));
            }
        });
        EngineBridge { jobs }
    }

    /// Runs `f` on the engine's thread without waiting for it.
    pub fn spawn<F, Fut>(&self, f: F) -> Result<(), EngineGone>
    where
        F: FnOnce(Rc<ServerHandle>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let job: Job = Box::new(move |server| Box::pin(f(server)));
        self.jobs.send(job).map_err(|_| EngineGone)
    }

    /// Runs `f` on the engine's thread and answers its result.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, EngineGone>
    where
        T: Send + 'static,
        F: FnOnce(Rc<ServerHandle>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |server| {
            Box::pin(async move {
                let _ = tx.send(f(server).await);
            })
        });
        self.jobs.send(job).map_err(|_| EngineGone)?;
        rx.await.map_err(|_| EngineGone)
    }
}

/// `rummy acp`.
pub fn main(args: AcpArgs) -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rummy acp: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // stdout carries the protocol: logs go to stderr only.
    crate::cli::run::init_cli_logging();
    let model = match crate::cli::run::choose_model(args.model.as_deref(), &config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("rummy acp: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let max_turns = config.max_turns;
    let db = config.db_path.clone();
    let token = config.admission.auth_token.clone();
    let limits = crate::exec::ExecLimits::from_config(&config);
    let system = actix::System::new();
    system.block_on(async move {
        let options = StartOptions {
            listen: args.listen,
            ..StartOptions::default()
        };
        let server = match Server::start(config, options).await {
            Ok(s) => Rc::new(s),
            Err(crate::StartError::Locked(held @ LockError::Held { .. })) => {
                // Another rummy process holds the database: its engine
                // serves this editor too, over its WebSocket.
                let (url, token) = match crate::cli::ws::holder_target(&db, &held, token) {
                    Ok(target) => target,
                    Err(e) => {
                        eprintln!("rummy acp: {e}");
                        return ExitCode::from(e.exit_code());
                    }
                };
                tracing::info!("rummy acp: the database is held; using the server at {url}");
                let remote = Arc::new(Remote::new(url, token, limits));
                return finish(agent::serve(Backend::Remote(remote), model, max_turns).await);
            }
            Err(e) => {
                eprintln!("rummy acp: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(addr) = server.local_addr {
            tracing::info!("rummy acp: also listening on ws://{addr}");
        }
        let bridge = EngineBridge::start(server.clone());
        let result = agent::serve(Backend::Local(bridge), model, max_turns).await;
        server.runs.abort_all("the ACP client disconnected").await;
        server.stop().await;
        finish(result)
    })
}

fn finish(result: Result<(), agent_client_protocol::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rummy acp: {e}");
            ExitCode::FAILURE
        }
    }
}
