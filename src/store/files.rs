//! Project files in the store: per-project file constraints and the
//! ingestion of a scanned project root into a run's file entries.

use super::entries::{find_view, write_entry, EntryWrite};
use super::schema::{entries, file_constraints, projects, run_views};
use super::FirstRow;
use super::{store_ops, EntryState, StoreError, StoreOp, StoreResult, Writer};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

pub const CONSTRAINTS: [&str; 3] = ["active", "readonly", "ignore"];

#[derive(Debug, Clone, PartialEq, Serialize, Queryable)]
pub struct Constraint {
    pub pattern: String,
    pub visibility: String,
}

/// Adds or replaces a constraint (pattern relative to the project root).
pub struct SetConstraint {
    pub project_id: i64,
    pub pattern: String,
    pub visibility: String,
}

impl StoreOp for SetConstraint {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        if !CONSTRAINTS.contains(&self.visibility.as_str()) {
            return Err(StoreError::Invalid(
                "file/constraint: visibility must be one of active, readonly, ignore".into(),
            ));
        }
        diesel::insert_into(file_constraints::table)
            .values((
                file_constraints::project_id.eq(self.project_id),
                file_constraints::pattern.eq(&self.pattern),
                file_constraints::visibility.eq(&self.visibility),
            ))
            .on_conflict((file_constraints::project_id, file_constraints::pattern))
            .do_update()
            .set(file_constraints::visibility.eq(&self.visibility))
            .execute(conn)?;
        Ok(())
    }
}

pub struct DropConstraint {
    pub project_id: i64,
    pub pattern: String,
}

impl StoreOp for DropConstraint {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        Ok(diesel::delete(
            file_constraints::table
                .filter(file_constraints::project_id.eq(self.project_id))
                .filter(file_constraints::pattern.eq(&self.pattern)),
        )
        .execute(conn)?)
    }
}

pub struct ListConstraints(pub i64);

impl StoreOp for ListConstraints {
    type Output = Vec<Constraint>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<Constraint>> {
        Ok(file_constraints::table
            .filter(file_constraints::project_id.eq(self.0))
            .order(file_constraints::pattern.asc())
            .select((file_constraints::pattern, file_constraints::visibility))
            .load(conn)?)
    }
}

/// A project's root directory.
pub struct ProjectRoot(pub i64);

impl StoreOp for ProjectRoot {
    type Output = Option<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Option<String>> {
        Ok(projects::table
            .find(self.0)
            .select(projects::project_root)
            .first_row::<Option<String>>(conn)
            .optional()?
            .flatten())
    }
}

/// What the store remembers of a file, to rescan only what changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileStamp {
    pub hash: Option<String>,
    pub size: Option<u64>,
    pub mtime: Option<i64>,
}

/// The file entries a run has, with their stamps.
pub struct FileIndex(pub i64);

impl StoreOp for FileIndex {
    type Output = HashMap<String, FileStamp>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<HashMap<String, FileStamp>> {
        let rows: Vec<(String, Option<String>, String)> = run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(self.0))
            .filter(entries::scheme.is_null())
            .select((entries::path, entries::hash, entries::attributes))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(path, hash, attributes)| {
                let attrs: serde_json::Value =
                    serde_json::from_str(&attributes).unwrap_or_default();
                let stamp = FileStamp {
                    hash,
                    size: attrs.get("size").and_then(|v| v.as_u64()),
                    mtime: attrs.get("mtime").and_then(|v| v.as_i64()),
                };
                (path, stamp)
            })
            .collect())
    }
}

/// Why a file's content was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Skip {
    Binary,
    Oversize,
}

/// One file found by a scan whose content is new or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedFile {
    pub path: String,
    pub body: String,
    pub hash: String,
    pub size: u64,
    pub mtime: i64,
    pub skipped: Option<Skip>,
}

/// Writes scanned files into a run: new files enter `archived` (or
/// `visible` under an `active` constraint), `ignore`d ones are left out,
/// vanished files leave the run. Existing files keep their visibility.
pub struct IngestFiles {
    pub run_id: i64,
    pub turn: i64,
    pub files: Vec<ScannedFile>,
    /// Constraint visibility per path (already matched by the scanner).
    pub constraints: HashMap<String, String>,
    pub removed: Vec<String>,
}

impl StoreOp for IngestFiles {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        let mut written = 0;
        for f in self.files {
            let constraint = self.constraints.get(&f.path).map(String::as_str);
            if constraint == Some("ignore") {
                continue;
            }
            let exists = find_view(conn, self.run_id, &f.path)?.is_some();
            let visibility = match (constraint, exists) {
                (Some("active"), _) => Some("visible".to_string()),
                (_, true) => None,
                (_, false) => Some("archived".to_string()),
            };
            let mut attributes = json!({ "size": f.size, "mtime": f.mtime });
            if constraint == Some("readonly") {
                attributes["readonly"] = json!(true);
            }
            let (state, outcome) = match f.skipped {
                None => (EntryState::Resolved, None),
                Some(skip) => {
                    attributes["skipped"] = json!(skip);
                    (
                        EntryState::Failed,
                        Some(
                            serde_json::to_value(skip)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                        ),
                    )
                }
            };
            write_entry(
                conn,
                &EntryWrite {
                    body: Some(f.body),
                    state: Some(state),
                    outcome,
                    visibility,
                    attributes: Some(attributes),
                    hash: Some(f.hash),
                    turn: self.turn,
                    ..EntryWrite::new(self.run_id, f.path, Writer::Plugin)
                },
            )?;
            written += 1;
        }
        for path in self.removed {
            if let Some((view_id, _)) = find_view(conn, self.run_id, &path)? {
                diesel::delete(run_views::table.find(view_id)).execute(conn)?;
            }
        }
        Ok(written)
    }
}

store_ops!(
    SetConstraint => (),
    DropConstraint => usize,
    ListConstraints => Vec<Constraint>,
    ProjectRoot => Option<String>,
    FileIndex => HashMap<String, FileStamp>,
    IngestFiles => usize,
);
