//! What a prompt turn reads back from the engine for its updates: a
//! finished command's output and the run's reasoning.

use super::agent::AcpAgent;
use super::mapping;
use crate::protocol::runs::TurnText;
use crate::store::GetEntry;
use agent_client_protocol::v1::schema::{SessionUpdate, ToolCallStatus};

impl AcpAgent {
    /// A finished `sh`/`env` call's update carries the command's output
    /// (its stream entries), not the log line that points at them.
    pub(super) async fn with_output(&self, alias: &str, update: SessionUpdate) -> SessionUpdate {
        let SessionUpdate::ToolCallUpdate(mut u) = update else {
            return update;
        };
        let id = u.tool_call_id.0.to_string();
        let done = matches!(
            u.fields.status,
            Some(ToolCallStatus::Completed | ToolCallStatus::Failed)
        );
        let run_id = self.lock().get(alias).and_then(|s| s.run_id);
        let (Some(run_id), Some(base), true) = (
            run_id,
            crate::store::paths::data_base(&id),
            done && matches!(mapping::path_tool(&id), "sh" | "env"),
        ) else {
            return SessionUpdate::ToolCallUpdate(u);
        };
        let bodies = self
            .engine
            .call(move |server| async move {
                let mut out = Vec::new();
                for channel in [1, 2] {
                    let body = server
                        .store
                        .run(GetEntry {
                            run_id,
                            path: format!("{base}_{channel}"),
                        })
                        .await
                        .ok()
                        .flatten()
                        .map(|r| r.body)
                        .unwrap_or_default();
                    out.push(body);
                }
                out
            })
            .await
            .unwrap_or_default();
        if let [stdout, stderr] = bodies.as_slice() {
            if let Some(c) = mapping::command_output(stdout, stderr) {
                u.fields.content = Some(vec![c]);
            }
        }
        SessionUpdate::ToolCallUpdate(u)
    }

    /// The run's reasoning entries; none when they cannot be read (the
    /// turn's other updates still go out).
    pub(super) async fn reasoning(&self, project_id: i64, alias: &str) -> Vec<TurnText> {
        let a = alias.to_string();
        self.engine
            .call(move |server| async move {
                let run = server.runs.find(project_id, &a).await.ok().flatten()?;
                crate::run::report::run_detail(&server.engine, &run)
                    .await
                    .ok()
                    .map(|d| d.context.reasoning)
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}
