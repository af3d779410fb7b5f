//! rummy: an LLM agent server. Clients speak JSON-RPC 2.0 over WebSocket;
//! runs are driven turn by turn against an LLM provider; all model-facing
//! state lives as entries in one store.
//!
//! Embedding: inside an actix system, `Server::start(config, options)`
//! returns a [`ServerHandle`] whose actor addresses (store, hub) take typed
//! messages directly; with `StartOptions { listen: false, .. }` no port is
//! opened at all.

pub mod acp;
pub mod cli;
pub mod config;
pub mod context;
pub mod exec;
pub mod fast_map;
pub mod files;
pub mod hedberg;
pub mod hub;
pub mod llm;
pub mod model_spec;
pub mod parse;
pub mod protocol;
pub mod run;
pub mod server;
pub mod store;
pub mod stream;
pub mod tokens;
pub mod tools;

pub use config::Config;
pub use server::{ServerHandle, StartError, StartOptions};

/// Entry point for programs hosting rummy.
pub struct Server;

impl Server {
    /// Locks the database (one process per database), opens the store,
    /// registers schemes and models, recovers interrupted runs and, unless
    /// `options.listen` is off, starts listening.
    pub async fn start(config: Config, options: StartOptions) -> Result<ServerHandle, StartError> {
        server::start(config, options).await
    }
}
