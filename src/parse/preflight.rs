//! Pre-flight repairs before tokenizing (spec 02 §5.1 steps 2–4).
//!
//! Most replies need none of them: `parse_with` runs a pass only when the
//! reply's marker scan (`markers`) found its marker, a backtick for step
//! 2, `</` for step 3, `="` for step 4 (which also checks that a value
//! runs into a tag). Step 3 is a hand-written scan rather than a
//! capturing regex: it runs on nearly every reply and allocates nothing
//! unless it rewrites.

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid constant regex {pattern}: {e}"))
}

static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| re(r"`([^`]*)`"));
static TAG_START: LazyLock<Regex> = LazyLock::new(|| re(r"</?[A-Za-z0-9_]"));
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

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// One tag as the regex `<(/?)([A-Za-z0-9_]+)([^>]*?)(/?)>` finds it
/// (leftmost first): the name is the longest word after `<` or `</`, the
/// tag runs to the first `>` after it, and `/` just before that `>` makes
/// it self-closing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TagSpan<'s> {
    pub start: usize,
    pub end: usize,
    pub closing: bool,
    pub name: &'s str,
    pub self_closing: bool,
}

/// The first tag at or after byte `from` (a char boundary).
pub(crate) fn next_tag(text: &str, mut from: usize) -> Option<TagSpan<'_>> {
    let b = text.as_bytes();
    loop {
        let lt = from + b.get(from..)?.iter().position(|&c| c == b'<')?;
        let closing = b.get(lt + 1) == Some(&b'/');
        let name_start = lt + 1 + usize::from(closing);
        let name_end = name_start
            + b[name_start..]
                .iter()
                .position(|&c| !is_word(c))
                .unwrap_or(b.len() - name_start);
        if name_end == name_start {
            from = lt + 1;
            continue;
        }
        // No `>` after this name means none after any later `<` either.
        let gt = name_end + b[name_end..].iter().position(|&c| c == b'>')?;
        return Some(TagSpan {
            start: lt,
            end: gt + 1,
            closing,
            name: &text[name_start..name_end],
            self_closing: b[gt - 1] == b'/',
        });
    }
}

/// Step 3: a closing tool tag that does not match the innermost open tool
/// tag, at the outermost level only, is rewritten to close it.
pub(crate) fn correct_mismatched_closes<'s>(
    text: &'s str,
    is_tool: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Cow<'s, str> {
    let mut stack: Vec<&str> = Vec::new();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(tag) = next_tag(text, from) {
        from = tag.end;
        if !is_tool(tag.name) || tag.self_closing {
            continue;
        }
        if !tag.closing {
            stack.push(tag.name);
            continue;
        }
        match stack.last() {
            None => {}
            Some(top) if *top == tag.name => {
                stack.pop();
            }
            Some(&top) if stack.len() == 1 => {
                stack.pop();
                warnings.push(format!(
                    "Mismatched </{}> closing <{top}> — corrected to </{top}>",
                    tag.name
                ));
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..tag.start]);
                o.push_str("</");
                o.push_str(top);
                o.push('>');
                copied = tag.end;
            }
            Some(_) => {}
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Whether step 4 can match: some `="` whose value meets `<` before any
/// `"` or `>` (every match of the step's pattern holds one).
fn may_have_open_quote(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(q) = text[from..].find("=\"") {
        let value = from + q + 2;
        let next = b[value..]
            .iter()
            .find(|&&c| c == b'"' || c == b'<' || c == b'>');
        if next == Some(&b'<') {
            return true;
        }
        from = value;
    }
    false
}

/// Step 4: an attribute value opened with `="` and running into the next
/// tag without its closing quote gets `">` inserted before that tag, so it
/// does not swallow the rest of the reply.
pub(crate) fn close_attribute_quotes<'s>(
    text: &'s str,
    warnings: &mut Vec<String>,
) -> Cow<'s, str> {
    if !may_have_open_quote(text) {
        return Cow::Borrowed(text);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The regex step 3 used before the hand-written scan; the scan must
    /// find exactly its matches.
    static ANY_TAG: LazyLock<Regex> = LazyLock::new(|| re(r"<(/?)([A-Za-z0-9_]+)([^>]*?)(/?)>"));

    fn regex_tags(text: &str) -> Vec<(usize, usize, bool, String, bool)> {
        ANY_TAG
            .captures_iter(text)
            .map(|c| {
                let m = c.get(0).map(|m| (m.start(), m.end())).unwrap_or_default();
                (m.0, m.1, &c[1] == "/", c[2].to_string(), &c[4] == "/")
            })
            .collect()
    }

    fn scanned_tags(text: &str) -> Vec<(usize, usize, bool, String, bool)> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(t) = next_tag(text, from) {
            from = t.end;
            out.push((
                t.start,
                t.end,
                t.closing,
                t.name.to_string(),
                t.self_closing,
            ));
        }
        out
    }

    fn regex_quote_matches(text: &str) -> bool {
        OPEN_QUOTE.is_match(text)
    }

    #[test]
    fn scan_matches_the_regex_on_edge_cases() {
        for text in [
            "",
            "<",
            "</",
            "</>",
            "<a",
            "<a>",
            "<a/>",
            "</a/>",
            "<a b=\"c\"/>",
            "<a <b>",
            "<<a>>",
            "< a>",
            "<a\n/>",
            "</get></set>",
            "<é><a>",
            "<a_1 x>/>",
            "<_>",
            "</ >",
            "x<y>z</y",
            "<a>>",
            "<a/",
            "<get/ >",
        ] {
            assert_eq!(scanned_tags(text), regex_tags(text), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn scan_matches_the_regex(text in r#"[<>/a-z_ ="é`\n]{0,40}"#) {
            prop_assert_eq!(scanned_tags(&text), regex_tags(&text));
        }

        #[test]
        fn open_quote_gate_never_hides_a_match(text in r#"[<>/a-z_ ="\n]{0,40}"#) {
            if regex_quote_matches(&text) {
                prop_assert!(may_have_open_quote(&text));
            }
        }
    }
}
