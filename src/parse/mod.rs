//! Turning one raw model reply into tool commands plus warnings.
//!
//! The pipeline (spec 02 §5.1), in order:
//! 1. foreign tool-call formats rewritten into our XML (`foreign`);
//! 2. tool tags quoted in backtick spans neutralized (`preflight`);
//! 3. mismatched closing tags at the outermost level corrected;
//! 4. unterminated attribute quotes closed;
//! 5. tokenizing with HTML rules (`lexer`) into commands (`builder`): tool
//!    bodies are opaque raw text, empty paired tags before another tool are
//!    recovered, the command cap applies;
//! 6. paths that look like leaked reasoning rejected.
//!
//! Every recovery leaves a warning; nothing here panics on any input.
//! `Command::to_json` resolves attributes versus tag text per tool into the
//! object upstream's parser produces (`resolve`).

mod builder;
mod entities;
mod foreign;
mod lexer;
mod markers;
mod preflight;
mod resolve;

use markers::Marker;
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;

/// Tags the model may use as tools (upstream 2.0.0's set).
pub const TOOL_TAGS: [&str; 11] = [
    "get", "rm", "set", "mv", "cp", "search", "sh", "env", "ask_user", "update", "think",
];

/// Longest path the parser accepts, in characters (spec 02 §6.1 step 6).
pub const MAX_PATH_CHARS: usize = 512;

/// One tool call as the model wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// Tag name, lowercased.
    pub name: String,
    /// Attributes in the order written, names lowercased, references
    /// decoded; a bare attribute has value ""; a repeated one keeps the first.
    pub attrs: Vec<(String, String)>,
    /// The text between the tags exactly as the model wrote it (nested tags,
    /// entities and whitespace untouched); empty for a self-closing tag.
    pub body: String,
}

impl Command {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn non_empty_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).filter(|v| !v.is_empty())
    }

    fn trimmed_body(&self) -> &str {
        crate::hedberg::js_trim(&self.body)
    }

    /// The trimmed body, or the `body` attribute when the tag is empty.
    pub fn text(&self) -> String {
        let t = self.trimmed_body();
        if !t.is_empty() {
            return t.to_string();
        }
        self.attr("body").unwrap_or_default().to_string()
    }

    /// The entry path a command addresses: `path` attribute, or for tools
    /// whose body is the path (get, rm, search) the trimmed body.
    pub fn path(&self) -> Option<String> {
        self.path_str().map(str::to_string)
    }

    fn path_str(&self) -> Option<&str> {
        if let Some(p) = self.non_empty_attr("path") {
            return Some(p);
        }
        match self.name.as_str() {
            "get" | "rm" | "search" => Some(self.trimmed_body()).filter(|p| !p.is_empty()),
            _ => None,
        }
    }

    /// What the log path names: path, else command, else question; for
    /// `<update>` its text.
    pub fn target(&self) -> String {
        if self.name == "update" {
            return self.text();
        }
        if let Some(p) = self.path() {
            return p;
        }
        if let Some(c) = self.non_empty_attr("command") {
            return c.to_string();
        }
        if matches!(self.name.as_str(), "sh" | "env") {
            return self.trimmed_body().to_string();
        }
        self.non_empty_attr("question")
            .unwrap_or_default()
            .to_string()
    }

    /// `<update status="N">`: the number, 102 when absent, None when not a
    /// number (JavaScript `Number()` rules: " 200 " and "2e2" are 200).
    pub fn status(&self) -> Option<i64> {
        match self.non_empty_attr("status") {
            None => Some(102),
            Some(s) => resolve::js_number(s)
                .filter(|n| n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15)
                .map(|n| n as i64),
        }
    }

    /// Whether the command asks only for a preview. Any `preview`
    /// attribute counts, a bare one included: upstream's `<set>` takes a
    /// bare `preview` (value "") as false and writes (spec 02 §3.3 marks
    /// that a defect); `<get>` already treats presence as the switch.
    pub fn preview(&self) -> bool {
        self.attr("preview").is_some()
    }

    /// The command object upstream's parser produces for this call (spec 02
    /// §5.2), with our deviations (see ARCHITECTURE.md): `{name, ...attrs,
    /// <per-tool fields>}`.
    pub fn to_json(&self) -> Value {
        resolve::to_json(self)
    }
}

/// The parser's whole output for one reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub commands: Vec<Command>,
    pub warnings: Vec<String>,
    /// Text outside tool tags, trimmed.
    pub unparsed: String,
}

impl Parsed {
    /// `{"commands": [...], "warnings": [...], "unparsed": "..."}` with
    /// upstream-shaped command objects (what `rummy parse` prints).
    pub fn to_json(&self) -> Value {
        json!({
            "commands": self.commands.iter().map(Command::to_json).collect::<Vec<_>>(),
            "warnings": self.warnings,
            "unparsed": self.unparsed,
        })
    }
}

/// What to parse for.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions<'a> {
    /// Tag names that are tools (lowercase).
    pub tools: &'a [&'a str],
    /// Commands kept per reply (RUMMY_MAX_COMMANDS); the rest are dropped
    /// with one warning.
    pub max_commands: usize,
}

/// Parses one reply, keeping at most `max_commands` commands.
pub fn parse(content: &str, max_commands: usize) -> Parsed {
    parse_with(
        content,
        ParseOptions {
            tools: &TOOL_TAGS,
            max_commands,
        },
    )
}

/// Parses one reply with an explicit tool set.
pub fn parse_with(content: &str, options: ParseOptions<'_>) -> Parsed {
    if content.is_empty() {
        return Parsed::default();
    }
    // Names are short: comparing them byte by byte beats a memcmp call
    // per same-length tool name.
    let is_tool = |name: &str| {
        let name = name.as_bytes();
        options.tools.iter().any(|t| {
            let t = t.as_bytes();
            t.len() == name.len() && t.iter().zip(name).all(|(a, b)| a == b)
        })
    };
    let mut warnings = Vec::new();
    // One scan decides which repairs run; most replies need none.
    let markers = markers::Markers::scan(content);
    let (text, markers) = foreign::normalize(content, markers, &is_tool, &mut warnings);
    let has = |m: Marker| markers.has(m);
    // Stand-ins are only needed where code spans get neutralized.
    let masks = if has(Marker::Backtick) {
        preflight::Masks::for_text(&text)
    } else {
        None
    };
    let text = match has(Marker::Backtick) {
        true => preflight::neutralize_code_spans(&text, masks),
        false => Cow::Borrowed(&*text),
    };
    // Neutralizing only removes `<` and `>`, so the pattern markers stay
    // necessary conditions; the open-quote gate does not, and is checked
    // again below when neutralizing changed the text.
    let neutralized = matches!(text, Cow::Owned(_));
    let text = match has(Marker::CloseTag) {
        true => preflight::correct_mismatched_closes(&text, &is_tool, &mut warnings),
        false => Cow::Borrowed(&*text),
    };
    // Step 3 only swaps whole closing tags (`<` … `>`) for `</name>`,
    // which cannot make the gate hold where it did not.
    let open_quote = match neutralized {
        true => has(Marker::AttributeQuote) && preflight::may_have_open_quote(&text),
        false => has(Marker::OpenQuote),
    };
    let text = match open_quote {
        true => preflight::close_attribute_quotes(&text, &mut warnings),
        false => Cow::Borrowed(&*text),
    };
    let built = builder::build(&text, &is_tool, masks, options.max_commands, &mut warnings);
    let mut commands = built.commands;
    commands.retain(|cmd| match leaked_reasoning(cmd) {
        Some(warning) => {
            warnings.push(warning);
            false
        }
        None => true,
    });
    Parsed {
        commands,
        warnings,
        unparsed: built.unparsed,
    }
}

/// A path over [`MAX_PATH_CHARS`] characters or holding control characters
/// is reasoning that leaked into the tag, not a path: the command is
/// dropped with a warning. Commands (`<sh>`) and questions may span lines.
fn leaked_reasoning(cmd: &Command) -> Option<String> {
    // An update's log target is its text, not a path.
    if cmd.name == "update" {
        return None;
    }
    let path = cmd.path_str()?;
    // The usual path: printable ASCII (no control character, one byte a
    // character) within the limit, settled in one pass over the bytes.
    if path.len() <= MAX_PATH_CHARS && path.bytes().all(|b| matches!(b, b' '..=b'~')) {
        return None;
    }
    let control = path.chars().any(char::is_control);
    let long = path.chars().count() > MAX_PATH_CHARS;
    if !long && !control {
        return None;
    }
    let why = if control {
        "contains line breaks or other control characters"
    } else {
        "is longer than 512 characters"
    };
    Some(format!(
        "Rejected <{}>: its path {why}, so it looks like reasoning rather than a path. Put only the path in the tag.",
        cmd.name
    ))
}

#[cfg(test)]
mod tests;
