//! Policy: which model commands a loop refuses before RECORD (upstream's
//! `entry.recording` policy filter, spec 02 §6.1 step 6 and 03 §4.2).
//!
//! Pure: [`check`] looks at one parsed command and what the loop offers
//! ([`ToolSet`]: mode and flags) and says whether the command is refused and
//! with what error. The turn writes that error (400, a strike the model sees
//! next turn) and drops the command unstored; the other commands of the
//! turn go on, as upstream's rejections do not abort the rest.
//!
//! Rules, first match wins:
//! 1. Ask mode refuses every change to project files, with upstream's
//!    wording where it has one: `<sh>`; a `<set>` on a bare path (one
//!    without `scheme://`) that would change it, whether by text or by any
//!    edit form (upstream lets edit forms through, a defect); `<rm>` of a
//!    bare path; `<mv>`/`<cp>` whose destination is a bare path; and,
//!    beyond upstream, `<mv>` whose source is a bare path, since moving
//!    a file away removes it. `<env>` and `<ask_user>` stay allowed.
//! 2. `noInteraction` refuses `<ask_user>`: no one is there to answer.
//! 3. `noProposals` (beyond upstream, which advertises fewer tools but then
//!    waits forever) refuses every command that would become a proposal:
//!    file `<set>`/`<rm>`, `<mv>`/`<cp>` with a bare source or destination,
//!    `<sh>`, `<env>` and `<ask_user>`.
//!
//! A bare path counts as files even when it is a glob or could also match
//! scheme entries (`*`): upstream decides on the path's scheme alone, and so
//! do we. Nothing is refused that changes no file: a body-less `<set>` with
//! `visibility` (a visibility change), any `preview` (a listing only), an
//! `<mv>`/`<cp>` without destination (the visibility form, or the tool's
//! own validation error; upstream crashed the loop there), a command
//! without a path (the tool reports it), and a path refused as leaked
//! reasoning (it gets its `invalid` record instead, as upstream orders it).

use crate::hedberg::{self, Detected, EditAttrs};
use crate::parse::Command;
use crate::store::paths::{is_invalid_target, scheme_of};
use crate::tools::{Mode, ToolSet};

/// The status of a policy error entry (upstream's `error.log` default).
pub const REFUSAL_STATUS: i64 = 400;

/// Which rule refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    AskMode,
    NoInteraction,
    NoProposals,
}

/// A refused command: the rule and the error text the model sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

/// What a command would do outside the store, as far as policy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// Changes nothing outside the store and waits for no one.
    Store,
    Shell,
    Env,
    Question,
    /// `<set>` changing the file(s) at this bare path.
    FileWrite(String),
    /// `<rm>` of this bare path.
    FileRemove(String),
    /// `<mv>`/`<cp>` onto this bare destination.
    IntoFile {
        tool: String,
        to: String,
    },
    /// `<mv>` from this bare source to a scheme destination.
    MoveFromFile(String),
    /// `<cp>` from this bare source to a scheme destination: reads a file,
    /// changes none, but still becomes a proposal.
    CopyFromFile(String),
}

fn is_bare(path: &str) -> bool {
    scheme_of(path).is_none()
}

/// `<mv>`/`<cp>`'s destination: the `to` attribute, else the trimmed text
/// (the tools' own rule).
fn destination(cmd: &Command) -> Option<String> {
    if let Some(to) = cmd.attr("to").filter(|t| !t.is_empty()) {
        return Some(to.to_string());
    }
    let text = hedberg::js_trim(&cmd.body);
    (!text.is_empty()).then(|| text.to_string())
}

/// Whether a `<set>` on a bare path would change it. Only the body-less
/// visibility form leaves the file alone; the tag text, every edit form
/// and even an empty write (which blanks the file) change it.
fn set_changes_file(cmd: &Command) -> bool {
    let detected = hedberg::detect(
        &cmd.body,
        EditAttrs {
            search: cmd.attr("search"),
            replace: cmd.attr("replace"),
            body: cmd.attr("body"),
        },
    );
    let visibility_only =
        matches!(&detected, Detected::Full(t) if t.is_empty()) && cmd.attr("visibility").is_some();
    !visibility_only
}

fn effect(cmd: &Command) -> Effect {
    match cmd.name.as_str() {
        "sh" => return Effect::Shell,
        "env" => return Effect::Env,
        "ask_user" => return Effect::Question,
        _ => {}
    }
    let Some(path) = cmd.path() else {
        return Effect::Store;
    };
    if is_invalid_target(&path) || cmd.preview() {
        return Effect::Store;
    }
    match cmd.name.as_str() {
        "set" if is_bare(&path) && set_changes_file(cmd) => Effect::FileWrite(path),
        "rm" if is_bare(&path) => Effect::FileRemove(path),
        "mv" | "cp" => match destination(cmd) {
            None => Effect::Store,
            Some(to) if is_bare(&to) => Effect::IntoFile {
                tool: cmd.name.clone(),
                to,
            },
            Some(_) if is_bare(&path) && cmd.name == "mv" => Effect::MoveFromFile(path),
            Some(_) if is_bare(&path) => Effect::CopyFromFile(path),
            Some(_) => Effect::Store,
        },
        _ => Effect::Store,
    }
}

fn refusal(rule: Rule, message: String) -> Option<Refusal> {
    Some(Refusal { rule, message })
}

/// Ask mode: upstream's four messages, word for word (they name the error
/// entry's path, so they stay comparable with upstream's runs).
fn ask_mode(effect: &Effect) -> Option<Refusal> {
    let message = match effect {
        Effect::Shell => "Rejected <sh> in ask mode".to_string(),
        Effect::FileWrite(p) => format!("Rejected file edit to {p} in ask mode"),
        Effect::FileRemove(p) => format!("Rejected file rm of {p} in ask mode"),
        Effect::IntoFile { tool, to } => format!("Rejected {tool} to file {to} in ask mode"),
        Effect::MoveFromFile(p) => format!(
            "Rejected mv of file {p} in ask mode: moving it would remove the file. Use <cp> to copy it to a known:// entry instead."
        ),
        Effect::Store | Effect::Env | Effect::Question | Effect::CopyFromFile(_) => return None,
    };
    refusal(Rule::AskMode, message)
}

const NO_ANSWER: &str = "Decide for yourself and state what you assumed in your <update> instead.";

fn no_interaction(effect: &Effect) -> Option<Refusal> {
    match effect {
        Effect::Question => refusal(
            Rule::NoInteraction,
            format!(
                "Rejected <ask_user>: this loop runs without interaction (noInteraction), so no one would answer. {NO_ANSWER}"
            ),
        ),
        _ => None,
    }
}

fn no_proposals(effect: &Effect) -> Option<Refusal> {
    let (what, instead) = match effect {
        Effect::Store => return None,
        Effect::Shell => (
            "<sh>".to_string(),
            "Read what you need with <get> instead.",
        ),
        Effect::Env => (
            "<env>".to_string(),
            "Read what you need with <get> instead.",
        ),
        Effect::Question => ("<ask_user>".to_string(), NO_ANSWER),
        Effect::FileWrite(p) => (
            format!("file edit to {p}"),
            "Write the new text to a known:// entry and describe the change in your <update> instead.",
        ),
        Effect::FileRemove(p) => (
            format!("file rm of {p}"),
            "Say in your <update> that it should be removed instead.",
        ),
        Effect::IntoFile { tool, to } => (
            format!("{tool} to file {to}"),
            "Use a known:// destination instead.",
        ),
        Effect::MoveFromFile(p) => (
            format!("mv of file {p}"),
            "Read the file with <get> and write what you need to a known:// entry instead.",
        ),
        Effect::CopyFromFile(p) => (
            format!("cp of file {p}"),
            "Read the file with <get> and write what you need to a known:// entry instead.",
        ),
    };
    refusal(
        Rule::NoProposals,
        format!(
            "Rejected {what}: this loop runs without proposals (noProposals), so nothing can wait for a client's approval. {instead}"
        ),
    )
}

/// Whether `cmd` is refused before RECORD in a loop offering `offer`, and
/// the error the model sees.
pub fn check(offer: &ToolSet, cmd: &Command) -> Option<Refusal> {
    let effect = effect(cmd);
    let ask = || {
        (offer.mode == Mode::Ask)
            .then(|| ask_mode(&effect))
            .flatten()
    };
    let quiet = || {
        offer
            .no_interaction
            .then(|| no_interaction(&effect))
            .flatten()
    };
    let sealed = || offer.no_proposals.then(|| no_proposals(&effect)).flatten();
    ask().or_else(quiet).or_else(sealed)
}

/// Splits a turn's commands into those that go on to RECORD and those
/// refused, each with its refusal, both in the order written.
pub fn screen<'a>(
    offer: &ToolSet,
    commands: &'a [Command],
) -> (Vec<&'a Command>, Vec<(&'a Command, Refusal)>) {
    let mut kept = Vec::with_capacity(commands.len());
    let mut refused = Vec::new();
    for cmd in commands {
        match check(offer, cmd) {
            Some(r) => refused.push((cmd, r)),
            None => kept.push(cmd),
        }
    }
    (kept, refused)
}

#[cfg(test)]
mod tests;
