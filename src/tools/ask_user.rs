//! `<ask_user question="Q">a; b</ask_user>`: a question for the user. It
//! becomes a proposal (body = the question, attrs `{question, options}`);
//! the client's answer arrives as the resolution's body and is recorded as
//! `answer` (spec 02 §3.3).

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::EntryState;
use serde_json::{json, Value};

pub struct AskUser;

/// The choices offered: split on `;` when there is one, else on `,`;
/// blank pieces dropped.
pub fn options(text: &str) -> Vec<String> {
    let separator = if text.contains(';') { ';' } else { ',' };
    text.split(separator)
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

#[async_trait::async_trait]
impl Tool for AskUser {
    fn name(&self) -> &'static str {
        "ask_user"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_ask_user.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        let question = row.attr("question").unwrap_or(row.body);
        let mut out = format!("# ask_user {question}");
        if let Some(answer) = row.attr("answer") {
            out.push_str(&format!("\nAnswer: {answer}"));
        } else if let Some(error) = row.attr("error") {
            out.push_str(&format!("\n{error}"));
        }
        out
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        self.visible(row)
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let question = cmd.attr("question").map(str::trim).unwrap_or_default();
        if question.is_empty() {
            let error =
                "question is required: <ask_user question=\"...\">option; option</ask_user>";
            ctx.write_log(
                log_path,
                "",
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({ "error": error }),
            )
            .await?;
            return Ok(());
        }
        let offered = cmd
            .attr("options")
            .filter(|o| !o.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| cmd.text());
        let options: Vec<Value> = options(&offered).into_iter().map(Value::String).collect();
        ctx.write_log(
            log_path,
            question,
            EntryState::Proposed,
            None,
            None,
            json!({ "question": question, "options": options }),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::options;

    #[test]
    fn options_split_on_semicolons_else_commas() {
        assert_eq!(options("a, b; c"), ["a, b", "c"]);
        assert_eq!(options("red, green ,blue"), ["red", "green", "blue"]);
        assert_eq!(options(" ; "), Vec::<String>::new());
        assert_eq!(options("only"), ["only"]);
    }
}
