//! Pre-flight repairs before tokenizing (spec 02 §5.1 steps 2–4).

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid constant regex {pattern}: {e}"))
}

static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| re(r"`([^`]*)`"));
static TAG_START: LazyLock<Regex> = LazyLock::new(|| re(r"</?[A-Za-z0-9_]"));
static ANY_TAG: LazyLock<Regex> = LazyLock::new(|| re(r"<(/?)([A-Za-z0-9_]+)([^>]*?)(/?)>"));
static OPEN_QUOTE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(<[A-Za-z0-9_]+\s[^<>]*?[A-Za-z0-9_]+=")([^"<>]*?)(</?[A-Za-z0-9_]+)"#));

/// Stand-ins for `<` and `>` inside code spans. Upstream entity-encodes
/// them and the HTML parser decodes them again; stand-ins let tool bodies
/// stay byte-for-byte what the model wrote. Two Unicode noncharacters
/// that do not occur in the reply are chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Masks {
    lt: char,
    gt: char,
}

impl Masks {
    /// Two noncharacters absent from `text`; None in the absurd case that
    /// the reply holds all of U+FDD0–U+FDEF.
    pub(crate) fn for_text(text: &str) -> Option<Masks> {
        let mut free = ('\u{FDD0}'..='\u{FDEF}').filter(|c| !text.contains(*c));
        Some(Masks {
            lt: free.next()?,
            gt: free.next()?,
        })
    }

    /// Puts `<` and `>` back.
    pub(crate) fn restore<'s>(&self, s: &'s str) -> Cow<'s, str> {
        if s.contains([self.lt, self.gt]) {
            Cow::Owned(s.replace(self.lt, "<").replace(self.gt, ">"))
        } else {
            Cow::Borrowed(s)
        }
    }
}

/// Step 2: a backtick span (no backtick inside) that contains `<` + word
/// character or `</` has its angle brackets neutralized, so a tool tag
/// quoted in prose is not a call. Pairing is greedy from the left, so
/// tags inside triple-backtick fences are neutralized too.
pub(crate) fn neutralize_code_spans<'s>(text: &'s str, masks: Option<Masks>) -> Cow<'s, str> {
    CODE_SPAN.replace_all(text, |c: &Captures| {
        let inner = &c[1];
        if !TAG_START.is_match(inner) {
            return c[0].to_string();
        }
        let neutral = match masks {
            Some(m) => inner
                .replace('<', &m.lt.to_string())
                .replace('>', &m.gt.to_string()),
            None => inner.replace('<', "&lt;").replace('>', "&gt;"),
        };
        format!("`{neutral}`")
    })
}

/// Step 3: a closing tool tag that does not match the innermost open tool
/// tag, at the outermost level only, is rewritten to close it.
pub(crate) fn correct_mismatched_closes<'s>(
    text: &'s str,
    is_tool: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Cow<'s, str> {
    let mut stack: Vec<String> = Vec::new();
    ANY_TAG.replace_all(text, |c: &Captures| {
        let whole = c[0].to_string();
        let tag = &c[2];
        if !is_tool(tag) || &c[4] == "/" {
            return whole;
        }
        if &c[1] != "/" {
            stack.push(tag.to_string());
            return whole;
        }
        match stack.last() {
            None => whole,
            Some(top) if top == tag => {
                stack.pop();
                whole
            }
            Some(_) if stack.len() == 1 => {
                let top = stack.pop().unwrap_or_default();
                warnings.push(format!(
                    "Mismatched </{tag}> closing <{top}> — corrected to </{top}>"
                ));
                format!("</{top}>")
            }
            Some(_) => whole,
        }
    })
}

/// Step 4: an attribute value opened with `="` and running into the next
/// tag without its closing quote gets `">` inserted before that tag, so it
/// does not swallow the rest of the reply.
pub(crate) fn close_attribute_quotes<'s>(
    text: &'s str,
    warnings: &mut Vec<String>,
) -> Cow<'s, str> {
    let mut fixes = 0usize;
    let out = OPEN_QUOTE.replace_all(text, |c: &Captures| {
        fixes += 1;
        format!("{}{}\">{}", &c[1], &c[2], &c[3])
    });
    if fixes > 0 {
        warnings.push(format!(
            "Repaired {fixes} malformed attribute(s) — close all attribute values with a quote."
        ));
    }
    out
}
