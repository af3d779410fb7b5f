//! Model aliases at runtime.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::models::{
    AddModelParams, AddModelResult, GetModelsParams, ModelInfo, RemoveModelParams,
};
use crate::protocol::StatusOkResult;
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::{ListModels, ModelRow, RemoveModel, UpsertModel};
use serde_json::Value;

impl From<ModelRow> for ModelInfo {
    fn from(row: ModelRow) -> Self {
        ModelInfo {
            alias: row.alias,
            actual: row.actual,
            context_length: row.context_length,
        }
    }
}

pub async fn get_models(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetModelsParams = params("getModels", raw)?;
    let rows = ctx
        .app
        .store
        .run(ListModels {
            limit: p.limit,
            offset: p.offset,
        })
        .await
        .map_err(store_error)?;
    let rows: Vec<ModelInfo> = rows.into_iter().map(ModelInfo::from).collect();
    reply(&rows)
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
    reply(&AddModelResult { id, alias: p.alias })
}

pub async fn remove_model(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: RemoveModelParams = params("removeModel", raw)?;
    crate::llm::check_alias(&p.alias)
        .map_err(|e| RpcError::invalid_params(format!("removeModel: {e}")))?;
    ctx.app
        .store
        .run(RemoveModel(p.alias))
        .await
        .map_err(store_error)?;
    reply(&StatusOkResult::default())
}
