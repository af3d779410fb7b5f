//! The ACP client as the engine's [`Editor`]: when the client offers
//! `fs.readTextFile`, `fs.writeTextFile` or `terminal`, a session's file
//! reads, accepted edits and accepted commands go through it; otherwise
//! every method answers `None` and the engine uses the disk and its own
//! process runner.

use super::agent::Session;
use crate::run::editor::{Attachment, Editor, LocalFuture, SendFuture};
use crate::stream::{Abort, Chunk, Complete, ProducerHandle, ServerRunEnd};
use agent_client_protocol::v1::schema::{
    CreateTerminalRequest, KillTerminalRequest, ReadTextFileRequest, ReleaseTerminalRequest,
    TerminalId, TerminalOutputRequest, WaitForTerminalExitRequest, WriteTextFileRequest,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::Client;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running terminal's output is fetched.
const POLL: Duration = Duration::from_millis(200);

/// What the client offered at `initialize`, and the connection to it.
#[derive(Default)]
pub(super) struct ClientSide {
    pub(super) read: AtomicBool,
    pub(super) write: AtomicBool,
    pub(super) terminal: AtomicBool,
    pub(super) conn: Mutex<Option<ConnectionTo<Client>>>,
}

/// The engine's view of the ACP sessions.
pub(super) struct AcpEditor {
    pub(super) client: Arc<ClientSide>,
    pub(super) sessions: Arc<Mutex<HashMap<String, Session>>>,
}

impl AcpEditor {
    /// The session (alias, cwd) of a run, and the connection, when the
    /// client offered `flag`.
    fn target(
        &self,
        run_id: i64,
        flag: &AtomicBool,
    ) -> Option<(String, PathBuf, ConnectionTo<Client>)> {
        if !flag.load(Ordering::Relaxed) {
            return None;
        }
        let conn = self
            .client
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.values().find(|s| s.run_id == Some(run_id))?;
        Some((s.alias.clone(), s.cwd.clone(), conn))
    }
}

impl Editor for AcpEditor {
    fn read_text(&self, run_id: i64, path: &str) -> Option<SendFuture<Option<String>>> {
        let (session, cwd, cx) = self.target(run_id, &self.client.read)?;
        let file = cwd.join(path);
        Some(Box::pin(async move {
            match cx
                .send_request(ReadTextFileRequest::new(session, file.clone()))
                .block_task()
                .await
            {
                Ok(r) => Some(r.content),
                Err(e) => {
                    tracing::warn!("fs/read_text_file {}: {e}", file.display());
                    None
                }
            }
        }))
    }

    fn write_text(
        &self,
        run_id: i64,
        path: &str,
        content: &str,
    ) -> Option<SendFuture<Result<(), String>>> {
        let (session, cwd, cx) = self.target(run_id, &self.client.write)?;
        let request = WriteTextFileRequest::new(session, cwd.join(path), content.to_string());
        Some(Box::pin(async move {
            cx.send_request(request)
                .block_task()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }))
    }

    fn run_command(
        &self,
        run_id: i64,
        root: PathBuf,
        handle: ProducerHandle,
    ) -> Option<LocalFuture<ServerRunEnd>> {
        let (session, _, cx) = self.target(run_id, &self.client.terminal)?;
        Some(Box::pin(in_terminal(cx, session, root, handle)))
    }

    fn attachments(&self, project_id: i64, alias: &str) -> Vec<Attachment> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(alias) {
            Some(s) if s.project_id == project_id => std::mem::take(&mut s.attachments),
            _ => Vec::new(),
        }
    }
}

/// Runs the command in a client terminal (`sh -c`, in the project root):
/// its output, fetched every [`POLL`], goes to the producer as stdout; the
/// exit ends the stream; a cancel of the stream kills the terminal.
async fn in_terminal(
    cx: ConnectionTo<Client>,
    session: String,
    root: PathBuf,
    handle: ProducerHandle,
) -> ServerRunEnd {
    let started = Instant::now();
    let create = CreateTerminalRequest::new(session.clone(), "sh")
        .args(vec!["-c".to_string(), handle.command.clone()])
        .cwd(root);
    let id = match cx.send_request(create).block_task().await {
        Ok(r) => r.terminal_id,
        Err(e) => {
            let reason = format!("the editor could not open a terminal: {e}");
            let _ = handle
                .addr
                .send(Abort {
                    reason: Some(reason.clone()),
                    duration: None,
                })
                .await;
            return ServerRunEnd::Aborted(reason);
        }
    };
    // Cancelling the run drops this future (the drain goes first): the
    // guard then kills and releases the terminal.
    let mut guard = KillOnDrop {
        cx: cx.clone(),
        session: session.clone(),
        id: Some(id.clone()),
    };
    let mut sent = 0usize;
    let mut cancelled = handle.cancelled.clone();
    let mut watching = true;
    let exit = cx
        .send_request(WaitForTerminalExitRequest::new(session.clone(), id.clone()))
        .block_task();
    tokio::pin!(exit);
    let end = loop {
        tokio::select! {
            done = &mut exit => {
                // The last output, then the exit.
                forward(&cx, &session, &id, &handle, &mut sent).await;
                let duration = Some(format!("{:.1}s", started.elapsed().as_secs_f64()));
                break match done {
                    Ok(r) => {
                        let exit_code = r.exit_status.exit_code.map_or(-1, i64::from);
                        let _ = handle.addr.send(Complete { exit_code, duration }).await;
                        ServerRunEnd::Completed { exit_code }
                    }
                    Err(e) => {
                        let reason = format!("the editor's terminal failed: {e}");
                        let _ = handle.addr.send(Abort { reason: Some(reason.clone()), duration }).await;
                        ServerRunEnd::Aborted(reason)
                    }
                };
            }
            () = tokio::time::sleep(POLL) => {
                forward(&cx, &session, &id, &handle, &mut sent).await;
            }
            changed = cancelled.changed(), if watching => match changed {
                Ok(()) if cancelled.borrow().is_some() => {
                    if let Err(e) = cx
                        .send_request(KillTerminalRequest::new(session.clone(), id.clone()))
                        .block_task()
                        .await
                    {
                        tracing::warn!("terminal/kill: {e}");
                    }
                    // The cancel closed the stream already.
                    break ServerRunEnd::Cancelled;
                }
                Ok(()) => {}
                Err(_) => watching = false,
            },
        }
    };
    guard.id = None;
    if let Err(e) = cx
        .send_request(ReleaseTerminalRequest::new(session, id))
        .block_task()
        .await
    {
        tracing::debug!("terminal/release: {e}");
    }
    end
}

/// Kills and releases a client terminal whose command was dropped midway.
struct KillOnDrop {
    cx: ConnectionTo<Client>,
    session: String,
    /// None once the command ended (or was killed) the ordinary way.
    id: Option<TerminalId>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let (cx, session) = (self.cx.clone(), self.session.clone());
        actix::spawn(async move {
            let kill = KillTerminalRequest::new(session.clone(), id.clone());
            if let Err(e) = cx.send_request(kill).block_task().await {
                tracing::warn!("terminal/kill: {e}");
            }
            let release = ReleaseTerminalRequest::new(session, id);
            if let Err(e) = cx.send_request(release).block_task().await {
                tracing::debug!("terminal/release: {e}");
            }
        });
    }
}

/// Sends the output the producer has not had yet. A truncated output lost
/// its beginning: what was sent cannot be matched, so only growth past the
/// sent length goes out.
async fn forward(
    cx: &ConnectionTo<Client>,
    session: &str,
    id: &TerminalId,
    handle: &ProducerHandle,
    sent: &mut usize,
) {
    let out = match cx
        .send_request(TerminalOutputRequest::new(session.to_string(), id.clone()))
        .block_task()
        .await
    {
        Ok(o) => o.output,
        Err(e) => {
            tracing::debug!("terminal/output: {e}");
            return;
        }
    };
    let bytes = out.into_bytes();
    if bytes.len() > *sent {
        let fresh = bytes[*sent..].to_vec();
        *sent = bytes.len();
        if let Err(e) = handle
            .addr
            .send(Chunk {
                channel: 1,
                bytes: fresh,
            })
            .await
        {
            tracing::warn!("a command's stream is gone: {e}");
        }
    }
}
