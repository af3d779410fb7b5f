//! One run from start to end, the same whether the engine is hosted
//! in-process or reached over a server's WebSocket: the backend starts the
//! run and hands back the notifications every client of the project gets;
//! the driver shows them, answers proposals by policy and stops at the
//! run's terminal `run/state`, at the timeout, or on Ctrl-C.

use super::CliError;
use crate::protocol::notifications::{
    ProposedEntry, RunProgressNotification, RunProposalNotification, RunResolvedNotification,
    RunStateNotification,
};
use crate::tools::Mode;
use serde_json::Value;
use std::time::Duration;

/// What to start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub model: String,
    pub mode: Mode,
    pub prompt: String,
    /// The server accepts file proposals itself (`attributes.yolo`).
    pub yolo: bool,
}

/// A client's answer to one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept; the body is the answer to an `ask_user` question.
    Accept(Option<String>),
    /// Reject, with an optional reason the model reads.
    Reject(Option<String>),
}

/// A notification of the run, as every client of its project hears it.
#[derive(Debug, Clone)]
pub enum Event {
    State(Box<RunStateNotification>),
    Progress(RunProgressNotification),
    Proposal(RunProposalNotification),
    Resolved(RunResolvedNotification),
    /// Anything else (other runs' notifications are filtered by alias later).
    Other,
}

impl Event {
    /// Reads a pushed frame `{method, params}`; unknown or malformed frames
    /// are `Other`, so a newer server never stops the client.
    pub fn from_frame(frame: &Value) -> Event {
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        let parsed = match frame.get("method").and_then(Value::as_str) {
            Some("run/state") => serde_json::from_value(params).map(|s| Event::State(Box::new(s))),
            Some("run/progress") => serde_json::from_value(params).map(Event::Progress),
            Some("run/proposal") => serde_json::from_value(params).map(Event::Proposal),
            Some("run/resolved") => serde_json::from_value(params).map(Event::Resolved),
            _ => return Event::Other,
        };
        parsed.unwrap_or(Event::Other)
    }

    fn run(&self) -> Option<&str> {
        match self {
            Event::State(s) => Some(&s.run),
            Event::Progress(p) => Some(&p.run),
            Event::Proposal(p) => Some(&p.run),
            Event::Resolved(r) => Some(&r.run),
            Event::Other => None,
        }
    }
}

/// How a run ended, as the run service records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: i64,
    /// The body of the run's last `<update>`.
    pub summary: Option<String>,
}

/// The engine, hosted here or behind a WebSocket.
#[async_trait::async_trait(?Send)]
pub trait RunBackend {
    /// Which one, for messages ("in-process", "ws://...").
    fn describe(&self) -> String;
    /// Starts the run; answers its alias.
    async fn start(&mut self, req: &RunRequest) -> Result<String, CliError>;
    /// The next notification of the project; `None` when the backend closed.
    async fn next_event(&mut self) -> Option<Event>;
    async fn resolve(
        &mut self,
        alias: &str,
        path: &str,
        decision: Decision,
    ) -> Result<(), CliError>;
    async fn cancel(&mut self, alias: &str, reason: &str) -> Result<(), CliError>;
    /// The run's recorded status and last update.
    async fn finish(&mut self, alias: &str) -> Result<RunEnd, CliError>;
    /// Releases what the backend holds (the database lock, the socket).
    async fn close(&mut self);
}

/// Who decides about proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    AcceptAll,
    RejectAll,
    /// Ask the person at the terminal.
    Ask,
    /// No terminal and no flag: reject, saying so.
    RejectUnattended,
}

/// What the driver shows; `rummy run` and `rummy demo` differ here only.
pub trait View {
    fn started(&mut self, alias: &str, backend: &str);
    fn progress(&mut self, p: &RunProgressNotification);
    fn state(&mut self, s: &RunStateNotification);
    /// A proposal and what was decided about it (`how` says by whom).
    fn decided(&mut self, p: &ProposedEntry, decision: &Decision, how: &str);
    fn resolved(&mut self, r: &RunResolvedNotification);
    fn note(&mut self, text: &str);
    /// Stops drawing while a question is asked on the terminal.
    fn pause(&mut self);
    fn resume(&mut self);
}

/// How the drive ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ended(RunEnd),
    TimedOut,
    Interrupted,
}

pub struct DriveOptions {
    pub policy: Policy,
    pub timeout: Option<Duration>,
}

/// The tool of a proposal: `log://turn_3/set/a.txt` -> `set`.
pub fn proposal_tool(path: &str) -> &str {
    path.strip_prefix("log://")
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or("")
}

/// The proposal's attributes (sent as a JSON string).
pub fn proposal_attributes(p: &ProposedEntry) -> Value {
    serde_json::from_str(&p.attributes).unwrap_or(Value::Null)
}

/// Starts the run and follows it to its end.
pub async fn drive(
    backend: &mut dyn RunBackend,
    req: &RunRequest,
    options: &DriveOptions,
    view: &mut dyn View,
) -> Result<Outcome, CliError> {
    let alias = backend.start(req).await?;
    view.started(&alias, &backend.describe());
    let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            event = backend.next_event() => event,
            () = &mut expired => {
                let secs = options.timeout.map_or(0, |t| t.as_secs());
                view.note(&format!("timed out after {secs} s; cancelling run {alias}"));
                cancel(backend, &alias, "timed out (rummy run --timeout)", view).await;
                return Ok(Outcome::TimedOut);
            }
            _ = &mut interrupted => {
                view.note(&format!("interrupted; cancelling run {alias}"));
                cancel(backend, &alias, "interrupted (Ctrl-C)", view).await;
                return Ok(Outcome::Interrupted);
            }
        };
        let Some(event) = event else {
            return Err(CliError::Failed(format!(
                "lost the connection to {} before run {alias} ended",
                backend.describe()
            )));
        };
        if event.run() != Some(alias.as_str()) {
            continue;
        }
        match event {
            Event::Progress(p) => view.progress(&p),
            Event::Resolved(r) => view.resolved(&r),
            Event::State(s) => {
                view.state(&s);
                if s.status != 102 {
                    return Ok(Outcome::Ended(backend.finish(&alias).await?));
                }
            }
            Event::Proposal(p) => {
                for entry in &p.proposed {
                    let answer = decide(entry, options.policy, view);
                    let (decision, how) = tokio::select! {
                        answer = answer => answer,
                        () = &mut expired => {
                            view.resume();
                            view.note(&format!("timed out; cancelling run {alias}"));
                            cancel(backend, &alias, "timed out (rummy run --timeout)", view).await;
                            return Ok(Outcome::TimedOut);
                        }
                    };
                    view.decided(entry, &decision, &how);
                    if let Err(e) = backend.resolve(&alias, &entry.path, decision).await {
                        // Settled meanwhile (another client, a cancel): the run goes on.
                        view.note(&format!("could not resolve {}: {e}", entry.path));
                    }
                }
            }
            Event::Other => {}
        }
    }
}

/// Cancels on the way out; a failure (the run ended meanwhile) is only told.
async fn cancel(backend: &mut dyn RunBackend, alias: &str, reason: &str, view: &mut dyn View) {
    if let Err(e) = backend.cancel(alias, reason).await {
        view.note(&format!("could not cancel run {alias}: {e}"));
    }
}

/// The decision on one proposal and who made it.
async fn decide(p: &ProposedEntry, policy: Policy, view: &mut dyn View) -> (Decision, String) {
    let question = proposal_tool(&p.path) == "ask_user";
    let ask = policy == Policy::Ask || (question && super::interactive());
    if ask {
        view.pause();
        let entry = p.clone();
        let answer = tokio::task::spawn_blocking(move || super::progress::ask_terminal(&entry))
            .await
            .unwrap_or(Decision::Reject(None));
        view.resume();
        return (answer, "at the terminal".into());
    }
    if question {
        return (
            Decision::Reject(Some("no one is at a terminal to answer".into())),
            "no terminal to answer it".into(),
        );
    }
    match policy {
        Policy::AcceptAll => (Decision::Accept(None), "--accept-all".into()),
        Policy::RejectAll => (Decision::Reject(None), "--reject-all".into()),
        Policy::RejectUnattended | Policy::Ask => (
            Decision::Reject(None),
            "no terminal; pass --accept-all or --yolo to accept".into(),
        ),
    }
}
