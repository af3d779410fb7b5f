//! From tokens to commands: the element stack of an HTML parser (implied
//! closes, void elements, closing tags that close everything above them)
//! with upstream's tool-call rules on top (spec 02 §5.1 step 5). Tool
//! bodies are cut out of the text verbatim instead of re-serialized.

use super::lexer::{Lexer, Token};
use super::preflight::Masks;
use super::Command;
use crate::hedberg::is_js_space;
use smallvec::SmallVec;
use std::borrow::Cow;

// The element tables are `match`es on constant names rather than slices
// searched with `contains`: the compiler then compares against each
// constant inline instead of calling memcmp per same-length entry.

/// Elements that never have content.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "br"
            | "col"
            | "command"
            | "embed"
            | "frame"
            | "hr"
            | "img"
            | "input"
            | "isindex"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Which elements opening an element closes while they are on top of the
/// stack.
#[derive(Debug, Clone, Copy)]
enum Closes {
    Nothing,
    Tr,
    Th,
    Td,
    Body,
    A,
    Li,
    Heading,
    FormControl,
    Option,
    Optgroup,
    Definition,
    Ruby,
    TableBody,
    Paragraph,
}

impl Closes {
    fn opening(name: &str) -> Closes {
        match name {
            "tr" => Closes::Tr,
            "th" => Closes::Th,
            "td" => Closes::Td,
            "body" => Closes::Body,
            "a" => Closes::A,
            "li" => Closes::Li,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => Closes::Heading,
            "select" | "input" | "output" | "button" | "datalist" | "textarea" => {
                Closes::FormControl
            }
            "option" => Closes::Option,
            "optgroup" => Closes::Optgroup,
            "dd" | "dt" => Closes::Definition,
            "rt" | "rp" => Closes::Ruby,
            "tbody" | "tfoot" => Closes::TableBody,
            "p" | "address" | "article" | "aside" | "blockquote" | "details" | "div" | "dl"
            | "fieldset" | "figcaption" | "figure" | "footer" | "form" | "header" | "hr"
            | "main" | "nav" | "ol" | "pre" | "section" | "table" | "ul" => Closes::Paragraph,
            _ => Closes::Nothing,
        }
    }

    /// Whether an element `top` on top of the stack is closed.
    fn closes(self, top: &str) -> bool {
        match self {
            Closes::Nothing => false,
            Closes::Tr => matches!(top, "tr" | "th" | "td"),
            Closes::Th => top == "th",
            Closes::Td => matches!(top, "thead" | "th" | "td"),
            Closes::Body => matches!(top, "head" | "link" | "script"),
            Closes::A => top == "a",
            Closes::Li => top == "li",
            Closes::Heading => matches!(top, "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "p"),
            Closes::FormControl => matches!(
                top,
                "input" | "option" | "optgroup" | "select" | "button" | "datalist" | "textarea"
            ),
            Closes::Option => top == "option",
            Closes::Optgroup => matches!(top, "optgroup" | "option"),
            Closes::Definition => matches!(top, "dd" | "dt"),
            Closes::Ruby => matches!(top, "rt" | "rp"),
            Closes::TableBody => matches!(top, "thead" | "tbody"),
            Closes::Paragraph => top == "p",
        }
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

/// The tool call being read. Names and values borrow from the text
/// until the command is finished.
struct Current<'a> {
    name: Cow<'a, str>,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    body_start: usize,
    /// Whether upstream's body would be non-blank so far (text or any tag).
    nonblank: bool,
    /// Tags opened inside the body and not yet closed.
    nested: Vec<Cow<'a, str>>,
}

pub(crate) struct Built {
    pub commands: Vec<Command>,
    pub unparsed: String,
}

struct Builder<'a, 'w> {
    src: &'a str,
    is_tool: &'a dyn Fn(&str) -> bool,
    masks: Option<Masks>,
    max: usize,
    stack: SmallVec<[Cow<'a, str>; 4]>,
    foreign: Vec<bool>,
    current: Option<Current<'a>>,
    commands: Vec<Command>,
    warnings: &'w mut Vec<String>,
    unparsed: String,
    capped: bool,
    ended: bool,
}

/// Undoes the pre-flight's neutralizing of code spans in `s`.
#[inline]
fn restore(masks: Option<Masks>, s: Cow<'_, str>) -> String {
    match masks {
        Some(m) => match m.restore(&s) {
            Cow::Owned(restored) => restored,
            Cow::Borrowed(_) => s.into_owned(),
        },
        None => s.into_owned(),
    }
}

/// Reads `src` into at most `max` commands, appending its warnings to
/// `warnings`. `masks` are the stand-ins the pre-flight neutralized code
/// spans with; they are undone in everything handed out.
pub(crate) fn build(
    src: &str,
    is_tool: &dyn Fn(&str) -> bool,
    masks: Option<Masks>,
    max: usize,
    warnings: &mut Vec<String>,
) -> Built {
    let mut b = Builder {
        src,
        is_tool,
        masks,
        max,
        stack: SmallVec::new(),
        foreign: Vec::new(),
        current: None,
        commands: Vec::new(),
        warnings,
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
    // At the end every open element is closed, innermost first (closing
    // reads only the current command, not the stack).
    let open = std::mem::take(&mut b.stack);
    for name in open.iter().rev() {
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
    let unparsed = restore(b.masks, Cow::Owned(std::mem::take(&mut b.unparsed)));
    Built {
        commands: b.commands,
        unparsed: trim_in_place(unparsed),
    }
}

/// `js_trim` without copying what is kept.
fn trim_in_place(mut s: String) -> String {
    let end = s.trim_end_matches(is_js_space).len();
    s.truncate(end);
    let start = end - s.trim_start_matches(is_js_space).len();
    s.drain(..start);
    s
}

impl<'a> Builder<'a, '_> {
    fn open_element(
        &mut self,
        name: Cow<'a, str>,
        attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        self_closing: bool,
        start: usize,
        end: usize,
    ) {
        // A form inside a form is dropped altogether.
        if name == "form" && self.stack.iter().any(|n| n == "form") {
            return;
        }
        let closes = Closes::opening(&name);
        while self.stack.last().is_some_and(|top| closes.closes(top)) {
            self.pop_element(start);
        }
        let void = is_void(&name);
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
    fn open_cut(&mut self, name: Cow<'a, str>) {
        if name == "form" && self.stack.iter().any(|n| n == "form") {
            return;
        }
        let closes = Closes::opening(&name);
        while self.stack.last().is_some_and(|top| closes.closes(top)) {
            let at = self.src.len();
            self.pop_element(at);
        }
        if !is_void(&name) {
            if let Some(f) = foreign_context(&name) {
                self.foreign.push(f);
            }
            self.stack.push(name);
        }
    }

    fn close_element(&mut self, name: &str, at: usize) {
        if is_void(name) {
            // `</br>` is read as `<br>`.
            if name == "br" {
                self.on_open(&Cow::Borrowed("br"), Vec::new(), at, at);
                self.on_close("br", at);
            }
            return;
        }
        let depth = self.stack.iter().rev().position(|n| n == name);
        if let Some(depth) = depth {
            for _ in 0..=depth {
                self.pop_element(at);
            }
        } else if name == "p" {
            // A stray `</p>` is read as `<p></p>`.
            self.stack.push(Cow::Borrowed("p"));
            self.on_open(&Cow::Borrowed("p"), Vec::new(), at, at);
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
        // Inside a command only whether its body is blank matters, and
        // only until it is known not to be.
        if self.current.as_ref().is_some_and(|cur| cur.nonblank) {
            return;
        }
        let raw = self.src.get(start..end).unwrap_or_default();
        let text = if decode {
            super::entities::decode(raw, super::entities::Mode::Text)
        } else {
            Cow::Borrowed(raw)
        };
        let blank = text.chars().all(is_js_space);
        match &mut self.current {
            Some(cur) => cur.nonblank = !blank,
            // Blanks before any unparsed text are trimmed off at the end
            // anyway (restoring masks neither adds nor removes blanks).
            None if blank && self.unparsed.is_empty() => {}
            None => self.unparsed.push_str(&text),
        }
    }

    #[expect(
        clippy::ptr_arg,
        reason = "the command and its nested tags keep a clone, free when borrowed"
    )]
    fn on_open(
        &mut self,
        name: &Cow<'a, str>,
        attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        start: usize,
        end: usize,
    ) {
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
                cur.nested.push(name.clone());
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
            name: name.clone(),
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
        let masks = self.masks;
        self.commands.push(Command {
            name: cur.name.into_owned(),
            attrs: cur
                .attrs
                .into_iter()
                .map(|(k, v)| (restore(masks, k), restore(masks, v)))
                .collect(),
            body: restore(masks, Cow::Borrowed(raw)),
        });
    }
}
