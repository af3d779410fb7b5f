//! The ACP handlers: sessions are runs, prompts are loops, proposals are
//! permission requests. Handlers that wait on the run (a prompt turn) run
//! as spawned connection tasks so the dispatch loop keeps reading (the
//! client's permission answers and cancels arrive through it).

use super::backend::{Backend, Begin};
use super::editor::{AcpEditor, ClientSide};
use super::mapping::{self, PromptEnd, Tracker};
use crate::cli::driver::Event;
use crate::tools::Mode;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, Implementation, InitializeRequest, InitializeResponse,
    LoadSessionRequest, LoadSessionResponse, NewSessionRequest, NewSessionResponse,
    PromptCapabilities, PromptRequest, PromptResponse, SessionNotification, SessionUpdate,
    SetSessionModeRequest, SetSessionModeResponse, StopReason,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, Client, Error, Stdio};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// One ACP session: the run it is (or will be, before its first prompt).
pub(super) struct Session {
    pub(super) project_id: i64,
    pub(super) cwd: PathBuf,
    /// The run's alias, chosen at `session/new`.
    pub(super) alias: String,
    pub(super) model: String,
    pub(super) mode: Mode,
    /// The run exists (its first prompt went out, or it was loaded).
    pub(super) started: bool,
    /// The run's id once it exists (the engine's editor calls name runs by id).
    pub(super) run_id: Option<i64>,
    /// The client chose "allow always": proposals are accepted from now on.
    pub(super) yolo: bool,
    /// The current loop started in yolo: the server accepts its proposals
    /// (not questions) itself, and this session only shows them.
    pub(super) server_accepts: bool,
    /// `session/cancel` came during the current turn.
    pub(super) cancelled: bool,
    /// A prompt turn is in progress.
    pub(super) busy: bool,
    /// An `ask_user` question without options waits for the next prompt.
    pub(super) question: Option<String>,
    /// The prompt's embedded resources, until its loop starts.
    pub(super) attachments: Vec<crate::run::editor::Attachment>,
    pub(super) tracker: Tracker,
}

#[derive(Clone)]
pub(super) struct AcpAgent {
    pub(super) engine: Backend,
    model: String,
    max_turns: u32,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// The client's capabilities and connection, shared with the engine's
    /// editor (file reads, accepted edits and commands through the client).
    pub(super) client: Arc<ClientSide>,
}

fn invalid(message: impl ToString) -> Error {
    Error::invalid_params().data(message.to_string())
}

pub(super) fn internal(message: impl ToString) -> Error {
    Error::internal_error().data(message.to_string())
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

impl AcpAgent {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A poisoned map only means a handler panicked; the data is still usable.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds the project at `cwd`, validated like `rummy/hello`.
    async fn project(&self, cwd: PathBuf) -> Result<(i64, PathBuf), Error> {
        self.engine.project(cwd).await
    }

    async fn new_session(&self, req: NewSessionRequest) -> Result<NewSessionResponse, Error> {
        let (project_id, cwd) = self.project(req.cwd).await?;
        let cwd_root = cwd.clone();
        let alias = format!("{}_{}", self.model, now_millis());
        let mut sessions = self.lock();
        // Two sessions in one millisecond still get two runs.
        let mut alias_free = alias.clone();
        let mut n = 1;
        while sessions.contains_key(&alias_free) {
            alias_free = format!("{alias}_{n}");
            n += 1;
        }
        sessions.insert(
            alias_free.clone(),
            Session {
                project_id,
                cwd,
                alias: alias_free.clone(),
                model: self.model.clone(),
                mode: Mode::Act,
                started: false,
                run_id: None,
                yolo: false,
                server_accepts: false,
                cancelled: false,
                busy: false,
                question: None,
                attachments: Vec::new(),
                tracker: Tracker::default().rooted(cwd_root),
            },
        );
        Ok(NewSessionResponse::new(alias_free).modes(mapping::modes(Mode::Act)))
    }

    async fn load_session(
        &self,
        req: LoadSessionRequest,
        cx: &ConnectionTo<Client>,
    ) -> Result<LoadSessionResponse, Error> {
        let (project_id, cwd) = self.project(req.cwd).await?;
        let alias = req.session_id.0.to_string();
        let loaded = self.engine.load(project_id, &alias).await?;
        let mut tracker = Tracker::replaying().rooted(cwd.clone());
        let mut updates = tracker.thoughts(&loaded.reasoning);
        updates.extend(tracker.updates(&loaded.history));
        for update in updates {
            send(cx, &alias, update)?;
        }
        if !loaded.unknowns.is_empty() {
            send(
                cx,
                &alias,
                SessionUpdate::Plan(mapping::plan(&loaded.unknowns)),
            )?;
        }
        self.lock().insert(
            alias.clone(),
            Session {
                project_id,
                cwd,
                alias,
                model: loaded.model.unwrap_or_else(|| self.model.clone()),
                mode: Mode::Act,
                started: true,
                run_id: loaded.run_id,
                yolo: loaded.yolo,
                server_accepts: false,
                cancelled: false,
                busy: false,
                question: None,
                attachments: Vec::new(),
                tracker,
            },
        );
        Ok(LoadSessionResponse::new().modes(mapping::modes(Mode::Act)))
    }

    fn set_mode(&self, req: SetSessionModeRequest) -> Result<SetSessionModeResponse, Error> {
        let mode = Mode::parse(&req.mode_id.0)
            .ok_or_else(|| invalid(format!("unknown mode {}; use ask or act", req.mode_id.0)))?;
        let mut sessions = self.lock();
        let session = sessions
            .get_mut(&*req.session_id.0)
            .ok_or_else(|| invalid(format!("no session {}", req.session_id.0)))?;
        session.mode = mode;
        Ok(SetSessionModeResponse::new())
    }

    async fn cancel(&self, note: CancelNotification) {
        let target = {
            let mut sessions = self.lock();
            let Some(s) = sessions.get_mut(&*note.session_id.0) else {
                return;
            };
            if !s.busy || !s.started {
                return;
            }
            s.cancelled = true;
            (s.project_id, s.alias.clone())
        };
        let (project_id, alias) = target;
        let cancelled = self
            .engine
            .cancel(project_id, &alias, "cancelled by the ACP client")
            .await;
        if let Err(e) = cancelled {
            tracing::warn!("session/cancel: {e}");
        }
    }

    /// Cancels the runs of the sessions whose prompt turn is in progress.
    async fn cancel_busy(&self) {
        let busy: Vec<(i64, String)> = self
            .lock()
            .values()
            .filter(|s| s.busy && s.started)
            .map(|s| (s.project_id, s.alias.clone()))
            .collect();
        for (project_id, alias) in busy {
            let reason = "the ACP client disconnected";
            if let Err(e) = self.engine.cancel(project_id, &alias, reason).await {
                tracing::warn!("could not cancel {alias}: {e}");
            }
        }
    }

    /// One prompt turn, from the prompt to the run's verdict.
    async fn prompt(
        &self,
        req: PromptRequest,
        cx: ConnectionTo<Client>,
    ) -> Result<PromptResponse, Error> {
        let sid = req.session_id.0.to_string();
        let cwd = self
            .lock()
            .get(&sid)
            .map(|s| s.cwd.clone())
            .ok_or_else(|| invalid(format!("no session {sid}")))?;
        let (mut text, mut attached) = mapping::prompt_parts(&req.prompt, &cwd);
        if matches!(self.engine, Backend::Remote(_)) {
            // A remote engine cannot take them from this process's editor
            // seam: their text goes in the prompt instead.
            text = mapping::inline_attachments(text, std::mem::take(&mut attached));
        }
        if text.trim().is_empty() {
            return Err(invalid("the prompt has no text"));
        }
        let (project_id, alias, model, mode, started, yolo, question) = {
            let mut sessions = self.lock();
            let s = sessions
                .get_mut(&sid)
                .ok_or_else(|| invalid(format!("no session {sid}")))?;
            if s.busy {
                return Err(invalid("a prompt turn is already in progress"));
            }
            s.busy = true;
            s.cancelled = false;
            // Taken by the engine when the prompt's loop starts.
            s.attachments.extend(attached);
            if s.question.is_none() {
                // A new loop (or the running one, steered) with the session's flags.
                s.server_accepts = s.yolo;
            }
            (
                s.project_id,
                s.alias.clone(),
                s.model.clone(),
                s.mode,
                s.started,
                s.yolo,
                s.question.take(),
            )
        };
        let result = self
            .turn(
                &cx, project_id, &alias, model, mode, started, yolo, question, text,
            )
            .await;
        if let Some(s) = self.lock().get_mut(&sid) {
            s.busy = false;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn turn(
        &self,
        cx: &ConnectionTo<Client>,
        project_id: i64,
        alias: &str,
        model: String,
        mode: Mode,
        started: bool,
        yolo: bool,
        question: Option<String>,
        text: String,
    ) -> Result<PromptResponse, Error> {
        // Subscribe before the run starts, so no notification is missed.
        let mut sub = self.engine.subscribe(project_id).await?;
        let begun = self
            .engine
            .begin(Begin {
                project_id,
                alias: alias.to_string(),
                model,
                mode,
                started,
                yolo,
                question,
                text,
            })
            .await;
        let outcome = match begun {
            Ok(run_id) => {
                if let Some(s) = self.lock().get_mut(alias) {
                    s.started = true;
                    s.run_id = run_id.or(s.run_id);
                }
                self.follow(cx, project_id, alias, &mut sub.events).await
            }
            Err(e) => Err(invalid(e)),
        };
        self.engine.unsubscribe(sub).await;
        outcome
    }

    /// Translates the run's notifications until its verdict.
    async fn follow(
        &self,
        cx: &ConnectionTo<Client>,
        project_id: i64,
        alias: &str,
        events: &mut mpsc::UnboundedReceiver<serde_json::Value>,
    ) -> Result<PromptResponse, Error> {
        while let Some(frame) = events.recv().await {
            match Event::from_frame(&frame) {
                Event::State(s) if s.run == alias => {
                    let reasoning = self.reasoning(project_id, alias).await;
                    let updates = match self.lock().get_mut(alias) {
                        Some(session) => {
                            let mut u = session.tracker.thoughts(&reasoning);
                            u.extend(session.tracker.updates(&s.history));
                            u
                        }
                        None => Vec::new(),
                    };
                    for update in updates {
                        let update = self.with_output(alias, update).await;
                        send(cx, alias, update)?;
                    }
                    if !s.unknowns.is_empty() {
                        send(cx, alias, SessionUpdate::Plan(mapping::plan(&s.unknowns)))?;
                    }
                    if let Some(usage) = mapping::usage(&s.telemetry) {
                        send(cx, alias, SessionUpdate::UsageUpdate(usage))?;
                    }
                    if s.status != 102 {
                        let cancelled = self.lock().get(alias).is_some_and(|x| x.cancelled);
                        let last_error = Tracker::last_error(&s.history);
                        return match mapping::prompt_end(
                            s.status,
                            cancelled,
                            s.turn,
                            self.max_turns,
                            last_error.as_deref(),
                        ) {
                            PromptEnd::Stop(reason) => Ok(PromptResponse::new(reason)),
                            PromptEnd::Error(e) => Err(internal(e)),
                        };
                    }
                }
                Event::Proposal(p) if p.run == alias => {
                    for entry in &p.proposed {
                        if self.proposal(cx, project_id, alias, entry).await? {
                            // An open question ends the turn; the next prompt answers it.
                            return Ok(PromptResponse::new(StopReason::EndTurn));
                        }
                    }
                }
                _ => {}
            }
        }
        Err(internal("the engine stopped before the run ended"))
    }
}

pub(super) fn send(
    cx: &ConnectionTo<Client>,
    session: &str,
    update: SessionUpdate,
) -> Result<(), Error> {
    cx.send_notification(SessionNotification::new(session.to_string(), update))
}

/// Serves ACP on stdin/stdout until the client closes it.
pub(super) async fn serve(engine: Backend, model: String, max_turns: u32) -> Result<(), Error> {
    let agent = AcpAgent {
        engine,
        model,
        max_turns,
        sessions: Arc::default(),
        client: Arc::default(),
    };
    let editor = AcpEditor {
        client: agent.client.clone(),
        sessions: agent.sessions.clone(),
    };
    agent.engine.install_editor(editor).await?;
    let last = agent.clone();
    let (a1, a2, a3, a4, a5, a6) = (
        agent.clone(),
        agent.clone(),
        agent.clone(),
        agent.clone(),
        agent.clone(),
        agent,
    );
    let served = Agent
        .v1()
        .name("rummy")
        .on_receive_request(
            async move |req: InitializeRequest,
                        responder: Responder<InitializeResponse>,
                        cx: ConnectionTo<Client>| {
                let caps = &req.client_capabilities;
                let client = &a1.client;
                client.read.store(caps.fs.read_text_file, Ordering::Relaxed);
                client
                    .write
                    .store(caps.fs.write_text_file, Ordering::Relaxed);
                client.terminal.store(caps.terminal, Ordering::Relaxed);
                *client.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx);
                responder.respond(
                    InitializeResponse::new(req.protocol_version)
                        .agent_capabilities(
                            AgentCapabilities::new()
                                .load_session(true)
                                .prompt_capabilities(
                                    PromptCapabilities::new().embedded_context(true),
                                ),
                        )
                        .agent_info(Implementation::new("rummy", env!("CARGO_PKG_VERSION"))),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder: Responder<NewSessionResponse>, _cx| {
                responder.respond_with_result(a2.new_session(req).await)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest,
                        responder: Responder<LoadSessionResponse>,
                        cx: ConnectionTo<Client>| {
                responder.respond_with_result(a3.load_session(req, &cx).await)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionModeRequest,
                        responder: Responder<SetSessionModeResponse>,
                        _cx| { responder.respond_with_result(a4.set_mode(req)) },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest,
                        responder: Responder<PromptResponse>,
                        cx: ConnectionTo<Client>| {
                let agent = a5.clone();
                let task_cx = cx.clone();
                cx.spawn(async move {
                    let result = agent.prompt(req, task_cx).await;
                    responder.respond_with_result(result)
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |note: CancelNotification, _cx: ConnectionTo<Client>| {
                a6.cancel(note).await;
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(Stdio::new())
        .await;
    if matches!(last.engine, Backend::Remote(_)) {
        // The holder outlives this client: its turns in progress would
        // wait for answers nobody gives (in process, the engine's stop
        // ends them).
        last.cancel_busy().await;
    }
    served
}
