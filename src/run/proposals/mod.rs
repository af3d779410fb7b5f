//! Proposals: a command's side effect that waits for a client's decision
//! (file writes and edits, file removal, moves and copies touching files,
//! questions). After each dispatched command the turn announces the run's
//! proposals one at a time (`run/proposal`) and waits in its drain for a
//! `Resolve` from any client of the project; the decision is applied here,
//! in one place: the entry's state, the file on disk and the file entry.
//! The run shows 202 while it waits.

use super::actor::{DrainInbox, Resolution, Resolve};
use super::Engine;
use crate::files::{self, Written};
use crate::protocol::notifications::{
    Notification, ProposedEntry, RunProposalNotification, RunResolvedNotification,
};
use crate::store::paths::{log_action, normalize_path, scheme_of};
use crate::store::patterns::hedmatch;
use crate::store::{
    CancelProposals, EntryRow, EntryState, EntryWrite, GetEntry, GetRunById, ListConstraints,
    PendingProposals, ProjectRoot, RemoveView, RunRow, RunStatus, SetConstraint, SetEntry,
    SetRunStatus, StoreError, Writer, RESOLUTION_ATTR,
};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

mod apply;
use apply::*;

/// How a resolution went, as the resolving client is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub state: EntryState,
    pub outcome: Option<String>,
    /// An acceptance a veto (a `readonly` file) turned into a failure.
    pub vetoed: bool,
    /// The run's status after it: 202 while another proposal waits.
    pub status: RunStatus,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} is not a pending proposal of this run")]
    NotPending(String),
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        ResolveError::Failed(e.to_string())
    }
}

pub type ResolveReply = Result<Settled, ResolveError>;

/// What accepting a proposal does, read from its entry.
#[derive(Debug, Clone, PartialEq)]
enum Effect {
    /// Write the proposal's body as the whole file (a `<set>` write or a
    /// `set://` edit).
    Write(String),
    Remove(String),
    /// `(from, to)` pairs of a `<cp>`/`<mv>` that touches files.
    Copy {
        pairs: Vec<(String, String)>,
        is_move: bool,
    },
    /// `<ask_user>`: the output is the answer.
    Answer,
    /// `<sh>`/`<env>`: open the command's output channels and its producer.
    Stream,
    /// Anything else (`sh`, `env`): the entry just resolves.
    Resolve,
}

fn attr<'a>(attrs: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attrs.get(key).and_then(Value::as_str)
}

fn is_file(path: &str) -> bool {
    scheme_of(path).is_none()
}

fn effect_of(row: &EntryRow, attrs: &Map<String, Value>) -> Effect {
    if row.scheme.as_deref() == Some("set") {
        if let Some(p) = attr(attrs, "path") {
            return Effect::Write(p.to_string());
        }
    }
    match log_action(&row.path) {
        Some("set") => match attr(attrs, "path") {
            Some(p) if is_file(p) => Effect::Write(p.to_string()),
            _ => Effect::Resolve,
        },
        Some("rm") => match attr(attrs, "path") {
            Some(p) => Effect::Remove(p.to_string()),
            None => Effect::Resolve,
        },
        Some(tool @ ("mv" | "cp")) => {
            let listed: Option<Vec<(String, String)>> =
                attrs.get("pairs").and_then(Value::as_array).map(|pairs| {
                    pairs
                        .iter()
                        .filter_map(|p| {
                            let pair = p.as_array()?;
                            Some((
                                pair.first()?.as_str()?.to_string(),
                                pair.get(1)?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                });
            let pairs = listed.unwrap_or_else(|| match (attr(attrs, "from"), attr(attrs, "to")) {
                (Some(f), Some(t)) => vec![(f.to_string(), t.to_string())],
                _ => Vec::new(),
            });
            Effect::Copy {
                pairs,
                is_move: tool == "mv",
            }
        }
        Some("ask_user") => Effect::Answer,
        Some("sh" | "env") => Effect::Stream,
        _ => Effect::Resolve,
    }
}

/// The files an acceptance would change: a `readonly` one vetoes it.
fn touched_files(effect: &Effect) -> Vec<&str> {
    match effect {
        Effect::Write(p) | Effect::Remove(p) => vec![p.as_str()],
        Effect::Copy { pairs, is_move } => pairs
            .iter()
            .flat_map(|(from, to)| {
                let from = (*is_move && is_file(from)).then_some(from.as_str());
                let to = is_file(to).then_some(to.as_str());
                from.into_iter().chain(to)
            })
            .collect(),
        Effect::Answer | Effect::Resolve | Effect::Stream => Vec::new(),
    }
}

fn notify<N: crate::protocol::notifications::ServerNotification>(
    engine: &Engine,
    project_id: i64,
    payload: &N,
) {
    match Notification::of(payload) {
        Ok(n) => engine.publish(project_id, n.method, n.params),
        Err(e) => tracing::error!("could not encode {}: {e}", N::METHOD),
    }
}

fn resolved_notice(engine: &Engine, run: &RunRow, path: &str, settled: &Settled) {
    notify(
        engine,
        run.project_id,
        &RunResolvedNotification {
            run: run.alias.clone(),
            path: path.to_string(),
            state: settled.state,
            outcome: settled.outcome.clone(),
        },
    );
}

async fn set_status(engine: &Engine, run_id: i64, status: RunStatus) -> Result<(), String> {
    engine
        .store
        .run(SetRunStatus { run_id, status })
        .await
        .map_err(|e| e.to_string())
}

/// After a command: announces each proposal of the run, oldest first, and
/// waits for its resolution before the next. Resolutions of other pending
/// proposals of the run are applied as they come. Returns the first
/// failure (message, status) among them; a failure cancels the proposals
/// still waiting, as it aborts the rest of the turn.
pub async fn settle(
    engine: &Engine,
    run: &RunRow,
    turn: i64,
    inbox: &mut DrainInbox,
    yolo: bool,
) -> Result<Option<(String, i64)>, String> {
    let err = |e: StoreError| e.to_string();
    let pending = engine
        .store
        .run(PendingProposals(run.id))
        .await
        .map_err(err)?;
    if pending.is_empty() {
        return Ok(None);
    }
    set_status(engine, run.id, RunStatus::Proposed).await?;
    let waited = wait_all(engine, run, inbox, pending, yolo).await;
    // Back to 102 whatever happened, so the loop can end the run in any
    // status (202 may only go to 102, 200 or 499).
    set_status(engine, run.id, RunStatus::Running).await?;
    // The turn waited on clients: they see its state before it goes on. A
    // turn that waited on nobody publishes once, after its verdict.
    super::turn::publish_state(engine, run.id, turn, RunStatus::Running, None).await;
    waited
}

async fn wait_all(
    engine: &Engine,
    run: &RunRow,
    inbox: &mut DrainInbox,
    pending: Vec<EntryRow>,
    yolo: bool,
) -> Result<Option<(String, i64)>, String> {
    let mut failure: Option<(String, i64)> = None;
    for proposal in pending {
        let current = entry(engine, run.id, &proposal.path)
            .await
            .map_err(|e| e.to_string())?;
        let Some(current) = current else { continue };
        if current.state == EntryState::Proposed && failure.is_some() {
            settle_unanswered(
                engine,
                run,
                &current.path,
                EntryState::Cancelled,
                "aborted",
                None,
            )
            .await;
            continue;
        }
        if current.state == EntryState::Proposed {
            notify(
                engine,
                run.project_id,
                &RunProposalNotification {
                    run: run.alias.clone(),
                    proposed: vec![ProposedEntry {
                        path: current.path.clone(),
                        body: current.body.clone(),
                        attributes: current.attributes.clone(),
                        turn: current.turn,
                    }],
                },
            );
            if yolo && !is_question(&current) {
                auto_accept(engine, run, &current.path).await;
            } else {
                wait_one(engine, run, inbox, &current.path).await?;
            }
        }
        if let Some(done) = entry(engine, run.id, &proposal.path)
            .await
            .map_err(|e| e.to_string())?
        {
            if done.state == EntryState::Failed || done.state == EntryState::Cancelled {
                failure.get_or_insert_with(|| failure_of(&done));
            }
        }
    }
    Ok(failure)
}

/// The error a settled-but-failed proposal reports to the model.
fn failure_of(row: &EntryRow) -> (String, i64) {
    let attrs: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    let message = attr(&attrs, "error")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{} was not applied.", row.path));
    (message, row.state.outcome_status(row.outcome.as_deref()))
}

/// Waits until `path` leaves `proposed`, applying every resolution that
/// arrives meanwhile and answering each resolver.
async fn wait_one(
    engine: &Engine,
    run: &RunRow,
    inbox: &mut DrainInbox,
    path: &str,
) -> Result<(), String> {
    let limit = engine.config.proposal_timeout;
    let deadline = limit.map(|t| tokio::time::Instant::now() + t);
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, inbox.next_resolution()).await {
                Ok(next) => next,
                Err(_) => {
                    let secs = limit.map_or(0, |t| t.as_secs());
                    let error = format!(
                        "No client answered within {secs} s (RUMMY_PROPOSAL_TIMEOUT); the proposal was not applied."
                    );
                    settle_unanswered(
                        engine,
                        run,
                        path,
                        EntryState::Failed,
                        "timeout",
                        Some(error),
                    )
                    .await;
                    return Ok(());
                }
            },
            None => inbox.next_resolution().await,
        };
        let Some(resolve) = next else {
            return Err("the run stopped while a proposal was waiting".into());
        };
        let Resolve {
            path: target,
            action,
            output,
            reply,
        } = resolve;
        let target = normalize_path(&target);
        let applied = apply(engine, run, &target, action, output).await;
        let still = entry(engine, run.id, path)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.state == EntryState::Proposed);
        let others = engine
            .store
            .run(PendingProposals(run.id))
            .await
            .map(|p| !p.is_empty())
            .unwrap_or(true);
        let status = if still || others {
            RunStatus::Proposed
        } else {
            RunStatus::Running
        };
        let answer = applied.map(|(state, outcome, vetoed)| Settled {
            state,
            outcome,
            vetoed,
            status,
        });
        if let Ok(settled) = &answer {
            resolved_notice(engine, run, &target, settled);
        }
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
        if !still {
            return Ok(());
        }
    }
}

async fn entry(engine: &Engine, run_id: i64, path: &str) -> Result<Option<EntryRow>, StoreError> {
    engine
        .store
        .run(GetEntry {
            run_id,
            path: path.to_string(),
        })
        .await
}

/// A yolo run: the server accepts the proposal itself, through the same
/// path a client's acceptance takes (vetoes included).
async fn auto_accept(engine: &Engine, run: &RunRow, path: &str) {
    match apply(engine, run, path, Resolution::Accept, None).await {
        Ok((state, outcome, vetoed)) => {
            resolved_notice(
                engine,
                run,
                path,
                &Settled {
                    state,
                    outcome,
                    vetoed,
                    status: RunStatus::Running,
                },
            );
            if state == EntryState::Resolved {
                run_accepted_command(engine, run, path).await;
            }
        }
        Err(e) => tracing::error!(run = %run.alias, "could not accept proposal {path}: {e}"),
    }
}

/// A yolo run runs an accepted `sh`/`env` itself, and the turn waits for
/// it, so the model reads the whole output next turn. Cancelling the run
/// drops this wait and the process handle with it: the group is killed.
/// `rummy acp` also calls it for a command its client accepted (it is that
/// client, and runs what it accepts).
pub async fn run_accepted_command(engine: &Engine, run: &RunRow, path: &str) {
    let Ok(Some(row)) = entry(engine, run.id, path).await else {
        return;
    };
    let attrs: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    if effect_of(&row, &attrs) != Effect::Stream {
        return;
    }
    let started = async {
        let root = project_root(engine, run).await?;
        let handle = crate::stream::attach(engine, run.id, &row).await?;
        Ok::<_, String>((root, handle))
    }
    .await;
    match started {
        Ok((root, handle)) => {
            // The run's editor runs it in its terminal when it offers one.
            let editor = engine.editor.get();
            let (end, place) = match editor {
                Some(e) => match e.run_command(run.id, root.clone(), handle.clone()) {
                    Some(run_there) => (run_there.await, "in the editor"),
                    None => (
                        crate::stream::run_on_server(&engine.config, root, handle).await,
                        "on the server",
                    ),
                },
                None => (
                    crate::stream::run_on_server(&engine.config, root, handle).await,
                    "on the server",
                ),
            };
            tracing::info!(run = %run.alias, "ran {path} {place}: {end:?}");
        }
        Err(e) => {
            tracing::error!(run = %run.alias, "could not run {path} on the server: {e}");
            if let Ok(handle) = crate::stream::attach(engine, run.id, &row).await {
                let _ = handle
                    .addr
                    .send(crate::stream::Abort {
                        reason: Some(format!("could not start on the server: {e}")),
                        duration: None,
                    })
                    .await;
            }
        }
    }
}

/// `ask_user` waits for a person even in a yolo run.
fn is_question(row: &EntryRow) -> bool {
    let attrs: Map<String, Value> = serde_json::from_str(&row.attributes).unwrap_or_default();
    effect_of(row, &attrs) == Effect::Answer
}

/// Settles one proposal no client decided (cancelled by an abort of its
/// turn, or failed on the proposal timeout) and tells every client.
async fn settle_unanswered(
    engine: &Engine,
    run: &RunRow,
    path: &str,
    state: EntryState,
    outcome: &str,
    error: Option<String>,
) {
    let resolution = if state == EntryState::Cancelled {
        "cancelled"
    } else {
        outcome
    };
    let mut attributes = json!({ RESOLUTION_ATTR: resolution });
    if let Some(error) = error {
        attributes["error"] = Value::String(error);
    }
    let write = EntryWrite {
        state: Some(state),
        outcome: Some(outcome.to_string()),
        attributes: Some(attributes),
        ..EntryWrite::new(run.id, path, Writer::Plugin)
    };
    match engine.store.run(SetEntry(write)).await {
        Ok(_) => resolved_notice(
            engine,
            run,
            path,
            &Settled {
                state,
                outcome: Some(outcome.to_string()),
                vetoed: false,
                status: RunStatus::Proposed,
            },
        ),
        Err(e) => tracing::error!(run = %run.alias, "could not cancel proposal {path}: {e}"),
    }
}

/// The run was cancelled: its proposals end `cancelled` (outcome
/// `aborted`) and every client hears `run/resolved` for each.
pub async fn cancel_pending(engine: &Engine, run_id: i64) {
    let cancelled = engine
        .store
        .run(CancelProposals {
            run_id,
            outcome: "aborted".into(),
        })
        .await;
    let paths = match cancelled {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(run_id, "could not cancel the run's proposals: {e}");
            return;
        }
    };
    if paths.is_empty() {
        return;
    }
    let Ok(run) = engine.store.run(GetRunById(run_id)).await else {
        return;
    };
    for path in paths {
        resolved_notice(
            engine,
            &run,
            &path,
            &Settled {
                state: EntryState::Cancelled,
                outcome: Some("aborted".into()),
                vetoed: false,
                status: RunStatus::Aborted,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str) -> EntryRow {
        EntryRow {
            path: path.into(),
            scheme: scheme_of(path).map(str::to_string),
            body: String::new(),
            attributes: "{}".into(),
            state: EntryState::Proposed,
            outcome: None,
            visibility: "visible".into(),
            turn: 1,
        }
    }

    fn attrs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn effects_are_read_from_the_proposal() {
        let a = attrs(json!({ "path": "src/a.rs" }));
        assert_eq!(
            effect_of(&row("log://turn_1/set/src/a.rs"), &a),
            Effect::Write("src/a.rs".into())
        );
        assert_eq!(
            effect_of(&row("set://src/a.rs"), &a),
            Effect::Write("src/a.rs".into())
        );
        assert_eq!(
            effect_of(&row("log://turn_1/rm/src/a.rs"), &a),
            Effect::Remove("src/a.rs".into())
        );
        let mv = attrs(json!({ "from": "a.txt", "to": "b.txt", "isMove": true }));
        let e = effect_of(&row("log://turn_1/mv/a.txt"), &mv);
        assert_eq!(
            e,
            Effect::Copy {
                pairs: vec![("a.txt".into(), "b.txt".into())],
                is_move: true
            }
        );
        assert_eq!(touched_files(&e), ["a.txt", "b.txt"]);
        let cp = Effect::Copy {
            pairs: vec![("known://x".into(), "b.txt".into())],
            is_move: false,
        };
        assert_eq!(touched_files(&cp), ["b.txt"]);
        assert_eq!(
            effect_of(&row("log://turn_1/ask_user/Q"), &Map::new()),
            Effect::Answer
        );
    }
}
