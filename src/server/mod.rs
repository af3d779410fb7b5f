//! The server: boot (store, schemes, models, recovery), the actix-web
//! listener and the WebSocket upgrade, and the handle embedders hold.

pub mod connection;
pub mod hub;
pub mod methods;
pub mod router;

use crate::config::Config;
use crate::llm::ProviderRegistry;
use crate::run::{Engine, RunService};
use crate::store::schemes::bootstrap_schemes;
use crate::store::schemes::RegisterSchemes;
use crate::store::{RecoverInterrupted, Store, StoreError, UpsertModel};
use crate::tools::ToolRegistry;
use actix::prelude::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use connection::ClientConnection;
use hub::Hub;
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
    next_client: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the database: {0}")]
    Database(#[from] crate::store::db::DbError),
    #[error("could not prepare the database: {0}")]
    Store(#[from] StoreError),
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
    pub local_addr: SocketAddr,
    pub store: Store,
    pub hub: Addr<Hub>,
    pub engine: Arc<Engine>,
    /// The run lifecycle API (start, continue, fork, cancel, resolve).
    pub runs: RunService,
    http: actix_web::dev::ServerHandle,
}

impl ServerHandle {
    /// Clean shutdown: runs in flight end 499 (recorded, nothing
    /// half-written), then the listener stops.
    pub async fn stop(&self) {
        self.runs.abort_all("server shutting down").await;
        // Not graceful: WebSocket clients would hold a graceful stop open
        // until the shutdown timeout, and no request is left half-done.
        self.http.stop(false).await;
    }
}

async fn websocket(
    req: HttpRequest,
    stream: web::Payload,
    app: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
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
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let config = Arc::new(config);
    let store = {
        let path = config.db_path.clone();
        let mmap = config.mmap_mb;
        // Opening runs migrations: blocking work, off the async thread.
        let conn = tokio::task::spawn_blocking(move || crate::store::db::open(&path, mmap))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Store::start(conn, config.db_path.clone(), config.mmap_mb)
    };
    let tools = Arc::new(ToolRegistry::builtin());
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
    let recovered = store.run(RecoverInterrupted).await?;
    if recovered > 0 {
        tracing::info!("marked {recovered} interrupted run(s) aborted (499)");
    }
    let hub = Hub::default().start();
    let engine = Arc::new(Engine {
        store: store.clone(),
        hub: hub.clone(),
        providers: ProviderRegistry::from_config(&config),
        tools,
        config: config.clone(),
    });
    let runs = RunService::start(engine.clone());
    let state = AppState {
        store: store.clone(),
        hub: hub.clone(),
        engine: engine.clone(),
        runs: runs.clone(),
        config: config.clone(),
        next_client: Arc::new(AtomicU64::new(1)),
    };
    let bind = (config.bind, config.port);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .default_service(web::to(websocket))
    })
    .workers(2)
    .disable_signals()
    .bind(bind)
    .map_err(|source| {
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
    })?;
    let local_addr = server
        .addrs()
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(bind));
    let running = server.run();
    let http = running.handle();
    actix_web::rt::spawn(running);
    tracing::info!("rummy listening on ws://{local_addr}");
    Ok(ServerHandle {
        local_addr,
        store,
        hub,
        engine,
        runs,
        http,
    })
}
