//! From tokens to commands: the element stack of an HTML parser (implied
//! closes, void elements, closing tags that close everything above them)
//! with upstream's tool-call rules on top (spec 02 §5.1 step 5). Tool
//! bodies are cut out of the text verbatim instead of re-serialized.

use super::lexer::{Lexer, Token};
use super::Command;
use crate::hedberg::js_trim;
use std::borrow::Cow;

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "basefont", "br", "col", "command", "embed", "frame", "hr", "img", "input",
    "isindex", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

const FORM_TAGS: &[&str] = &[
    "input", "option", "optgroup", "select", "button", "datalist", "textarea",
];
const HEADINGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6", "p"];

/// Opening `name` closes these elements while they are on top of the stack.
fn implied_closes(name: &str) -> &'static [&'static str] {
    match name {
        "tr" => &["tr", "th", "td"],
        "th" => &["th"],
        "td" => &["thead", "th", "td"],
        "body" => &["head", "link", "script"],
        "a" => &["a"],
        "li" => &["li"],
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => HEADINGS,
        "select" | "input" | "output" | "button" | "datalist" | "textarea" => FORM_TAGS,
        "option" => &["option"],
        "optgroup" => &["optgroup", "option"],
        "dd" | "dt" => &["dd", "dt"],
        "rt" | "rp" => &["rt", "rp"],
        "tbody" | "tfoot" => &["thead", "tbody"],
        "p" | "address" | "article" | "aside" | "blockquote" | "details" | "div" | "dl"
        | "fieldset" | "figcaption" | "figure" | "footer" | "form" | "header" | "hr" | "main"
        | "nav" | "ol" | "pre" | "section" | "table" | "ul" => &["p"],
        _ => &[],
    }
}

/// Elements that switch raw-text elements off (svg, math) or back on.
fn foreign_context(name: &str) -> Option<bool> {
    match name {
        "svg" | "math" => Some(true),
        "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml" | "foreignobject" | "desc"
        | "title" => Some(false),
        _ => None,
    }
}

/// The tool call being read.
struct Current {
    name: String,
    attrs: Vec<(String, String)>,
    body_start: usize,
    /// Whether upstream's body would be non-blank so far (text or any tag).
    nonblank: bool,
    /// Tags opened inside the body and not yet closed.
    nested: Vec<String>,
}

pub(crate) struct Built {
    pub commands: Vec<Command>,
    pub warnings: Vec<String>,
    pub unparsed: String,
}

struct Builder<'a> {
    src: &'a str,
    is_tool: &'a dyn Fn(&str) -> bool,
    restore: &'a dyn Fn(&str) -> String,
    max: usize,
    stack: Vec<String>,
    foreign: Vec<bool>,
    current: Option<Current>,
    commands: Vec<Command>,
    warnings: Vec<String>,
    unparsed: String,
    capped: bool,
    ended: bool,
}

/// Reads `src` into at most `max` commands. `restore` undoes the
/// pre-flight's neutralizing of code spans in everything handed out.
pub(crate) fn build(
    src: &str,
    is_tool: &dyn Fn(&str) -> bool,
    restore: &dyn Fn(&str) -> String,
    max: usize,
) -> Built {
    let mut b = Builder {
        src,
        is_tool,
        restore,
        max,
        stack: Vec::new(),
        foreign: Vec::new(),
        current: None,
        commands: Vec::new(),
        warnings: Vec::new(),
        unparsed: String::new(),
        capped: false,
        ended: false,
    };
    let mut lexer = Lexer::new(src);
    while let Some(token) = lexer.next_token(b.foreign.last() == Some(&true)) {
        match token {
            Token::Text { start, end, decode } => b.on_text(start, end, decode),
            Token::Open {
                name,
                attrs,
                self_closing,
                start,
                end,
            } => b.open_element(name, attrs, self_closing, start, end),
            Token::Close { name, start } => b.close_element(&name, start),
            Token::OpenCut { name } => b.open_cut(name),
        }
    }
    b.ended = true;
    let end = lexer.consumed_end();
    // At the end every open element is closed, innermost first.
    let open: Vec<String> = b.stack.iter().rev().cloned().collect();
    for name in &open {
        b.on_close(name, end);
    }
    if !b.capped {
        if let Some(cur) = &b.current {
            let warning = format!("Unclosed <{}> tag — content captured anyway", cur.name);
            b.warnings.push(warning);
            b.finish(end);
        }
    }
    if b.capped {
        b.warnings.push(format!(
            "Tool call limit ({}) reached — remaining commands dropped",
            b.max
        ));
    }
    let unparsed = js_trim(&(b.restore)(&b.unparsed)).to_string();
    Built {
        commands: b.commands,
        warnings: b.warnings,
        unparsed,
    }
}

impl Builder<'_> {
    fn open_element(
        &mut self,
        name: String,
        attrs: Vec<(String, String)>,
        self_closing: bool,
        start: usize,
        end: usize,
    ) {
        // A form inside a form is dropped altogether.
        if name == "form" && self.stack.iter().any(|n| n == "form") {
            return;
        }
        let closes = implied_closes(&name);
        while self
            .stack
            .last()
            .is_some_and(|top| closes.contains(&top.as_str()))
        {
            self.pop_element(start);
        }
        let void = VOID.contains(&name.as_str());
        if !void {
            self.stack.push(name.clone());
            if let Some(f) = foreign_context(&name) {
                self.foreign.push(f);
            }
        }
        self.on_open(&name, attrs, start, end);
        if void {
            self.on_close(&name, end);
        } else if self_closing && self.stack.last() == Some(&name) {
            self.pop_element(end);
        }
    }

    /// The element goes on the stack (so the end closes it) without being
    /// reported as opened.
    fn open_cut(&mut self, name: String) {
        if name == "form" && self.stack.iter().any(|n| n == "form") {
            return;
        }
        let closes = implied_closes(&name);
        while self
            .stack
            .last()
            .is_some_and(|top| closes.contains(&top.as_str()))
        {
            let at = self.src.len();
            self.pop_element(at);
        }
        if !VOID.contains(&name.as_str()) {
            if let Some(f) = foreign_context(&name) {
                self.foreign.push(f);
            }
            self.stack.push(name);
        }
    }

    fn close_element(&mut self, name: &str, at: usize) {
        if VOID.contains(&name) {
            // `</br>` is read as `<br>`.
            if name == "br" {
                self.on_open("br", Vec::new(), at, at);
                self.on_close("br", at);
            }
            return;
        }
        if let Some(depth) = self.stack.iter().rev().position(|n| n == name) {
            for _ in 0..=depth {
                self.pop_element(at);
            }
        } else if name == "p" {
            // A stray `</p>` is read as `<p></p>`.
            self.stack.push("p".into());
            self.on_open("p", Vec::new(), at, at);
            self.pop_element(at);
        }
    }

    fn pop_element(&mut self, at: usize) {
        if let Some(name) = self.stack.pop() {
            if foreign_context(&name).is_some() {
                self.foreign.pop();
            }
            self.on_close(&name, at);
        }
    }

    fn on_text(&mut self, start: usize, end: usize, decode: bool) {
        if self.capped {
            return;
        }
        let raw = self.src.get(start..end).unwrap_or_default();
        let text = if decode {
            super::entities::decode(raw, super::entities::Mode::Text)
        } else {
            Cow::Borrowed(raw)
        };
        match &mut self.current {
            Some(cur) => {
                if !cur.nonblank && !js_trim(&text).is_empty() {
                    cur.nonblank = true;
                }
            }
            None => self.unparsed.push_str(&text),
        }
    }

    fn on_open(&mut self, name: &str, attrs: Vec<(String, String)>, start: usize, end: usize) {
        if self.capped {
            return;
        }
        if let Some(cur) = &mut self.current {
            if !cur.nonblank && cur.nested.is_empty() && (self.is_tool)(name) {
                // A paired tag with nothing in it before the next tool:
                // the model meant it to be self-closing.
                let warning = format!("Unclosed <{}> before <{name}> — recovered", cur.name);
                self.warnings.push(warning);
                // Its body is blank by definition; stray markup in it (an
                // ignored `</x>`, a comment) is not content.
                cur.body_start = start;
                self.finish(start);
            } else {
                // Tool bodies are opaque: tags in them are text.
                cur.nonblank = true;
                cur.nested.push(name.to_string());
                return;
            }
        }
        if !(self.is_tool)(name) {
            return;
        }
        if self.commands.len() >= self.max {
            self.capped = true;
            return;
        }
        self.current = Some(Current {
            name: name.to_string(),
            attrs,
            body_start: end,
            nonblank: false,
            nested: Vec::new(),
        });
    }

    fn on_close(&mut self, name: &str, at: usize) {
        if self.capped {
            return;
        }
        let Some(cur) = &mut self.current else {
            return;
        };
        if cur.nested.last().is_some_and(|n| n == name) {
            cur.nested.pop();
            return;
        }
        if name == cur.name && cur.nested.is_empty() {
            if self.ended {
                let warning = format!("Unclosed <{name}> tag — content captured anyway");
                self.warnings.push(warning);
            }
            self.finish(at);
            return;
        }
        if (self.is_tool)(name) {
            let warning = format!("Mismatched </{name}> closing <{}> — recovered", cur.name);
            self.warnings.push(warning);
            self.finish(at);
            return;
        }
        cur.nonblank = true;
    }

    /// Ends the current command with its body running to `at`.
    fn finish(&mut self, at: usize) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let raw = self
            .src
            .get(cur.body_start..at.max(cur.body_start))
            .unwrap_or_default();
        let restore = self.restore;
        self.commands.push(Command {
            name: cur.name,
            attrs: cur
                .attrs
                .into_iter()
                .map(|(k, v)| (restore(&k), restore(&v)))
                .collect(),
            body: restore(raw),
        });
    }
}
