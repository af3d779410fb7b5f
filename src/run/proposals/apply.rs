//! Applying a decision: the entry's state and, for an accepted proposal,
//! its effect on disk (through the editor when one is attached) and on the
//! file entries.

use super::*;

/// Applies one decision to a pending proposal: (state, outcome, vetoed).
pub(super) async fn apply(
    engine: &Engine,
    run: &RunRow,
    path: &str,
    action: Resolution,
    output: Option<String>,
) -> Result<(EntryState, Option<String>, bool), ResolveError> {
    let row = entry(engine, run.id, path)
        .await?
        .filter(|r| r.state == EntryState::Proposed)
        .ok_or_else(|| ResolveError::NotPending(path.to_string()))?;
    let mut attrs: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    let effect = effect_of(&row, &attrs);
    let target = attr(&attrs, "path")
        .or_else(|| attr(&attrs, "question"))
        .unwrap_or(&row.path)
        .to_string();
    if effect == Effect::Answer {
        if let Some(answer) = &output {
            attrs.insert("answer".into(), Value::String(answer.clone()));
        }
    }
    let mut turn = row.turn;
    let (state, outcome, body, vetoed) = match action {
        Resolution::Reject => {
            let body = output.clone().unwrap_or_else(|| "rejected".into());
            let mut error = format!("The user rejected the proposal for {target}.");
            if let Some(o) = output.as_deref().filter(|o| !o.trim().is_empty()) {
                error.push_str(&format!(" They said: {o}"));
            }
            attrs.insert(RESOLUTION_ATTR.into(), json!("rejected"));
            attrs.insert("error".into(), Value::String(error));
            (EntryState::Failed, Some("permission"), body, false)
        }
        Resolution::Error => {
            let body = output.clone().unwrap_or_else(|| row.body.clone());
            let error = match output.as_deref().filter(|o| !o.trim().is_empty()) {
                Some(o) => format!("The proposal for {target} failed: {o}"),
                None => format!("The proposal for {target} failed."),
            };
            attrs.insert(RESOLUTION_ATTR.into(), json!("error"));
            attrs.insert("error".into(), Value::String(error));
            (EntryState::Failed, Some("error"), body, false)
        }
        Resolution::Accept => {
            if let Some(file) = readonly_file(engine, run, &effect).await? {
                let refusal = format!("refused: {file} is readonly");
                attrs.insert(RESOLUTION_ATTR.into(), json!("vetoed"));
                attrs.insert("error".into(), Value::String(refusal.clone()));
                (EntryState::Failed, Some("readonly"), refusal, true)
            } else {
                match accept(engine, run, &row, &effect).await {
                    Ok(()) => {
                        attrs.insert(RESOLUTION_ATTR.into(), json!("accepted"));
                        let body = match &effect {
                            Effect::Answer => {
                                turn = next_turn(engine, run).await?;
                                output.clone().unwrap_or_default()
                            }
                            // The proposed text is what was applied.
                            Effect::Write(_) | Effect::Remove(_) | Effect::Copy { .. } => {
                                row.body.clone()
                            }
                            Effect::Resolve => output.clone().unwrap_or_else(|| row.body.clone()),
                            Effect::Stream => crate::stream::opened_body(&row),
                        };
                        (EntryState::Resolved, None, body, false)
                    }
                    Err(e) => {
                        let error = format!("Could not apply the proposal for {target}: {e}");
                        attrs.insert(RESOLUTION_ATTR.into(), json!("error"));
                        attrs.insert("error".into(), Value::String(error));
                        (EntryState::Failed, Some("error"), row.body.clone(), false)
                    }
                }
            }
        }
    };
    engine
        .store
        .run(SetEntry(EntryWrite {
            body: Some(body),
            state: Some(state),
            outcome: outcome.map(str::to_string),
            attributes: Some(Value::Object(attrs)),
            turn,
            ..EntryWrite::new(run.id, row.path.clone(), Writer::Plugin)
        }))
        .await?;
    Ok((state, outcome.map(str::to_string), vetoed))
}

async fn next_turn(engine: &Engine, run: &RunRow) -> Result<i64, ResolveError> {
    Ok(engine.store.run(GetRunById(run.id)).await?.next_turn)
}

/// The first file the acceptance would change that is `readonly`: by the
/// project's constraints or by the file entry's own mark.
async fn readonly_file(
    engine: &Engine,
    run: &RunRow,
    effect: &Effect,
) -> Result<Option<String>, ResolveError> {
    let files = touched_files(effect);
    if files.is_empty() {
        return Ok(None);
    }
    let constraints = engine.store.run(ListConstraints(run.project_id)).await?;
    for file in files {
        let constrained = constraints.iter().any(|c| {
            c.visibility == "readonly" && (c.pattern == file || hedmatch(&c.pattern, file))
        });
        let marked = match entry(engine, run.id, file).await? {
            Some(row) => serde_json::from_str::<Value>(&row.attributes)
                .ok()
                .and_then(|a| a.get("readonly").and_then(Value::as_bool))
                .unwrap_or(false),
            None => false,
        };
        if constrained || marked {
            return Ok(Some(file.to_string()));
        }
    }
    Ok(None)
}

pub(super) async fn project_root(engine: &Engine, run: &RunRow) -> Result<PathBuf, String> {
    engine
        .store
        .run(ProjectRoot(run.project_id))
        .await
        .map_err(|e| e.to_string())?
        .map(PathBuf::from)
        .ok_or_else(|| "the project has no root directory".to_string())
}

/// Disk work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, files::WriteError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("file operation failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// The side effects of an acceptance: disk first, then the entries.
async fn accept(
    engine: &Engine,
    run: &RunRow,
    row: &EntryRow,
    effect: &Effect,
) -> Result<(), String> {
    match effect {
        Effect::Answer | Effect::Resolve => Ok(()),
        // The handle goes unused until the server runs commands itself.
        Effect::Stream => crate::stream::open(engine, run, row).await.map(|_| ()),
        Effect::Write(file) => {
            let root = project_root(engine, run).await?;
            through_editor(engine, run, file, &row.body).await;
            let (f, content) = (file.clone(), row.body.clone());
            let written = blocking(move || files::write_file(&root, &f, &content)).await?;
            file_written(engine, run, &written, row.body.clone()).await
        }
        Effect::Remove(file) => {
            let root = project_root(engine, run).await?;
            let f = file.clone();
            blocking(move || files::remove_file(&root, &f)).await?;
            remove_view(engine, run, file).await
        }
        Effect::Copy { pairs, is_move } => {
            let root = project_root(engine, run).await?;
            for (from, to) in pairs {
                copy_pair(engine, run, &root, from, to, *is_move).await?;
            }
            Ok(())
        }
    }
}

/// An accepted write of project file `file` goes to the run's editor
/// first, when it offers writes: its buffer gets the text. The disk write
/// that follows (same text) keeps the file entry's stamps true for the
/// scanner, so the editor sees no conflicting change.
/// Answers whether the editor took the write.
async fn through_editor(engine: &Engine, run: &RunRow, file: &str, content: &str) -> bool {
    let Some(write) = engine
        .editor
        .get()
        .and_then(|e| e.write_text(run.id, file, content))
    else {
        return false;
    };
    match write.await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(run = %run.alias, "the editor could not write {file}: {e}");
            false
        }
    }
}

async fn remove_view(engine: &Engine, run: &RunRow, path: &str) -> Result<(), String> {
    engine
        .store
        .run(RemoveView {
            run_id: run.id,
            path: path.to_string(),
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn copy_pair(
    engine: &Engine,
    run: &RunRow,
    root: &std::path::Path,
    from: &str,
    to: &str,
    is_move: bool,
) -> Result<(), String> {
    let source = entry(engine, run.id, from)
        .await
        .map_err(|e| e.to_string())?;
    let known = source.is_some();
    let body = source.map(|r| r.body).unwrap_or_default();
    let root = root.to_path_buf();
    match (is_file(from), is_file(to)) {
        (true, true) if known && through_editor(engine, run, to, &body).await => {
            // The editor has the run's text of the source (maybe its own
            // unsaved buffer): the disk gets that same text.
            let (t, content) = (to.to_string(), body.clone());
            let r = root.clone();
            let written = blocking(move || files::write_file(&r, &t, &content)).await?;
            if is_move {
                let f = from.to_string();
                blocking(move || files::remove_file(&root, &f)).await?;
            }
            file_written(engine, run, &written, body).await?;
        }
        (true, true) => {
            let (f, t) = (from.to_string(), to.to_string());
            let written = blocking(move || files::copy_file(&root, &f, &t, is_move)).await?;
            file_written(engine, run, &written, body).await?;
        }
        (false, true) => {
            through_editor(engine, run, to, &body).await;
            let (t, content) = (to.to_string(), body.clone());
            let written = blocking(move || files::write_file(&root, &t, &content)).await?;
            file_written(engine, run, &written, body).await?;
        }
        (true, false) => {
            engine
                .store
                .run(SetEntry(EntryWrite {
                    body: Some(body),
                    state: Some(EntryState::Resolved),
                    turn: run_turn(engine, run).await?,
                    ..EntryWrite::new(run.id, to, Writer::Model)
                }))
                .await
                .map_err(|e| e.to_string())?;
            if is_move {
                let f = from.to_string();
                blocking(move || files::remove_file(&root, &f)).await?;
            }
        }
        (false, false) => return Ok(()),
    }
    if is_move {
        remove_view(engine, run, from).await?;
    }
    Ok(())
}

async fn run_turn(engine: &Engine, run: &RunRow) -> Result<i64, String> {
    engine
        .store
        .run(GetRunById(run.id))
        .await
        .map(|r| (r.next_turn - 1).max(0))
        .map_err(|e| e.to_string())
}

/// The file entry after a write: new content and hash, the stamps the
/// scanner compares, visibility kept. A file new to the run is shown and
/// gets an `active` constraint, so the next scan keeps it in view.
async fn file_written(
    engine: &Engine,
    run: &RunRow,
    written: &Written,
    body: String,
) -> Result<(), String> {
    let err = |e: StoreError| e.to_string();
    let existed = entry(engine, run.id, &written.path)
        .await
        .map_err(err)?
        .is_some();
    let turn = engine
        .store
        .run(GetRunById(run.id))
        .await
        .map_err(err)?
        .next_turn;
    engine
        .store
        .run(SetEntry(EntryWrite {
            body: Some(body),
            state: Some(EntryState::Resolved),
            visibility: (!existed).then(|| "visible".to_string()),
            attributes: Some(json!({ "size": written.size, "mtime": written.mtime })),
            hash: Some(written.hash.clone()),
            turn,
            ..EntryWrite::new(run.id, written.path.clone(), Writer::Plugin)
        }))
        .await
        .map_err(err)?;
    if !existed {
        let constraints = engine
            .store
            .run(ListConstraints(run.project_id))
            .await
            .map_err(err)?;
        if !constraints.iter().any(|c| c.pattern == written.path) {
            engine
                .store
                .run(SetConstraint {
                    project_id: run.project_id,
                    pattern: written.path.clone(),
                    visibility: "active".into(),
                })
                .await
                .map_err(err)?;
        }
    }
    Ok(())
}
