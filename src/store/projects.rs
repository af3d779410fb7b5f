//! Projects, models and the RPC audit log.

use super::schema::{models, projects, rpc_log};
use super::{store_ops, StoreOp, StoreResult};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde::Serialize;

/// Upserts a project by its unique name; non-null new root/config win.
pub struct UpsertProject {
    pub name: String,
    pub project_root: String,
    pub config_path: Option<String>,
}

impl StoreOp for UpsertProject {
    type Output = i64;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<i64> {
        let id = diesel::insert_into(projects::table)
            .values((
                projects::name.eq(&self.name),
                projects::project_root.eq(&self.project_root),
                projects::config_path.eq(&self.config_path),
            ))
            .on_conflict(projects::name)
            .do_update()
            .set((
                projects::project_root.eq(&self.project_root),
                projects::config_path.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Text>,
                >(
                    "COALESCE(excluded.config_path, config_path)"
                )),
            ))
            .returning(projects::id)
            .get_result(conn)?;
        Ok(id)
    }
}

#[derive(Debug, Clone, Serialize, Queryable, PartialEq)]
pub struct ModelRow {
    #[serde(skip)]
    pub id: i64,
    pub alias: String,
    pub actual: String,
    pub context_length: Option<i64>,
}

pub struct ListModels {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl StoreOp for ListModels {
    type Output = Vec<ModelRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<ModelRow>> {
        Ok(models::table
            .select((
                models::id,
                models::alias,
                models::actual,
                models::context_length,
            ))
            .order(models::alias.asc())
            .limit(self.limit.unwrap_or(-1))
            .offset(self.offset.unwrap_or(0))
            .load(conn)?)
    }
}

pub struct GetModel(pub String);

impl StoreOp for GetModel {
    type Output = Option<ModelRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<ModelRow>> {
        Ok(models::table
            .filter(models::alias.eq(&self.0))
            .select((
                models::id,
                models::alias,
                models::actual,
                models::context_length,
            ))
            .first(conn)
            .optional()?)
    }
}

/// Upsert by alias: `actual` replaced; a null context length keeps the
/// stored one only while `actual` is unchanged.
pub struct UpsertModel {
    pub alias: String,
    pub actual: String,
    pub context_length: Option<i64>,
}

impl StoreOp for UpsertModel {
    type Output = i64;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<i64> {
        let id = diesel::insert_into(models::table)
            .values((
                models::alias.eq(&self.alias),
                models::actual.eq(&self.actual),
                models::context_length.eq(self.context_length),
            ))
            .on_conflict(models::alias)
            .do_update()
            .set((
                models::actual.eq(&self.actual),
                models::context_length.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                >(
                    // A new `actual` is another model: its window is rediscovered.
                    "CASE WHEN excluded.actual = actual \
                     THEN COALESCE(excluded.context_length, context_length) \
                     ELSE excluded.context_length END",
                )),
            ))
            .returning(models::id)
            .get_result(conn)?;
        Ok(id)
    }
}

pub struct RemoveModel(pub String);

impl StoreOp for RemoveModel {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        Ok(diesel::delete(models::table.filter(models::alias.eq(&self.0))).execute(conn)?)
    }
}

/// Writes back a discovered context length.
pub struct SetModelContextLength {
    pub alias: String,
    pub context_length: i64,
}

impl StoreOp for SetModelContextLength {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::update(models::table.filter(models::alias.eq(&self.alias)))
            .set(models::context_length.eq(Some(self.context_length)))
            .execute(conn)?;
        Ok(())
    }
}

/// One row of `rpc_log`.
pub struct LogRpc {
    pub project_id: Option<i64>,
    pub method: String,
    pub rpc_id: Option<i64>,
    pub params: String,
    pub result: Option<String>,
    pub error: Option<String>,
}

impl StoreOp for LogRpc {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::insert_into(rpc_log::table)
            .values((
                rpc_log::project_id.eq(self.project_id),
                rpc_log::method.eq(&self.method),
                rpc_log::rpc_id.eq(self.rpc_id),
                rpc_log::params.eq(&self.params),
                rpc_log::result.eq(&self.result),
                rpc_log::error.eq(&self.error),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// Number of rows in `rpc_log` for a method (audit checks and tests).
pub struct CountRpcLog(pub String);

impl StoreOp for CountRpcLog {
    type Output = i64;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<i64> {
        Ok(rpc_log::table
            .filter(rpc_log::method.eq(&self.0))
            .count()
            .get_result(conn)?)
    }
}

store_ops!(
    UpsertProject => i64,
    ListModels => Vec<ModelRow>,
    GetModel => Option<ModelRow>,
    UpsertModel => i64,
    RemoveModel => usize,
    SetModelContextLength => (),
    LogRpc => (),
    CountRpcLog => i64,
);
