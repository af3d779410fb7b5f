//! Skills and personas from `RUMMY_HOME/skills/*.md` and
//! `RUMMY_HOME/personas/*.md` (upstream's skill and persona plugins).
//!
//! A name is a file name inside its folder and nothing else: separators,
//! `..`, absolute paths and glob characters (which would turn
//! `skill://{name}` into a pattern) are refused before any file is read.

use crate::protocol::jsonrpc::RpcError;
use crate::protocol::skills::{
    GetSkillsParams, HomeFile, PersonaSetParams, SkillAddParams, SkillAddResult, SkillInfo,
};
use crate::protocol::{StatusOk, StatusOkResult};
use crate::server::router::{params, reply, store_error, CallCtx, Reply};
use crate::store::{
    EntryState, EntryWrite, QueryEntries, RemoveEntries, RunRow, SetEntry, SetRunPersona, Writer,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SKILLS: &str = "skills";
const PERSONAS: &str = "personas";

fn bad(message: impl Into<String>) -> RpcError {
    RpcError::invalid_params(message)
}

/// Checks that `name` names a file directly inside its folder.
pub(crate) fn check_name(folder: &str, name: &str) -> Result<(), String> {
    let refused = name == "."
        || name == ".."
        || name.contains(['/', '\\', '*', '?', '[', ']', '\0'])
        || name.chars().any(char::is_control)
        || Path::new(name).is_absolute();
    if refused {
        Err(format!(
            "name must be a file name inside RUMMY_HOME/{folder} (no path separators, \"..\" or \
             glob characters): {name:?}"
        ))
    } else {
        Ok(())
    }
}

fn required_name(folder: &str, name: Option<String>) -> Result<String, RpcError> {
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name is required"))?;
    check_name(folder, &name).map_err(bad)?;
    Ok(name)
}

fn file_path(ctx: &CallCtx, folder: &str, name: &str) -> PathBuf {
    ctx.app.config.home.join(folder).join(format!("{name}.md"))
}

/// The caller's run: `run is required` / `Run not found: x` (upstream's
/// wording for these methods).
async fn resolve_run(ctx: &CallCtx, run: Option<String>) -> Result<RunRow, RpcError> {
    super::entries::find_run(ctx, run, |alias| format!("Run not found: {alias}")).await
}

/// Blocking file work, off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RpcError::internal(format!("file work failed: {e}")))?
}

async fn read_file(path: PathBuf) -> Result<String, RpcError> {
    blocking(move || match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(bad(format!("Not found: {}", path.display())))
        }
        Err(e) => Err(bad(format!("could not read {}: {e}", path.display()))),
    })
    .await
}

/// `[{name, path}]` for the `.md` files of a folder, by name; a missing
/// folder lists nothing.
async fn list_folder(ctx: &CallCtx, folder: &'static str) -> Result<Vec<HomeFile>, RpcError> {
    let dir = ctx.app.config.home.join(folder);
    blocking(move || {
        let failed = |e: std::io::Error| {
            RpcError::internal(format!("could not list {}: {e}", dir.display()))
        };
        let reader = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(failed(e)),
        };
        let mut files = Vec::new();
        for entry in reader {
            let entry = entry.map_err(failed)?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".md")) else {
                continue;
            };
            if name.is_empty() || check_name(folder, name).is_err() {
                continue;
            }
            files.push(HomeFile {
                name: name.to_string(),
                path: entry.path().display().to_string(),
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    })
    .await
}

fn status_ok() -> Result<Reply, RpcError> {
    reply(&StatusOkResult::default())
}

pub async fn skill_add(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: SkillAddParams = params("skill/add", raw)?;
    let name = required_name(SKILLS, p.name)?;
    let run = resolve_run(&ctx, p.run).await?;
    let path = file_path(&ctx, SKILLS, &name);
    let body = read_file(path.clone()).await?;
    ctx.app
        .store
        .run(SetEntry(EntryWrite {
            body: Some(body),
            state: Some(EntryState::Resolved),
            visibility: Some("visible".into()),
            attributes: Some(json!({ "name": name, "source": path.display().to_string() })),
            turn: 0,
            ..EntryWrite::new(run.id, format!("skill://{name}"), Writer::Plugin)
        }))
        .await
        .map_err(store_error)?;
    reply(&SkillAddResult {
        status: StatusOk::Ok,
        skill: name,
    })
}

pub async fn skill_remove(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: SkillAddParams = params("skill/remove", raw)?;
    let name = required_name(SKILLS, p.name)?;
    let run = resolve_run(&ctx, p.run).await?;
    ctx.app
        .store
        .run(RemoveEntries {
            run_id: run.id,
            path: format!("skill://{name}"),
            body_filter: None,
            writer: Writer::Plugin,
        })
        .await
        .map_err(store_error)?;
    status_ok()
}

pub async fn get_skills(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: GetSkillsParams = params("getSkills", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let rows = ctx
        .app
        .store
        .run(QueryEntries {
            run_id: run.id,
            pattern: "**".into(),
            body_filter: None,
            scheme: Some("skill".into()),
            state: None,
            visibility: None,
            token_divisor: ctx.app.config.token_divisor,
        })
        .await
        .map_err(store_error)?;
    let skills: Vec<SkillInfo> = rows
        .into_iter()
        .filter_map(|r| {
            r.path.strip_prefix("skill://").map(|n| SkillInfo {
                name: n.to_string(),
            })
        })
        .collect();
    reply(&skills)
}

pub async fn list_skills(ctx: CallCtx, _: Value) -> Result<Reply, RpcError> {
    reply(&list_folder(&ctx, SKILLS).await?)
}

pub async fn persona_set(ctx: CallCtx, raw: Value) -> Result<Reply, RpcError> {
    let p: PersonaSetParams = params("persona/set", raw)?;
    let run = resolve_run(&ctx, p.run).await?;
    let name = p.name.filter(|n| !n.is_empty());
    if let Some(name) = &name {
        check_name(PERSONAS, name).map_err(bad)?;
    }
    let text = match (p.text.filter(|t| !t.is_empty()), name) {
        (Some(text), _) => Some(text),
        (None, Some(name)) => Some(read_file(file_path(&ctx, PERSONAS, &name)).await?),
        (None, None) => None,
    };
    ctx.app
        .store
        .run(SetRunPersona {
            run_id: run.id,
            persona: text.filter(|t| !t.is_empty()),
        })
        .await
        .map_err(store_error)?;
    status_ok()
}

pub async fn list_personas(ctx: CallCtx, _: Value) -> Result<Reply, RpcError> {
    reply(&list_folder(&ctx, PERSONAS).await?)
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_stay_inside_their_folder() {
        for ok in ["review", "rust-style", "v1.2", "..x", "a b", "ünïcode"] {
            assert!(check_name("skills", ok).is_ok(), "{ok}");
        }
        for refused in [
            "../x",
            "..",
            ".",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "*",
            "a?",
            "[x]",
            "nul\0",
            "tab\t",
        ] {
            let e = check_name("skills", refused).unwrap_err();
            assert!(e.contains("RUMMY_HOME/skills"), "{refused}: {e}");
        }
    }
}
