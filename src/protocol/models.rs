//! Models area: `getModels`, `addModel`, `removeModel`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `getModels` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetModelsParams {
    /// Page size. Omitted lists every alias.
    pub limit: Option<i64>,
    /// Rows to skip. Omitted starts at the first.
    pub offset: Option<i64>,
}

/// One `getModels` row, ordered by alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    /// The alias clients name in `attributes.model`.
    pub alias: String,
    /// `{provider}/{model}`.
    pub actual: String,
    /// Context window in tokens; null until configured or discovered.
    pub context_length: Option<i64>,
}

/// `addModel` params.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddModelParams {
    /// Alias clients name.
    pub alias: String,
    /// `{provider}/{model}`.
    pub actual: String,
    /// Context window in tokens. Omitted keeps a stored length.
    pub context_length: Option<i64>,
}

/// `addModel` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddModelResult {
    pub id: i64,
    pub alias: String,
}

/// `removeModel` params. The result is `{"status": "ok"}`, also for an
/// unknown alias.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RemoveModelParams {
    /// Alias to remove.
    pub alias: String,
}
