//! JSON-RPC dispatch: the method table (`methods::ALL`) drives the project
//! gate, timeouts and the `rpc_log` audit; what each method takes and
//! answers, and so `discover`, comes from `protocol::schema`.

use super::methods;
use super::AppState;
use crate::protocol::jsonrpc::{RpcError, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::protocol::notifications::Notification;
use crate::protocol::schema;
use crate::protocol::session::DiscoverResult;
use crate::store::{LogRpc, StoreError};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Error code for a gated method called before `rummy/hello`.
pub const NOT_INITIALIZED: i64 = -32002;

/// The project a connection said hello to.
#[derive(Debug, Clone)]
pub struct Binding {
    pub project_id: i64,
    pub project_root: String,
    /// The client listed `run/changed` in hello's `subscribe`.
    pub run_changed: bool,
}

/// What a handler gets: services, the caller and its binding.
pub struct CallCtx {
    pub app: AppState,
    pub client_id: u64,
    pub binding: Option<Binding>,
}

impl CallCtx {
    /// The bound project (the gate guarantees it for gated methods).
    pub fn project(&self) -> Result<&Binding, RpcError> {
        self.binding.as_ref().ok_or_else(|| {
            RpcError::new(
                NOT_INITIALIZED,
                "Project not initialized. Call rummy/hello first.",
            )
        })
    }
}

/// A handler's success: the result, a new binding for `rummy/hello`, and
/// notifications for this client alone, sent right after the reply.
pub struct Reply {
    pub result: Value,
    pub bind: Option<Binding>,
    pub notices: Vec<Notification>,
}

impl From<Value> for Reply {
    fn from(result: Value) -> Self {
        Reply {
            result,
            bind: None,
            notices: Vec::new(),
        }
    }
}

pub type HandlerFn = fn(CallCtx, Value) -> BoxFuture<'static, Result<Reply, RpcError>>;

/// A typed result as a reply. Protocol types always serialize; a failure
/// here would be a bug, reported as an internal error.
pub fn reply<T: Serialize>(result: &T) -> Result<Reply, RpcError> {
    serde_json::to_value(result)
        .map(Reply::from)
        .map_err(|e| RpcError::internal(format!("could not encode the result: {e}")))
}

/// How the server answers one method; its name matches a served
/// `protocol::schema::MethodDef`, which says what it takes and answers.
pub struct MethodSpec {
    pub name: &'static str,
    /// Needs `rummy/hello` first.
    pub gated: bool,
    /// Exempt from RUMMY_RPC_TIMEOUT.
    pub long_running: bool,
    pub handler: HandlerFn,
}

/// The outcome a connection turns into a frame.
pub struct Outcome {
    pub reply: Result<Value, RpcError>,
    pub bind: Option<Binding>,
    pub notices: Vec<Notification>,
}

/// The handler of a method or of one of its older aliases.
pub fn find(method: &str) -> Option<&'static MethodSpec> {
    let def = schema::method(method).filter(|d| d.served)?;
    methods::ALL
        .iter()
        .chain(methods::ENTRY_METHODS)
        .find(|m| m.name == def.name)
}

/// Parses params into a typed shape; failures are invalid-params errors.
pub fn params<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(format!("{method}: {e}")))
}

/// Maps store failures: caller mistakes are invalid params, the rest internal.
pub fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::NotFound(m) | StoreError::Invalid(m) => RpcError::invalid_params(m),
        e @ StoreError::Permission { .. } => RpcError::invalid_params(e.to_string()),
        e if e.is_constraint() => RpcError::invalid_params(e.to_string()),
        e => RpcError::internal(e.to_string()),
    }
}

/// Runs one call end to end and records it in `rpc_log`.
pub async fn dispatch(
    call: CallCtx,
    method: &str,
    params: Value,
    rpc_id: Option<&Value>,
) -> Outcome {
    let store = call.app.store.clone();
    let timeout = call.app.config.rpc_timeout;
    let project_id = call.binding.as_ref().map(|b| b.project_id);
    // Bounded now: the handler takes `params`, and a 1 MiB write must not
    // be copied whole just to be cut later.
    let logged_params = crate::store::bounded_json(&params);
    let outcome = match find(method) {
        None => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method '{method}' not found."),
        )),
        Some(spec) if spec.gated && call.binding.is_none() => {
            call.project().map(|_| Reply::from(Value::Null))
        }
        Some(spec) => {
            let fut = (spec.handler)(call, params);
            if spec.long_running {
                fut.await
            } else {
                match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(RpcError::new(
                        INTERNAL_ERROR,
                        format!("RPC '{method}' timed out after {}ms.", timeout.as_millis()),
                    )),
                }
            }
        }
    };
    let (reply, bind, notices) = match outcome {
        Ok(r) => (Ok(r.result), r.bind, r.notices),
        Err(e) => (Err(e), None, Vec::new()),
    };
    let log = LogRpc::record(
        bind.as_ref().map(|b| b.project_id).or(project_id),
        method,
        rpc_id,
        logged_params,
        reply.as_ref().ok(),
        reply.as_ref().err().map(|e| e.message.as_str()),
    );
    if let Err(e) = store.run(log).await {
        tracing::warn!("could not record {method} in rpc_log: {e}");
    }
    if let Err(e) = &reply {
        if e.code == INTERNAL_ERROR {
            tracing::warn!("{method} failed: {}", e.message);
        } else if e.code == INVALID_PARAMS {
            tracing::debug!("{method} refused: {}", e.message);
        }
    }
    Outcome {
        reply,
        bind,
        notices,
    }
}

/// The `discover` result, derived from the protocol registry once.
pub fn describe() -> &'static DiscoverResult {
    static DISCOVER: std::sync::OnceLock<DiscoverResult> = std::sync::OnceLock::new();
    DISCOVER.get_or_init(schema::discover)
}
