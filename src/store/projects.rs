//! Projects, models and the RPC audit log.

use super::schema::{models, projects, rpc_log};
use super::FirstRow;
use super::{store_ops, StoreOp, StoreResult};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde::Serialize;
use serde_json::Value;

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
            .first_row(conn)
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

/// Longest string value `rpc_log` keeps of params and results: bodies
/// (streamed output, file writes) live in their entries already.
pub const RPC_LOG_MAX_STRING: usize = 1024;
/// Longest params or result text `rpc_log` keeps in all.
pub const RPC_LOG_MAX_JSON: usize = 4096;

/// One row of `rpc_log`. Build it with [`LogRpc::record`], which bounds
/// what it keeps; the fields hold exactly what is written.
pub struct LogRpc {
    pub project_id: Option<i64>,
    pub method: String,
    /// JSON of the request id, `None` for a notification.
    pub rpc_id: Option<String>,
    pub params: String,
    pub result: Option<String>,
    pub error: Option<String>,
}

impl LogRpc {
    /// A row for one call: ids as JSON (strings and numbers both), the
    /// result bounded by [`bounded_json`]. `params` is the already bounded
    /// text: callers cut it before the handler takes the value.
    pub fn record(
        project_id: Option<i64>,
        method: &str,
        rpc_id: Option<&Value>,
        params: String,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> LogRpc {
        LogRpc {
            project_id,
            method: method.to_string(),
            rpc_id: rpc_id.map(Value::to_string),
            params,
            result: result.map(bounded_json),
            error: error.map(str::to_string),
        }
    }
}

/// `value` as JSON text for the audit log, always valid JSON: each string
/// longer than [`RPC_LOG_MAX_STRING`] bytes is cut with a
/// `…[truncated N bytes]` marker, and if the whole is still longer than
/// [`RPC_LOG_MAX_JSON`] it is kept as one JSON string of its start, cut
/// the same way.
pub fn bounded_json(value: &Value) -> String {
    let text = clip_strings(value).to_string();
    if text.len() <= RPC_LOG_MAX_JSON {
        return text;
    }
    // JSON text has no raw control characters, so quoting it at most
    // doubles it (each `"` and `\` gains a backslash): half the budget fits.
    Value::String(clip(&text, RPC_LOG_MAX_JSON / 2)).to_string()
}

/// A copy of `value` with long strings cut; short ones and numbers as is.
fn clip_strings(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > RPC_LOG_MAX_STRING => {
            Value::String(clip(s, RPC_LOG_MAX_STRING))
        }
        Value::Array(items) => Value::Array(items.iter().map(clip_strings).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), clip_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The first `max` bytes of `text` (backed off to a char boundary) and a
/// marker naming how many bytes were dropped.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..cut], text.len() - cut)
}

impl StoreOp for LogRpc {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        diesel::insert_into(rpc_log::table)
            .values((
                rpc_log::project_id.eq(self.project_id),
                rpc_log::method.eq(&self.method),
                rpc_log::rpc_id.eq(&self.rpc_id),
                rpc_log::params.eq(&self.params),
                rpc_log::result.eq(&self.result),
                rpc_log::error.eq(&self.error),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// One `rpc_log` row as stored.
#[derive(Debug, Clone, Queryable, PartialEq)]
pub struct RpcLogRow {
    pub id: i64,
    pub project_id: Option<i64>,
    pub method: String,
    /// JSON of the request id.
    pub rpc_id: Option<String>,
    pub params: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
}

/// The newest `rpc_log` rows for a method, newest first (audits and tests).
pub struct ListRpcLog {
    pub method: String,
    pub limit: i64,
}

impl StoreOp for ListRpcLog {
    type Output = Vec<RpcLogRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<RpcLogRow>> {
        Ok(rpc_log::table
            .filter(rpc_log::method.eq(&self.method))
            .select((
                rpc_log::id,
                rpc_log::project_id,
                rpc_log::method,
                rpc_log::rpc_id,
                rpc_log::params,
                rpc_log::result,
                rpc_log::error,
            ))
            .order(rpc_log::id.desc())
            .limit(self.limit)
            .load(conn)?)
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
    ListRpcLog => Vec<RpcLogRow>,
    CountRpcLog => i64,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{open, MIGRATIONS};
    use diesel_migrations::MigrationHarness;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    #[test]
    fn small_values_are_kept_whole() {
        let v = serde_json::json!({"path": "src/a.rs", "n": 7, "flags": [true, null]});
        assert_eq!(parse(&bounded_json(&v)), v);
    }

    #[test]
    fn long_strings_are_cut_with_a_marker_and_stay_json() {
        let body = "é".repeat(600_000); // 1.2 MB, two bytes a char
        let v = serde_json::json!({"path": "a", "body": body, "nested": [{"x": body}]});
        let text = bounded_json(&v);
        assert!(text.len() < RPC_LOG_MAX_JSON + 100, "{}", text.len());
        let kept = parse(&text);
        assert_eq!(kept["path"], "a");
        let cut = kept["body"].as_str().unwrap();
        assert!(cut.starts_with("éé"));
        assert!(cut.ends_with("…[truncated 1198976 bytes]"), "{cut}");
        assert_eq!(kept["nested"][0]["x"], kept["body"]);
    }

    #[test]
    fn a_large_whole_becomes_one_cut_json_string() {
        let many: Vec<Value> = (0..5000).map(|i| Value::from(format!("item{i}"))).collect();
        let text = bounded_json(&Value::Array(many));
        let kept = parse(&text);
        let s = kept.as_str().expect("a JSON string");
        assert!(s.starts_with(r#"["item0","item1""#), "{s}");
        assert!(s.contains("…[truncated "), "{s}");
        assert!(text.len() < RPC_LOG_MAX_JSON + 200, "{}", text.len());
    }

    #[test]
    fn ids_are_kept_as_json_whatever_their_type() {
        let params = || "{}".to_string();
        let numeric = LogRpc::record(None, "ping", Some(&Value::from(7)), params(), None, None);
        assert_eq!(numeric.rpc_id.as_deref(), Some("7"));
        let string = LogRpc::record(None, "ping", Some(&Value::from("7")), params(), None, None);
        assert_eq!(string.rpc_id.as_deref(), Some(r#""7""#));
        let none = LogRpc::record(None, "ping", None, params(), None, None);
        assert_eq!(none.rpc_id, None);
    }

    /// Rows written before string ids keep their (integer) ids, as JSON.
    #[test]
    fn the_text_id_migration_keeps_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("rummy.db"), 0).unwrap();
        // Back to the schema before this migration, with an old-style row.
        loop {
            let last = conn.revert_last_migration(MIGRATIONS).unwrap();
            let digits: String = last
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            if digits == "20261202000001" {
                break;
            }
        }
        diesel::sql_query(
            "INSERT INTO rpc_log (method, rpc_id, params) VALUES ('ping', 42, '{}'), ('note', NULL, '{}')",
        )
        .execute(&mut conn)
        .unwrap();
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        let ping = ListRpcLog {
            method: "ping".into(),
            limit: 10,
        }
        .run(&mut conn)
        .unwrap();
        assert_eq!(ping.len(), 1);
        assert_eq!(ping[0].rpc_id.as_deref(), Some("42"));
        assert_eq!(ping[0].params.as_deref(), Some("{}"));
        let note = ListRpcLog {
            method: "note".into(),
            limit: 10,
        }
        .run(&mut conn)
        .unwrap();
        assert_eq!(note[0].rpc_id, None);
        // And string ids now fit.
        LogRpc::record(
            None,
            "ping",
            Some(&Value::from("abc")),
            "{}".into(),
            None,
            None,
        )
        .run(&mut conn)
        .unwrap();
        let ping = ListRpcLog {
            method: "ping".into(),
            limit: 1,
        }
        .run(&mut conn)
        .unwrap();
        assert_eq!(ping[0].rpc_id.as_deref(), Some(r#""abc""#));
    }
}
