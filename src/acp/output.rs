//! What a prompt turn reads back from the engine for its updates: a
//! finished command's output and the run's reasoning.

use super::agent::AcpAgent;
use super::mapping;
use crate::protocol::runs::TurnText;
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
        let session = self.lock().get(alias).map(|s| (s.project_id, s.run_id));
        let (Some((project_id, run_id)), Some(base), true) = (
            session,
            crate::store::paths::data_base(&id),
            done && matches!(mapping::path_tool(&id), "sh" | "env"),
        ) else {
            return SessionUpdate::ToolCallUpdate(u);
        };
        let paths = vec![format!("{base}_1"), format!("{base}_2")];
        let bodies = self.engine.bodies(project_id, alias, run_id, paths).await;
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
        self.engine.reasoning(project_id, alias).await
    }
}
