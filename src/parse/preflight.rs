//! Pre-flight repairs before tokenizing (spec 02 §5.1 steps 2–4).
//!
//! Most replies need none of them: `parse_with` runs a pass only when the
//! reply's marker scan (`markers`) found its marker, a backtick for step
//! 2, `</` for step 3, `="` for step 4 (which also checks that a value
//! runs into a tag). Step 3 is a hand-written scan rather than a
//! capturing regex: it runs on nearly every reply and allocates nothing
//! unless it rewrites.

use super::markers::{find_byte, find_byte3};
use regex::{Captures, Regex};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid constant regex {pattern}: {e}"))
}

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

/// The noncharacters the stand-ins are taken from, U+FDD0–U+FDEF: in
/// UTF-8 `EF B7 90` to `EF B7 AF`.
const MASK_FIRST: u32 = 0xFDD0;
const MASK_COUNT: u32 = 32;

impl Masks {
    /// The two lowest noncharacters absent from `text`; None in the absurd
    /// case that the reply holds all of U+FDD0–U+FDEF. One pass over the
    /// text's `EF` bytes.
    pub(crate) fn for_text(text: &str) -> Option<Masks> {
        let b = text.as_bytes();
        let mut used = 0u32;
        for i in memchr::memchr_iter(0xEF, b) {
            if b.get(i + 1) == Some(&0xB7) {
                if let Some(&last @ 0x90..=0xAF) = b.get(i + 2) {
                    used |= 1 << (last - 0x90);
                }
            }
        }
        let free = !used;
        let first = free.trailing_zeros();
        let second = (free & !(1u32 << (first % MASK_COUNT))).trailing_zeros();
        if second >= MASK_COUNT {
            return None;
        }
        Some(Masks {
            lt: char::from_u32(MASK_FIRST + first)?,
            gt: char::from_u32(MASK_FIRST + second)?,
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

/// Whether `s` holds what the regex `</?[A-Za-z0-9_]` matches.
fn has_tag_start(s: &[u8]) -> bool {
    memchr::memchr_iter(b'<', s).any(|i| match s.get(i + 1) {
        Some(&b'/') => s.get(i + 2).is_some_and(|&c| is_word(c)),
        Some(&c) => is_word(c),
        None => false,
    })
}

/// Step 2: a backtick span (no backtick inside) that contains `<` + word
/// character or `</` has its angle brackets neutralized, so a tool tag
/// quoted in prose is not a call. Pairing is greedy from the left, so
/// tags inside triple-backtick fences are neutralized too.
pub(crate) fn neutralize_code_spans<'s>(text: &'s str, masks: Option<Masks>) -> Cow<'s, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(open) = memchr::memchr(b'`', &b[from..]).map(|i| from + i) {
        let Some(close) = memchr::memchr(b'`', &b[open + 1..]).map(|i| open + 1 + i) else {
            break;
        };
        from = close + 1;
        let inner = &b[open + 1..close];
        if !has_tag_start(inner) {
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 32));
        o.push_str(&text[copied..open + 1]);
        // `<` and `>` are ASCII, so every cut below is a char boundary.
        let mut done = open + 1;
        for at in memchr::memchr2_iter(b'<', b'>', inner).map(|i| open + 1 + i) {
            o.push_str(&text[done..at]);
            match (b[at], masks) {
                (b'<', Some(m)) => o.push(m.lt),
                (_, Some(m)) => o.push(m.gt),
                (b'<', None) => o.push_str("&lt;"),
                (_, None) => o.push_str("&gt;"),
            }
            done = at + 1;
        }
        o.push_str(&text[done..close + 1]);
        copied = close + 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
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
        let lt = from + find_byte(b'<', b.get(from..)?)?;
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
        let gt = name_end + find_byte(b'>', &b[name_end..])?;
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
    // The open tool tags, innermost last.
    let mut stack: SmallVec<[&str; 4]> = SmallVec::new();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(tag) = next_tag(text, from) {
        from = tag.end;
        if tag.self_closing || !is_tool(tag.name) {
            continue;
        }
        if !tag.closing {
            stack.push(tag.name);
            continue;
        }
        match stack.last().copied() {
            None => {}
            Some(top) if top == tag.name => {
                stack.pop();
            }
            Some(top) if stack.len() == 1 => {
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
pub(crate) fn may_have_open_quote(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(eq) = find_byte(b'=', &b[from..]).map(|i| from + i) {
        if b.get(eq + 1) != Some(&b'"') {
            from = eq + 1;
            continue;
        }
        let value = eq + 2;
        let next = find_byte3(b'"', b'<', b'>', &b[value..]).map(|i| b[value + i]);
        if next == Some(b'<') {
            return true;
        }
        from = value;
    }
    false
}

/// Step 4: an attribute value opened with `="` and running into the next
/// tag without its closing quote gets `">` inserted before that tag, so it
/// does not swallow the rest of the reply. The caller checks the gate
/// ([`may_have_open_quote`], or the marker scan's flag for it).
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

    /// Step 2 as a regex replacement, before the hand-written scan.
    static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| re(r"`([^`]*)`"));
    static TAG_START: LazyLock<Regex> = LazyLock::new(|| re(r"</?[A-Za-z0-9_]"));

    fn regex_neutralize(text: &str, masks: Option<Masks>) -> String {
        CODE_SPAN
            .replace_all(text, |c: &Captures| {
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
            .into_owned()
    }

    /// The masks as chosen before the one-pass scan.
    fn filtered_masks(text: &str) -> Option<(char, char)> {
        let mut free = ('\u{FDD0}'..='\u{FDEF}').filter(|c| !text.contains(*c));
        Some((free.next()?, free.next()?))
    }

    fn check_masks(text: &str) {
        let got = Masks::for_text(text).map(|m| (m.lt, m.gt));
        assert_eq!(got, filtered_masks(text), "{text:?}");
    }

    #[test]
    fn masks_skip_the_noncharacters_in_the_text() {
        let all: String = ('\u{FDD0}'..='\u{FDEF}').collect();
        check_masks("");
        check_masks("\u{FDD0}");
        check_masks("\u{FDD1}x\u{FDD0}");
        check_masks("\u{FDEF}\u{FDCF}\u{FDF0}\u{EFB7}");
        check_masks(&all);
        check_masks(&all[3..]);
        check_masks(&all[..all.len() - 3]);
        check_masks(&all.replace('\u{FDE0}', ""));
    }

    #[test]
    fn neutralizing_matches_the_regex_on_edge_cases() {
        let masks = Masks::for_text("");
        for text in [
            "",
            "`",
            "``",
            "`<a>`",
            "`</`",
            "`</a`",
            "`< a>`",
            "`<`a>`",
            "x `<get/>` and `<set/>` y",
            "```xml\n<sh>ls</sh>\n```",
            "`a > b` `<_>` `</_`",
            "`é<é>` `<1>`",
        ] {
            for m in [masks, None] {
                assert_eq!(
                    neutralize_code_spans(text, m),
                    regex_neutralize(text, m),
                    "{text:?}"
                );
            }
        }
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
        fn neutralizing_matches_the_regex(text in r#"[<>/a-z_ `é\n]{0,40}"#) {
            let masks = Masks::for_text(&text);
            prop_assert_eq!(neutralize_code_spans(&text, masks), regex_neutralize(&text, masks));
            prop_assert_eq!(neutralize_code_spans(&text, None), regex_neutralize(&text, None));
        }

        #[test]
        fn masks_match_the_filter(text in "[\u{FDCE}-\u{FDF1}a]{0,40}") {
            check_masks(&text);
        }

        #[test]
        fn open_quote_gate_never_hides_a_match(text in r#"[<>/a-z_ ="\n]{0,40}"#) {
            if regex_quote_matches(&text) {
                prop_assert!(may_have_open_quote(&text));
            }
        }
    }
}
