//! Live progress on standard error: a spinner line (turn, phase, tokens,
//! pending proposals) drawn by indicatif when stderr is a terminal, and
//! plain lines otherwise, so logs of scripts and CI still say what happened.

use super::driver::{proposal_attributes, proposal_tool, Decision, View};
use crate::protocol::notifications::{
    ProposedEntry, RunProgressNotification, RunResolvedNotification, RunStateNotification,
    RunTelemetry,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// `run/state` comes after every dispatch and at a turn's end; this keeps
/// the newest one and hands back each turn's last, once, when the next
/// turn begins or the run ends.
#[derive(Default)]
pub struct TurnEnds {
    last: Option<RunStateNotification>,
}

impl TurnEnds {
    /// A state arrived; answers the finished turns to show (at most two:
    /// the previous turn, and this one when the run ended).
    pub fn state(&mut self, s: &RunStateNotification) -> Vec<RunStateNotification> {
        let mut done = self.turn(s.turn);
        if s.status != 102 {
            self.last = None;
            done.push(s.clone());
        } else {
            self.last = Some(s.clone());
        }
        done
    }

    /// Turn `turn` is under way: an older buffered turn is finished.
    pub fn turn(&mut self, turn: i64) -> Vec<RunStateNotification> {
        match &self.last {
            Some(l) if l.turn != turn => self.last.take().into_iter().collect(),
            _ => Vec::new(),
        }
    }
}

/// The status line and the event lines above it.
pub struct Progress {
    /// `None` when stderr is not a terminal: plain lines only.
    bar: Option<ProgressBar>,
    /// Put before every line (`rummy run`, `replay`).
    label: String,
    turn: i64,
    phase: String,
    tokens: String,
    pending: usize,
    ends: TurnEnds,
}

impl Progress {
    pub fn new(label: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            turn: 0,
            phase: "starting".into(),
            tokens: String::new(),
            pending: 0,
            ends: TurnEnds::default(),
        }
    }

    /// One event line on stderr.
    pub fn line(&self, text: &str) {
        let text = format!("{}: {text}", self.label);
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn turn_line(&self, s: &RunStateNotification) {
        let done = s.history.iter().filter(|h| h.turn == s.turn).count();
        self.line(&format!(
            "turn {}: status {}, {} entries this turn, packet {}",
            s.turn,
            s.status,
            done,
            budget_text(&s.telemetry)
        ));
    }

    fn redraw(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{}: turn {} · {}{} · {} pending",
                self.label, self.turn, self.phase, self.tokens, self.pending
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `used/ceiling tokens (free N)` of a turn's packet.
pub fn budget_text(t: &RunTelemetry) -> String {
    match (t.ceiling, t.tokens_free) {
        (Some(c), Some(free)) => format!("{} of {c} tokens (free {free})", t.token_usage),
        _ => format!("{} tokens", t.token_usage),
    }
}

/// The packet's distribution: `data 3 tokens in 1 entries, ...`.
pub fn distribution_text(t: &RunTelemetry) -> String {
    let parts: Vec<String> = t
        .context_distribution
        .iter()
        .map(|b| format!("{} {} tokens/{} entries", b.bucket, b.tokens, b.entries))
        .collect();
    if parts.is_empty() {
        "empty".into()
    } else {
        parts.join(", ")
    }
}

/// What a proposal would do, in one line.
pub fn describe_proposal(p: &ProposedEntry) -> String {
    let tool = proposal_tool(&p.path);
    let attrs = proposal_attributes(p);
    let text = |k: &str| attrs.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match tool {
        "ask_user" => format!("question: {}", p.body),
        "mv" | "cp" => format!("{tool} {} -> {}", text("path"), text("to")),
        "" => match p.path.split_once("://") {
            Some(("set", rest)) => format!("edit {rest}"),
            _ => p.path.clone(),
        },
        _ => format!("{tool} {}", text("path")),
    }
}

/// The unified diff a file proposal carries, if any.
pub fn proposal_diff(p: &ProposedEntry) -> Option<String> {
    proposal_attributes(p)
        .get("patch")
        .and_then(|v| v.as_str())
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

fn decision_word(d: &Decision) -> &'static str {
    match d {
        Decision::Accept(_) => "accepted",
        Decision::Reject(_) => "rejected",
    }
}

impl View for Progress {
    fn started(&mut self, alias: &str, backend: &str) {
        self.line(&format!("run {alias} started on {backend}"));
        self.redraw();
    }

    fn progress(&mut self, p: &RunProgressNotification) {
        self.turn = p.turn;
        self.phase = match (&p.error, p.delay_ms) {
            (Some(e), Some(ms)) => format!("retrying in {ms} ms ({e})"),
            _ => serde_json::to_value(p.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        for s in self.ends.turn(p.turn) {
            self.turn_line(&s);
        }
        if self.bar.is_none() {
            self.line(&format!("turn {}: {}", p.turn, self.phase));
        }
        self.redraw();
    }

    fn state(&mut self, s: &RunStateNotification) {
        self.turn = s.turn;
        self.tokens = format!(" · {}", budget_text(&s.telemetry));
        self.phase = format!("status {}", s.status);
        for done in self.ends.state(s) {
            self.turn_line(&done);
        }
        self.redraw();
    }

    fn decided(&mut self, p: &ProposedEntry, decision: &Decision, how: &str) {
        self.line(&format!(
            "proposal {}: {} ({how})",
            describe_proposal(p),
            decision_word(decision)
        ));
        // Until the run says it settled (`run/resolved`).
        self.pending += 1;
        self.redraw();
    }

    fn resolved(&mut self, r: &RunResolvedNotification) {
        self.pending = self.pending.saturating_sub(1);
        let _ = r;
        self.redraw();
    }

    fn note(&mut self, text: &str) {
        self.line(text);
    }

    fn pause(&mut self) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    fn resume(&mut self) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.redraw();
    }
}

/// Asks the person at the terminal about one proposal (blocking: run it
/// off the async threads). End of input or a read error rejects.
pub fn ask_terminal(p: &ProposedEntry) -> Decision {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let read = || {
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        }
    };
    let mut err = std::io::stderr();
    if proposal_tool(&p.path) == "ask_user" {
        let options = proposal_attributes(p)
            .get("options")
            .and_then(|o| o.as_array().cloned())
            .unwrap_or_default();
        let _ = writeln!(err, "\nThe model asks: {}", p.body);
        for (i, o) in options.iter().enumerate() {
            let _ = writeln!(err, "  {}. {}", i + 1, o.as_str().unwrap_or_default());
        }
        let _ = write!(err, "Your answer (empty to decline): ");
        let _ = err.flush();
        return match read() {
            Some(a) if !a.is_empty() => {
                // A number picks one of the options.
                let picked = a
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| options.get(n.wrapping_sub(1)))
                    .and_then(|o| o.as_str())
                    .map(str::to_string);
                Decision::Accept(Some(picked.unwrap_or(a)))
            }
            _ => Decision::Reject(None),
        };
    }
    loop {
        let _ = write!(
            err,
            "\nProposal: {}\n[a]ccept, [r]eject or show the [d]iff? ",
            describe_proposal(p)
        );
        let _ = err.flush();
        match read().as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("a") | Some("accept") | Some("y") | Some("yes") => return Decision::Accept(None),
            Some("r") | Some("reject") | Some("n") | Some("no") | None => {
                return Decision::Reject(None)
            }
            Some("d") | Some("diff") => {
                let diff = proposal_diff(p).unwrap_or_else(|| format!("{}\n", p.body));
                let _ = write!(err, "{diff}");
            }
            Some(_) => {}
        }
    }
}
