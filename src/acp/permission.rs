//! Proposals as `session/request_permission`: allow once, allow always
//! (the session accepts the rest itself and later loops start in yolo),
//! reject once; `ask_user` questions with options offer the answers.

use super::agent::{send, AcpAgent};
use super::mapping::{self, Choice};
use crate::cli::driver::proposal_attributes;
use crate::protocol::notifications::ProposedEntry;
use crate::run::actor::Resolution;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, RequestPermissionRequest, SessionUpdate, TextContent, ToolCall,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::{Client, Error};

impl AcpAgent {
    /// Asks the client about one proposal and resolves it. Answers true when
    /// the turn ends here (a question without options).
    pub(super) async fn proposal(
        &self,
        cx: &ConnectionTo<Client>,
        project_id: i64,
        alias: &str,
        entry: &ProposedEntry,
    ) -> Result<bool, Error> {
        let tool = mapping::path_tool(&entry.path).to_string();
        let attrs = proposal_attributes(entry);
        let call_id = log_path(entry);
        let (yolo, server_accepts, cwd) = match self.lock().get_mut(alias) {
            Some(s) => {
                s.tracker.announce(&call_id);
                (s.yolo, s.server_accepts, s.cwd.clone())
            }
            None => return Ok(false),
        };
        let decision = if tool == "ask_user" {
            let answers: Vec<String> = attrs
                .get("options")
                .and_then(|o| o.as_array())
                .map(|o| {
                    o.iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if answers.is_empty() {
                send(
                    cx,
                    alias,
                    SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::Text(
                        TextContent::new(entry.body.clone()),
                    ))),
                )?;
                if let Some(s) = self.lock().get_mut(alias) {
                    s.question = Some(entry.path.clone());
                }
                return Ok(true);
            }
            let fields = ToolCallUpdateFields::new()
                .title(entry.body.clone())
                .kind(mapping::tool_kind(&tool))
                .status(ToolCallStatus::Pending);
            let request = RequestPermissionRequest::new(
                alias.to_string(),
                ToolCallUpdate::new(call_id.clone(), fields),
                mapping::answer_options(&answers),
            );
            let answer = cx.send_request(request).block_task().await?;
            match mapping::choice(&answer.outcome, &answers) {
                Choice::Answer(a) => (Resolution::Accept, Some(a)),
                _ => (Resolution::Reject, None),
            }
        } else {
            let target = mapping::path_target(&entry.path);
            let mut call = ToolCall::new(call_id.clone(), mapping::tool_title(&call_id))
                .kind(mapping::tool_kind(&tool))
                .status(ToolCallStatus::Pending);
            if tool == "set" {
                let file = cwd.join(&target);
                let old = std::fs::read_to_string(&file).ok();
                if let Some(s) = self.lock().get_mut(alias) {
                    s.tracker.remember_old(&call_id, old.clone());
                }
                call = call.content(vec![mapping::diff(file, old, &entry.body)]);
            }
            send(cx, alias, SessionUpdate::ToolCall(call.clone()))?;
            if server_accepts {
                // A yolo loop: the server accepts (and runs) it itself.
                return Ok(false);
            }
            let decision = if yolo {
                (Resolution::Accept, None)
            } else {
                let fields = ToolCallUpdateFields::new()
                    .title(call.title.clone())
                    .kind(call.kind)
                    .status(ToolCallStatus::Pending)
                    .content(call.content.clone());
                let request = RequestPermissionRequest::new(
                    alias.to_string(),
                    ToolCallUpdate::new(call_id.clone(), fields),
                    mapping::permission_options(),
                );
                let answer = cx.send_request(request).block_task().await?;
                match mapping::choice(&answer.outcome, &[]) {
                    Choice::Once => (Resolution::Accept, None),
                    Choice::Always => {
                        self.allow_always(project_id, alias).await;
                        (Resolution::Accept, None)
                    }
                    Choice::Reject | Choice::Answer(_) => (Resolution::Reject, None),
                }
            };
            decision
        };
        let (action, output) = decision;
        let resolved = self
            .engine
            .resolve(project_id, alias, entry.path.clone(), action, output)
            .await;
        match resolved {
            Ok(()) if action == Resolution::Accept && matches!(tool.as_str(), "sh" | "env") => {
                // This session is the client that accepted the command, so
                // it runs it, beside the turn (as a WebSocket client's
                // command runs); a cancel of the run kills it.
                let command = attrs
                    .as_object()
                    .map(crate::store::streams::command_of)
                    .unwrap_or_default();
                self.engine
                    .run_accepted(project_id, alias, &entry.path, &command, &cwd);
            }
            Ok(()) => {}
            // Settled meanwhile (a cancel, another client, a yolo loop):
            // the run goes on.
            Err(e) => tracing::warn!("could not resolve {}: {e}", entry.path),
        }
        Ok(false)
    }

    /// "Allow always": this session accepts the rest of this loop's
    /// proposals itself, and the run's later loops start in yolo.
    async fn allow_always(&self, project_id: i64, alias: &str) {
        if let Some(s) = self.lock().get_mut(alias) {
            s.yolo = true;
        }
        if let Err(e) = self.engine.store_yolo(project_id, alias).await {
            tracing::warn!("could not store yolo for {alias}: {e}");
        }
    }
}

/// The log entry a proposal becomes: `set://a.txt` at turn 2 ->
/// `log://turn_2/set/a.txt`, so its tool call and the later history row
/// share one id.
fn log_path(entry: &ProposedEntry) -> String {
    if entry.path.starts_with("log://") {
        return entry.path.clone();
    }
    match entry.path.split_once("://") {
        Some((scheme, rest)) => format!("log://turn_{}/{scheme}/{rest}", entry.turn),
        None => entry.path.clone(),
    }
}
