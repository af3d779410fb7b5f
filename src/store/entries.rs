//! Entries and their per-run views: writes, promotion, log paths, error
//! records and the reads the turn loop and RPCs need.

use super::paths::{log_path, normalize_path, scheme_of};
use super::schema::{entries, run_views, runs};
use super::schemes::scheme_info;
use super::{prepared, FirstRow};
use super::{store_ops, EntryState, StoreError, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// One write to an entry and its view in a run (spec 01 §3.1).
///
/// With `body` it is a full write (permission check, entry and view
/// upsert); without, only the given state/outcome, visibility and
/// attributes (merged) change, and a missing entry is a no-op.
#[derive(Debug, Clone)]
pub struct EntryWrite {
    pub run_id: i64,
    pub path: String,
    pub writer: Writer,
    pub body: Option<String>,
    pub state: Option<EntryState>,
    pub outcome: Option<String>,
    pub visibility: Option<String>,
    pub attributes: Option<Value>,
    pub turn: i64,
    pub loop_id: Option<i64>,
    /// Content hash (project files); kept when None.
    pub hash: Option<String>,
}

impl EntryWrite {
    pub fn new(run_id: i64, path: impl Into<String>, writer: Writer) -> EntryWrite {
        EntryWrite {
            run_id,
            path: path.into(),
            writer,
            body: None,
            state: None,
            outcome: None,
            visibility: None,
            attributes: None,
            turn: 0,
            loop_id: None,
            hash: None,
        }
    }
}

/// The three visibilities an entry's view can have.
pub const VISIBILITIES: [&str; 3] = ["visible", "summarized", "archived"];

/// Refuses anything but one of [`VISIBILITIES`].
pub(crate) fn check_visibility(v: &str) -> StoreResult<()> {
    if VISIBILITIES.contains(&v) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "visibility must be one of {} (got {v:?})",
            VISIBILITIES.join(", ")
        )))
    }
}

/// Applies one write; returns whether an entry was written or changed.
pub(crate) fn write_entry(conn: &mut SqliteConnection, w: &EntryWrite) -> StoreResult<bool> {
    if let Some(v) = &w.visibility {
        check_visibility(v)?;
    }
    let path = normalize_path(&w.path);
    match &w.body {
        Some(body) => full_write(conn, w, &path, body).map(|_| true),
        None => partial_write(conn, w, &path),
    }
}

pub(crate) fn find_view(
    conn: &mut SqliteConnection,
    run_id: i64,
    path: &str,
) -> StoreResult<Option<(i64, i64)>> {
    // `run_views.path` mirrors the entry's path (kept by triggers), so this
    // is one probe of (run_id, path) however many runs share the path.
    Ok(run_views::table
        .filter(run_views::run_id.eq(run_id))
        .filter(run_views::path.eq(path))
        .select((run_views::id, run_views::entry_id))
        .first_row(conn)
        .optional()?)
}

/// Refuses a write by a tier the scheme does not list.
pub(crate) fn check_writer(
    conn: &mut SqliteConnection,
    path: &str,
    writer: Writer,
) -> StoreResult<super::schemes::SchemeInfo> {
    let scheme = scheme_of(path);
    let info = scheme_info(conn, scheme)?;
    if !info.writable_by.iter().any(|x| x == writer.as_str()) {
        return Err(StoreError::Permission {
            writer: writer.as_str().into(),
            scheme: scheme.unwrap_or("file").into(),
            allowed: info.writable_by.join(", "),
        });
    }
    Ok(info)
}

fn full_write(
    conn: &mut SqliteConnection,
    w: &EntryWrite,
    path: &str,
    body: &str,
) -> StoreResult<i64> {
    let scheme = scheme_of(path);
    let info = check_writer(conn, path, w.writer)?;
    // Visibility: explicit, else what the run already sees, else the
    // scheme default (upstream resets to the default on every rewrite).
    let existing_visibility: Option<String> = run_views::table
        .filter(run_views::run_id.eq(w.run_id))
        .filter(run_views::path.eq(path))
        .select(run_views::visibility)
        .first_row(conn)
        .optional()?;
    let scope = match info.default_scope.as_str() {
        "global" => "global".to_string(),
        "project" => {
            let project: i64 = runs::table
                .find(w.run_id)
                .select(runs::project_id)
                .first_row(conn)?;
            format!("project:{project}")
        }
        _ => format!("run:{}", w.run_id),
    };
    let mut attributes = w.attributes.clone();
    if scheme == Some("log") {
        if let (Some(Value::Object(map)), Some(action)) =
            (attributes.as_mut(), super::paths::log_action(path))
        {
            map.insert("action".into(), Value::String(action.into()));
        }
    }
    let attributes_json = attributes.as_ref().map(Value::to_string);
    let hash = w.hash.clone();
    // Raw statements that diesel keeps prepared (see `prepared`): an
    // upsert built with the DSL is compiled afresh on every write.
    let entry_id: i64 = match &attributes_json {
        Some(a) => prepared(
            "INSERT INTO entries (scope, path, body, attributes) VALUES (?, ?, ?, ?) \
             ON CONFLICT (scope, path) DO UPDATE SET body = excluded.body, \
               attributes = excluded.attributes, updated_at = CURRENT_TIMESTAMP \
             RETURNING id",
        )
        .text(&scope)
        .text(path)
        .text(body)
        .text(a),
        None => prepared(
            "INSERT INTO entries (scope, path, body) VALUES (?, ?, ?) \
             ON CONFLICT (scope, path) DO UPDATE SET body = excluded.body, \
               updated_at = CURRENT_TIMESTAMP \
             RETURNING id",
        )
        .text(&scope)
        .text(path)
        .text(body),
    }
    .returning::<BigInt>()
    .get_result(conn)?;
    if let Some(h) = &hash {
        prepared("UPDATE entries SET hash = ? WHERE id = ?")
            .text(h)
            .int(entry_id)
            .execute(conn)?;
    }
    // One view per path: a write that lands in another scope (a fork child
    // writing an inherited path) repoints the view instead of adding a
    // second row the model would also see.
    diesel::delete(
        run_views::table
            .filter(run_views::run_id.eq(w.run_id))
            .filter(run_views::path.eq(path))
            .filter(run_views::entry_id.ne(entry_id)),
    )
    .execute(conn)?;
    let state = w.state.unwrap_or(EntryState::Resolved);
    let visibility = w
        .visibility
        .as_deref()
        .or(existing_visibility.as_deref())
        .unwrap_or_else(|| info.default_visibility(scheme));
    let view_id: i64 = prepared(
        "INSERT INTO run_views (run_id, entry_id, loop_id, turn, state, outcome, visibility, \
           path) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (run_id, entry_id) DO UPDATE SET loop_id = excluded.loop_id, \
           turn = excluded.turn, state = excluded.state, outcome = excluded.outcome, \
           visibility = excluded.visibility, write_count = write_count + 1, \
           updated_at = CURRENT_TIMESTAMP \
         RETURNING id",
    )
    .int(w.run_id)
    .int(entry_id)
    .opt_int(w.loop_id)
    .int(w.turn)
    .text(state.as_str())
    .opt_text(w.outcome.as_deref())
    .text(visibility)
    .text(path)
    .returning::<BigInt>()
    .get_result(conn)?;
    Ok(view_id)
}

fn partial_write(conn: &mut SqliteConnection, w: &EntryWrite, path: &str) -> StoreResult<bool> {
    let Some((view_id, entry_id)) = find_view(conn, w.run_id, path)? else {
        return Ok(false);
    };
    check_writer(conn, path, w.writer)?;
    if let Some(state) = w.state {
        prepared(
            "UPDATE run_views SET state = ?, outcome = ?, updated_at = CURRENT_TIMESTAMP \
             WHERE id = ?",
        )
        .text(state.as_str())
        .opt_text(w.outcome.as_deref())
        .int(view_id)
        .execute(conn)?;
    }
    if let Some(visibility) = &w.visibility {
        prepared(
            "UPDATE run_views SET visibility = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
        )
        .text(visibility)
        .int(view_id)
        .execute(conn)?;
    }
    if let Some(attributes) = &w.attributes {
        let entry_id = own_entry(conn, w.run_id, view_id, entry_id)?;
        let patch = attributes.to_string();
        prepared(
            "UPDATE entries SET attributes = json_patch(attributes, ?), \
             updated_at = CURRENT_TIMESTAMP WHERE id = ?",
        )
        .text(&patch)
        .int(entry_id)
        .execute(conn)?;
    }
    Ok(true)
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Copy-on-write for forks: before a run changes an entry's content in
/// place, an entry it only sees through another run's scope is copied into
/// its own scope and its view repointed, so the other run never changes.
/// Project and global entries are shared on purpose and stay as they are.
pub(crate) fn own_entry(
    conn: &mut SqliteConnection,
    run_id: i64,
    view_id: i64,
    entry_id: i64,
) -> StoreResult<i64> {
    let scope: String = entries::table
        .find(entry_id)
        .select(entries::scope)
        .first_row(conn)?;
    let mine = format!("run:{run_id}");
    if !scope.starts_with("run:") || scope == mine {
        return Ok(entry_id);
    }
    let copied: NewId = diesel::sql_query(
        "INSERT INTO entries (scope, path, body, attributes, hash) \
         SELECT ?, path, body, attributes, hash FROM entries WHERE id = ? \
         ON CONFLICT (scope, path) DO UPDATE SET body = excluded.body, \
           attributes = excluded.attributes, hash = excluded.hash \
         RETURNING id",
    )
    .bind::<Text, _>(&mine)
    .bind::<BigInt, _>(entry_id)
    .get_result(conn)?;
    diesel::update(run_views::table.find(view_id))
        .set(run_views::entry_id.eq(copied.id))
        .execute(conn)?;
    Ok(copied.id)
}

/// A typed entry write (see [`EntryWrite`]).
pub struct SetEntry(pub EntryWrite);

impl StoreOp for SetEntry {
    type Output = bool;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        write_entry(conn, &self.0)
    }
}

/// Several entry writes in one transaction: all land or none does. A
/// turn's audit records go together so they cost one commit, not five.
pub struct SetEntries(pub Vec<EntryWrite>);

impl StoreOp for SetEntries {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        for w in &self.0 {
            write_entry(conn, w)?;
        }
        Ok(())
    }
}

/// An entry as one run sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable)]
pub struct EntryRow {
    pub path: String,
    pub scheme: Option<String>,
    pub body: String,
    pub attributes: String,
    pub state: EntryState,
    pub outcome: Option<String>,
    pub visibility: String,
    pub turn: i64,
}

/// One entry of a run by path.
pub struct GetEntry {
    pub run_id: i64,
    pub path: String,
}

impl StoreOp for GetEntry {
    type Output = Option<EntryRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<EntryRow>> {
        let path = normalize_path(&self.path);
        Ok(run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.run_id))
            .filter(run_views::path.eq(&path))
            .select(ENTRY_COLUMNS)
            .first_row(conn)
            .optional()?)
    }
}

pub(crate) type EntryColumns = (
    entries::path,
    entries::scheme,
    entries::body,
    entries::attributes,
    run_views::state,
    run_views::outcome,
    run_views::visibility,
    run_views::turn,
);

pub(crate) const ENTRY_COLUMNS: EntryColumns = (
    entries::path,
    entries::scheme,
    entries::body,
    entries::attributes,
    run_views::state,
    run_views::outcome,
    run_views::visibility,
    run_views::turn,
);

/// Every entry of a run, by path (embedding programs and tests).
pub struct ListEntries(pub i64);

impl StoreOp for ListEntries {
    type Output = Vec<EntryRow>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<EntryRow>> {
        Ok(run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.0))
            .order(entries::path.asc())
            .select(ENTRY_COLUMNS)
            .load(conn)?)
    }
}

/// Allocates distinct log paths for one turn's commands: a base already
/// used in the run (or earlier in the list) gets `_1`, `_2`, ... so every
/// recorded command keeps its own entry (upstream shares one; a defect).
pub struct AllocateLogPaths {
    pub run_id: i64,
    pub bases: Vec<String>,
}

impl StoreOp for AllocateLogPaths {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        let mut taken = HashSet::new();
        let mut out = Vec::with_capacity(self.bases.len());
        for base in self.bases {
            let path = unique_path(conn, self.run_id, &base, &taken)?;
            taken.insert(path.clone());
            out.push(path);
        }
        Ok(out)
    }
}

pub(crate) fn unique_path(
    conn: &mut SqliteConnection,
    run_id: i64,
    base: &str,
    taken: &HashSet<String>,
) -> StoreResult<String> {
    let mut candidate = base.to_string();
    let mut n = 0;
    while taken.contains(&candidate) || find_view(conn, run_id, &candidate)?.is_some() {
        n += 1;
        candidate = format!("{base}_{n}");
    }
    Ok(candidate)
}

/// Writes an error record `log://turn_N/error/{message}` (failed, outcome
/// `status:N`, visible); returns its path.
pub struct LogError {
    pub run_id: i64,
    pub turn: i64,
    pub loop_id: Option<i64>,
    pub message: String,
    pub status: i64,
    pub attributes: Map<String, Value>,
}

impl StoreOp for LogError {
    type Output = String;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<String> {
        let base = log_path(self.turn, "error", &self.message);
        let path = unique_path(conn, self.run_id, &base, &HashSet::new())?;
        let mut attributes = self.attributes;
        attributes.insert("status".into(), Value::from(self.status));
        write_entry(
            conn,
            &EntryWrite {
                body: Some(self.message),
                state: Some(EntryState::Failed),
                outcome: Some(format!("status:{}", self.status)),
                visibility: Some("visible".into()),
                attributes: Some(Value::Object(attributes)),
                turn: self.turn,
                loop_id: self.loop_id,
                ..EntryWrite::new(self.run_id, path.clone(), Writer::System)
            },
        )?;
        Ok(path)
    }
}

store_ops!(
    SetEntry => bool,
    SetEntries => (),
    GetEntry => Option<EntryRow>,
    ListEntries => Vec<EntryRow>,
    AllocateLogPaths => Vec<String>,
    LogError => String,
);
