//! Model aliases at runtime.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::params::{AddModelParams, AliasParams, Page};
use crate::server::router::{params, store_error, CallCtx, Reply};
use crate::store::{ListModels, RemoveModel, UpsertModel};
use serde_json::{json, Value};

pub async fn get_models(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: Page = params("getModels", raw)?;
    let rows = ctx
        .app
        .store
        .run(ListModels {
            limit: p.limit,
            offset: p.offset,
        })
        .await
        .map_err(store_error)?;
    Ok(json!(rows).into())
}

/// The same rule `RUMMY_MODEL_{alias}` settings follow (`llm::check_model`).
fn validate(p: &AddModelParams) -> Result<(), RpcError> {
    crate::llm::check_model(&p.alias, &p.actual, p.context_length)
        .map_err(|e| RpcError::invalid_params(format!("addModel: {e}")))
}

pub async fn add_model(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: AddModelParams = params("addModel", raw)?;
    validate(&p)?;
    let id = ctx
        .app
        .store
        .run(UpsertModel {
            alias: p.alias.clone(),
            actual: p.actual,
            context_length: p.context_length,
        })
        .await
        .map_err(store_error)?;
    Ok(json!({ "id": id, "alias": p.alias }).into())
}

pub async fn remove_model(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: AliasParams = params("removeModel", raw)?;
    crate::llm::check_alias(&p.alias)
        .map_err(|e| RpcError::invalid_params(format!("removeModel: {e}")))?;
    ctx.app
        .store
        .run(RemoveModel(p.alias))
        .await
        .map_err(store_error)?;
    Ok(json!({ "status": "ok" }).into())
}
