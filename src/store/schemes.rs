//! The schemes registry: category, model visibility, default scope and
//! which writer tiers may write each scheme (spec 01 §1.5, §1.6).

use super::schema::schemes;
use super::FirstRow;
use super::{store_ops, StoreError, StoreOp, StoreResult};
use diesel::prelude::*;
use diesel::SqliteConnection;
use serde::{Deserialize, Serialize};

/// The four writer tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Writer {
    System,
    Plugin,
    Client,
    Model,
}

impl Writer {
    pub fn as_str(self) -> &'static str {
        match self {
            Writer::System => "system",
            Writer::Plugin => "plugin",
            Writer::Client => "client",
            Writer::Model => "model",
        }
    }
}

/// A scheme registration.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeDef {
    pub name: &'static str,
    pub model_visible: bool,
    /// data | logging | unknown | prompt | audit
    pub category: &'static str,
    /// run | project | global
    pub default_scope: &'static str,
    pub writable_by: &'static [Writer],
}

impl SchemeDef {
    /// A model-visible, run-scoped scheme written by the model and plugins.
    pub const fn tool(name: &'static str, category: &'static str) -> SchemeDef {
        SchemeDef {
            name,
            model_visible: true,
            category,
            default_scope: "run",
            writable_by: &[Writer::Model, Writer::Plugin],
        }
    }
}

/// Schemes that exist without any tool owning them.
pub fn bootstrap_schemes() -> Vec<SchemeDef> {
    let mut defs: Vec<SchemeDef> = [
        "instructions",
        "system",
        "reasoning",
        "model",
        "user",
        "assistant",
        "content",
    ]
    .into_iter()
    .map(|name| SchemeDef {
        name,
        model_visible: false,
        category: "audit",
        default_scope: "run",
        writable_by: &[Writer::System],
    })
    .collect();
    defs.push(SchemeDef {
        name: "prompt",
        model_visible: true,
        category: "prompt",
        default_scope: "run",
        writable_by: &[Writer::Plugin],
    });
    defs.push(SchemeDef {
        name: "log",
        model_visible: true,
        category: "logging",
        default_scope: "run",
        writable_by: &[Writer::System, Writer::Plugin, Writer::Model],
    });
    defs.push(SchemeDef {
        name: "run",
        model_visible: false,
        category: "logging",
        default_scope: "run",
        writable_by: &[Writer::System, Writer::Plugin, Writer::Client],
    });
    // Bare paths (project files) resolve to this row in v_model_context.
    defs.push(SchemeDef::tool("file", "data"));
    defs
}

/// Upserts scheme rows (boot: bootstrap rows, then every tool's).
pub struct RegisterSchemes(pub Vec<SchemeDef>);

impl StoreOp for RegisterSchemes {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        for def in self.0 {
            let writers: Vec<&str> = def.writable_by.iter().map(|w| w.as_str()).collect();
            let writers =
                serde_json::to_string(&writers).map_err(|e| StoreError::Invalid(e.to_string()))?;
            diesel::insert_into(schemes::table)
                .values((
                    schemes::name.eq(def.name),
                    schemes::model_visible.eq(def.model_visible),
                    schemes::category.eq(def.category),
                    schemes::default_scope.eq(def.default_scope),
                    schemes::writable_by.eq(&writers),
                ))
                .on_conflict(schemes::name)
                .do_update()
                .set((
                    schemes::model_visible.eq(def.model_visible),
                    schemes::category.eq(def.category),
                    schemes::default_scope.eq(def.default_scope),
                    schemes::writable_by.eq(&writers),
                ))
                .execute(conn)?;
        }
        Ok(())
    }
}

store_ops!(RegisterSchemes => ());

/// Registers a client attachment's URI scheme (`https`, `zed`, ...; see
/// `run::editor::attach`) as a data scheme the model sees, unless it exists
/// already (a tool's scheme keeps its own rules). Only URI scheme
/// characters are taken.
pub struct RegisterDataScheme(pub String);

impl StoreOp for RegisterDataScheme {
    type Output = ();
    fn run(self, conn: &mut diesel::SqliteConnection) -> StoreResult<()> {
        use diesel::RunQueryDsl;
        let valid = self.0.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
        if !valid {
            return Err(StoreError::Invalid(format!(
                "{:?} is not a URI scheme",
                self.0
            )));
        }
        diesel::sql_query(
            "INSERT OR IGNORE INTO schemes (name, model_visible, category, default_scope, writable_by) \
             VALUES (?, 1, 'data', 'run', '[\"model\",\"plugin\"]')",
        )
        .bind::<diesel::sql_types::Text, _>(&self.0)
        .execute(conn)?;
        Ok(())
    }
}

store_ops!(RegisterDataScheme => ());

/// What a write needs to know about its scheme.
#[derive(Debug, Clone)]
pub struct SchemeInfo {
    pub category: String,
    pub default_scope: String,
    pub writable_by: Vec<String>,
}

impl SchemeInfo {
    /// Visibility of a full write that names none (spec 02 §1.5).
    pub fn default_visibility(&self, scheme: Option<&str>) -> &'static str {
        if scheme == Some("skill") {
            return "visible";
        }
        match self.category.as_str() {
            "prompt" | "unknown" | "logging" => "visible",
            _ => "summarized",
        }
    }
}

/// Looks up a scheme; bare paths and unregistered schemes behave as a
/// visible, run-scoped logging scheme written by model and plugins.
pub fn scheme_info(conn: &mut SqliteConnection, scheme: Option<&str>) -> StoreResult<SchemeInfo> {
    let fallback = || SchemeInfo {
        category: "logging".into(),
        default_scope: "run".into(),
        writable_by: vec!["model".into(), "plugin".into()],
    };
    let Some(name) = scheme else {
        return Ok(fallback());
    };
    let row: Option<(Option<String>, String, String)> = schemes::table
        .filter(schemes::name.eq(name))
        .select((
            schemes::category,
            schemes::default_scope,
            schemes::writable_by,
        ))
        .first_row(conn)
        .optional()?;
    Ok(match row {
        None => fallback(),
        Some((category, default_scope, writable_by)) => SchemeInfo {
            category: category.unwrap_or_else(|| "logging".into()),
            default_scope,
            writable_by: serde_json::from_str(&writable_by).unwrap_or_default(),
        },
    })
}
