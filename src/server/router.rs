//! The JSON-RPC method registry: one table drives dispatch, the project
//! gate, timeouts, the `rpc_log` audit and `discover`.

use super::methods;
use super::AppState;
use crate::protocol::jsonrpc::{RpcError, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::protocol::notifications::NOTIFICATIONS;
use crate::store::{LogRpc, StoreError};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

/// Error code for a gated method called before `rummy/hello`.
pub const NOT_INITIALIZED: i64 = -32002;

/// The project a connection said hello to.
#[derive(Debug, Clone)]
pub struct Binding {
    pub project_id: i64,
    pub project_root: String,
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

/// A handler's success: the result, and a new binding for `rummy/hello`.
pub struct Reply {
    pub result: Value,
    pub bind: Option<Binding>,
}

impl From<Value> for Reply {
    fn from(result: Value) -> Self {
        Reply { result, bind: None }
    }
}

pub type HandlerFn = fn(CallCtx, Value) -> BoxFuture<'static, Result<Reply, RpcError>>;

/// One registered method.
pub struct MethodSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// (param, "type — meaning"); a `?` marks optional ones.
    pub params: &'static [(&'static str, &'static str)],
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
}

/// Older verbs still documented upstream, mapped onto current methods.
fn canonical(method: &str) -> &str {
    match method {
        "rpc/discover" => "discover",
        "init" => "rummy/hello",
        other => other,
    }
}

pub fn find(method: &str) -> Option<&'static MethodSpec> {
    let name = canonical(method);
    methods::ALL
        .iter()
        .chain(methods::ENTRY_METHODS)
        .find(|m| m.name == name)
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
    let (reply, bind) = match outcome {
        Ok(r) => (Ok(r.result), r.bind),
        Err(e) => (Err(e), None),
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
    Outcome { reply, bind }
}

/// The `discover` result, built from the registry.
pub fn describe() -> Value {
    let mut methods = Map::new();
    for m in methods::ALL.iter().chain(methods::ENTRY_METHODS) {
        let params: Map<String, Value> = m
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        methods.insert(
            m.name.to_string(),
            json!({ "description": m.description, "params": params }),
        );
    }
    let notifications: Map<String, Value> = NOTIFICATIONS
        .iter()
        .map(|(name, description)| (name.to_string(), json!({ "description": description })))
        .collect();
    json!({ "methods": methods, "notifications": notifications })
}
