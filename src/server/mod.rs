//! The server: boot (database lock, store, schemes, models, recovery), the
//! optional actix-web listener and the checked WebSocket upgrade, and the
//! handle embedders hold.

pub mod admission;
pub mod connection;
pub mod methods;
pub mod router;

use crate::config::Config;
use crate::hub::Hub;
use crate::llm::ProviderRegistry;
use crate::run::{Engine, RunService};
use crate::store::schemes::bootstrap_schemes;
use crate::store::schemes::RegisterSchemes;
use crate::store::streams::SweepOpenStreams;
use crate::store::{PurgeOldRuns, RecoverInterrupted, Store, StoreError, UpsertModel};
use crate::stream::StreamRegistry;
use crate::tools::ToolRegistry;
use actix::prelude::*;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use admission::{Admission, Upgrade};
use connection::ClientConnection;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest inbound WebSocket frame (prompts and file bodies can be big).
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// Services every connection and handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Addr<Hub>,
    pub engine: Arc<Engine>,
    pub runs: RunService,
    pub config: Arc<Config>,
    admission: Arc<Admission>,
    next_client: Arc<AtomicU64>,
}

/// How `start` hosts the engine.
#[derive(Clone)]
pub struct StartOptions {
    /// Listen for WebSocket clients on the config's bind address and port.
    /// Off, the engine, store and hub run without any port (embedding).
    pub listen: bool,
    /// The tools runs may use; `None` = [`ToolRegistry::builtin`].
    pub tools: Option<Arc<ToolRegistry>>,
    /// The LLM providers; `None` = the configured ones
    /// (`rummy demo` adds its offline replay provider here).
    pub providers: Option<ProviderRegistry>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            listen: true,
            tools: None,
            providers: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the database: {0}")]
    Database(#[from] crate::store::db::DbError),
    #[error("could not prepare the database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Locked(#[from] crate::store::db::LockError),
    #[error("RUMMY_PROJECT_ROOTS: {0}")]
    ProjectRoots(String),
    #[error("Port {port} on {bind} is already in use.")]
    PortInUse { bind: String, port: u16 },
    #[error("could not listen on {bind}:{port}: {source}")]
    Listen {
        bind: String,
        port: u16,
        source: std::io::Error,
    },
}

/// A running server: its address and actors, for embedding programs.
pub struct ServerHandle {
    /// Where clients connect; `None` when started without a listener.
    pub local_addr: Option<SocketAddr>,
    pub store: Store,
    pub hub: Addr<Hub>,
    pub engine: Arc<Engine>,
    /// The run lifecycle API (start, continue, fork, cancel, resolve).
    pub runs: RunService,
    next_client: Arc<AtomicU64>,
    http: Option<actix_web::dev::ServerHandle>,
    /// The database lock: released on `stop` or when the handle drops.
    lock: std::sync::Mutex<Option<crate::store::db::DbLock>>,
}

impl ServerHandle {
    /// Subscribes an embedding program to a project's notifications, as a
    /// connection's `rummy/hello` does; answers the subscriber's id for
    /// `hub::Unsubscribe`.
    pub fn subscribe(&self, project_id: i64, recipient: Recipient<crate::hub::Push>) -> u64 {
        let client_id = self.next_client.fetch_add(1, Ordering::Relaxed);
        self.hub.do_send(crate::hub::Subscribe {
            client_id,
            project_id,
            recipient,
            run_changed: false,
        });
        client_id
    }

    /// Like [`ServerHandle::subscribe`], with the `run/changed` pulse too.
    pub fn subscribe_with_changes(
        &self,
        project_id: i64,
        recipient: Recipient<crate::hub::Push>,
    ) -> u64 {
        let client_id = self.next_client.fetch_add(1, Ordering::Relaxed);
        self.hub.do_send(crate::hub::Subscribe {
            client_id,
            project_id,
            recipient,
            run_changed: true,
        });
        client_id
    }

    /// Clean shutdown: runs in flight end 499 (recorded, nothing
    /// half-written), then the listener stops and the database lock is
    /// released.
    pub async fn stop(&self) {
        self.runs.abort_all("server shutting down").await;
        // Streams stay open (the next boot closes them), with their output kept.
        let _ = self
            .engine
            .streams
            .send(crate::stream::FlushRun { run_id: None })
            .await;
        // Not graceful: WebSocket clients would hold a graceful stop open
        // until the shutdown timeout, and no request is left half-done.
        if let Some(http) = &self.http {
            http.stop(false).await;
        }
        // A poisoned mutex still holds the lock; take it either way.
        let lock = match self.lock.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(lock);
    }
}

/// A header as text; one that is not text becomes a value no admission
/// rule accepts, so it is refused rather than taken as absent.
fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("<not text>"))
}

async fn websocket(
    req: HttpRequest,
    stream: web::Payload,
    app: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let upgrade = Upgrade {
        host: header_text(&req, header::HOST),
        origin: header_text(&req, header::ORIGIN),
        authorization: header_text(&req, header::AUTHORIZATION),
        query: req.query_string(),
    };
    if let Err(refusal) = app.admission.check(&upgrade) {
        let status = actix_web::http::StatusCode::from_u16(refusal.status())
            .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
        let peer = req
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(%peer, status = status.as_u16(), "refused WebSocket upgrade: {refusal}");
        let mut response = HttpResponse::build(status);
        if status == actix_web::http::StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        return Ok(response.body(refusal.to_string()));
    }
    let id = app.next_client.fetch_add(1, Ordering::Relaxed);
    ws::WsResponseBuilder::new(
        ClientConnection::new(id, app.get_ref().clone()),
        &req,
        stream,
    )
    .frame_size(MAX_FRAME_BYTES)
    .start()
}

/// Starts rummy inside the current actix system.
pub async fn start(mut config: Config, options: StartOptions) -> Result<ServerHandle, StartError> {
    // Before anything touches the database: a second process must neither
    // migrate under a live one nor mark its runs interrupted.
    let mut lock = {
        let path = config.db_path.clone();
        tokio::task::spawn_blocking(move || crate::store::db::lock(&path))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??
    };
    if !config.project_roots.is_empty() {
        let roots = config.project_roots.clone();
        config.project_roots =
            tokio::task::spawn_blocking(move || admission::canonical_project_roots(&roots))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .map_err(StartError::ProjectRoots)?;
    }
    let config = Arc::new(config);
    create_home_dirs(&config.home).await;
    let store = {
        let path = config.db_path.clone();
        let mmap = config.mmap_mb;
        // Opening runs migrations: blocking work, off the async thread.
        let conn = tokio::task::spawn_blocking(move || crate::store::db::open(&path, mmap))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Store::start(conn, config.db_path.clone(), config.mmap_mb)
    };
    let tools = options
        .tools
        .unwrap_or_else(|| Arc::new(ToolRegistry::builtin()));
    let mut schemes = bootstrap_schemes();
    schemes.extend(tools.schemes());
    store.run(RegisterSchemes(schemes)).await?;
    for m in &config.models {
        store
            .run(UpsertModel {
                alias: m.alias.clone(),
                actual: m.actual.clone(),
                context_length: m.context_length,
            })
            .await?;
    }
    if let Some(days) = config.retention_days {
        match store.run(PurgeOldRuns { days }).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("retention: removed {n} finished run(s) older than {days} day(s)")
            }
            // Upstream only warns: a failed purge must not keep the server down.
            Err(e) => tracing::warn!("retention purge failed: {e}"),
        }
    }
    let recovered = store.run(RecoverInterrupted).await?;
    if recovered.aborted > 0 {
        tracing::info!(
            "marked {} interrupted run(s) aborted (499)",
            recovered.aborted
        );
    }
    let swept = store
        .run(SweepOpenStreams {
            token_divisor: config.token_divisor,
        })
        .await?;
    if swept > 0 {
        tracing::info!("closed {swept} stream(s) left open by the last run of the server (cancelled, server restart)");
    }
    let hub = Hub::with_change_feed(store.addr().clone().recipient()).start();
    let engine = Arc::new(Engine {
        store: store.clone(),
        hub: hub.clone(),
        providers: options
            .providers
            .unwrap_or_else(|| ProviderRegistry::from_config(&config)),
        tools,
        config: config.clone(),
        streams: StreamRegistry::new(store.clone(), hub.clone(), config.token_divisor).start(),
        editor: Default::default(),
    });
    let runs = RunService::start(engine.clone());
    // Runs that were waiting on a proposal wait again, on the same one.
    for run_id in recovered.waiting {
        if let Err(e) = runs.resume(run_id).await {
            tracing::error!(
                run_id,
                "could not resume the run's wait on its proposal: {e}"
            );
        }
    }
    let next_client = Arc::new(AtomicU64::new(1));
    let (local_addr, http) = if options.listen {
        let (addr, http) = listen(Listener {
            config: config.clone(),
            store: store.clone(),
            hub: hub.clone(),
            engine: engine.clone(),
            runs: runs.clone(),
            next_client: next_client.clone(),
        })?;
        note_listener(&mut lock, addr, config.admission.auth_token.is_some());
        (Some(addr), Some(http))
    } else {
        tracing::info!("rummy started without a listener");
        (None, None)
    };
    Ok(ServerHandle {
        local_addr,
        store,
        hub,
        engine,
        runs,
        next_client,
        http,
        lock: std::sync::Mutex::new(Some(lock)),
    })
}

/// Records the listener in the lock file for `rummy run`; a failure only
/// warns (`rummy run` then reports the database as busy).
fn note_listener(lock: &mut crate::store::db::DbLock, addr: SocketAddr, token: bool) {
    let mut reachable = addr;
    if addr.ip().is_unspecified() {
        reachable.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if let Err(e) = lock.note_listener(&format!("ws://{reachable}"), token) {
        tracing::warn!("could not record the listener in the lock file: {e}");
    }
}

/// The folders skills and personas are read from (upstream's installer
/// makes them; a server started without it would answer every skill call
/// with "not found"). A failure only warns: the server runs without them.
async fn create_home_dirs(home: &std::path::Path) {
    let home = home.to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        for dir in ["skills", "personas"] {
            let path = home.join(dir);
            if let Err(e) = std::fs::create_dir_all(&path) {
                tracing::warn!("could not create {}: {e}", path.display());
            }
        }
    })
    .await;
    if let Err(e) = made {
        tracing::warn!("could not create the RUMMY_HOME folders: {e}");
    }
}

/// Binds first, so the admission rules know the port actually bound (the
/// configured one may be 0), then serves the upgrade on it.
/// What the listener's connections share, before the port is known.
struct Listener {
    config: Arc<Config>,
    store: Store,
    hub: Addr<Hub>,
    engine: Arc<Engine>,
    runs: RunService,
    next_client: Arc<AtomicU64>,
}

fn listen(parts: Listener) -> Result<(SocketAddr, actix_web::dev::ServerHandle), StartError> {
    let config = parts.config.clone();
    let listen_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StartError::PortInUse {
                bind: config.bind.to_string(),
                port: config.port,
            }
        } else {
            StartError::Listen {
                bind: config.bind.to_string(),
                port: config.port,
                source,
            }
        }
    };
    let listener = std::net::TcpListener::bind((config.bind, config.port)).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let local_addr = listener.local_addr().map_err(listen_error)?;
    let state = AppState {
        admission: Arc::new(Admission::new(
            &config.admission,
            config.bind,
            local_addr.port(),
        )),
        store: parts.store,
        hub: parts.hub,
        engine: parts.engine,
        runs: parts.runs,
        config: parts.config,
        next_client: parts.next_client,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .default_service(web::to(websocket))
    })
    .workers(2)
    .disable_signals()
    // Without this, actix lingers up to 1 s after a WebSocket's close
    // handshake waiting for the client to drop TCP, while the client
    // (rightly, RFC 6455 §7.1.1) waits for the server to drop it first.
    .client_disconnect_timeout(std::time::Duration::ZERO)
    .listen(listener)
    .map_err(listen_error)?;
    let running = server.run();
    let http = running.handle();
    actix_web::rt::spawn(running);
    tracing::info!("rummy listening on ws://{local_addr}");
    Ok((local_addr, http))
}
