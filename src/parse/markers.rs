//! One scan of a reply for every marker a pre-flight pass looks for.
//!
//! Nearly every reply holds none of the foreign formats, code spans or
//! broken quotes the pre-flight passes repair, so one pass over the bytes
//! decides which of them run instead of each pass searching on its own.
//! A flag is a necessary condition only: a pass whose marker is present
//! may still find nothing to do.
//!
//! The scan is three vectorized searches rather than a loop over every
//! byte: one for `<`, `=` and the backtick, whose hits are checked for
//! the markers that start there; one for `|` and `[`, which ordinary
//! replies hardly hold; and one for `"arguments"`. A flag is set exactly
//! when its pattern occurs anywhere in the text, overlaps included.

use memchr::memmem;
use std::sync::LazyLock;

/// What the passes look for, in [`PATTERNS`] order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Marker {
    Fence,
    NativeCall,
    OpenAiArguments,
    ToolUse,
    MistralCalls,
    ChatOpen,
    ChatClose,
    Backtick,
    CloseTag,
    AttributeQuote,
    /// Not a pattern: some `="` whose value meets `<` before any `"` or
    /// `>`, the condition for pre-flight step 4 to have anything to do
    /// (`preflight::may_have_open_quote`).
    OpenQuote,
}

/// The text each marker stands for.
#[cfg(test)]
const PATTERNS: [&str; 10] = [
    "```",
    "<|tool_call>",
    "\"arguments\"",
    "<tool_use>",
    "[TOOL_CALLS]",
    "<|",
    "|>",
    "`",
    "</",
    "=\"",
];

const fn bit(m: Marker) -> u16 {
    1 << m as u16
}

static ARGUMENTS: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"arguments\""));

/// The markers present in one text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Markers(u16);

impl Markers {
    pub(crate) fn scan(text: &str) -> Markers {
        let b = text.as_bytes();
        let mut bits = 0u16;
        for i in memchr::memchr3_iter(b'<', b'=', b'`', b) {
            let rest = &b[i..];
            bits |= match (rest[0], rest.get(1)) {
                (b'<', Some(b'/')) => bit(Marker::CloseTag),
                (b'<', Some(b'|')) if rest.starts_with(b"<|tool_call>") => {
                    bit(Marker::ChatOpen) | bit(Marker::NativeCall)
                }
                (b'<', Some(b'|')) => bit(Marker::ChatOpen),
                (b'<', Some(b't')) if rest.starts_with(b"<tool_use>") => bit(Marker::ToolUse),
                (b'=', Some(b'"')) if bits & bit(Marker::OpenQuote) == 0 => {
                    bit(Marker::AttributeQuote) | open_quote(&rest[2..])
                }
                (b'=', Some(b'"')) => bit(Marker::AttributeQuote),
                (b'`', Some(b'`')) if rest.starts_with(b"```") => {
                    bit(Marker::Backtick) | bit(Marker::Fence)
                }
                (b'`', _) => bit(Marker::Backtick),
                _ => 0,
            };
        }
        for i in memchr::memchr2_iter(b'|', b'[', b) {
            let rest = &b[i..];
            bits |= match (rest[0], rest.get(1)) {
                (b'|', Some(b'>')) => bit(Marker::ChatClose),
                (b'[', Some(b'T')) if rest.starts_with(b"[TOOL_CALLS]") => {
                    bit(Marker::MistralCalls)
                }
                _ => 0,
            };
        }
        if ARGUMENTS.find(b).is_some() {
            bits |= bit(Marker::OpenAiArguments);
        }
        Markers(bits)
    }

    pub(crate) fn has(self, marker: Marker) -> bool {
        self.0 & bit(marker) != 0
    }
}

/// The open-quote flag for an attribute value starting at `value`: set
/// when the value meets `<` before `"` or `>`.
fn open_quote(value: &[u8]) -> u16 {
    match find_byte3(b'"', b'<', b'>', value).map(|i| value[i]) {
        Some(b'<') => bit(Marker::OpenQuote),
        _ => 0,
    }
}

/// How far [`find_byte`] looks with a plain loop before handing over to
/// memchr.
const SHORT: usize = 16;

/// The offset of the first `byte` in `hay`. Most distances in a reply are
/// short, and for them memchr's dispatch costs more than a plain loop
/// over the first few bytes; beyond those memchr takes over.
#[inline]
pub(crate) fn find_byte(byte: u8, hay: &[u8]) -> Option<usize> {
    let head = hay.len().min(SHORT);
    if let Some(i) = hay[..head].iter().position(|&c| c == byte) {
        return Some(i);
    }
    if hay.len() <= SHORT {
        return None;
    }
    memchr::memchr(byte, &hay[SHORT..]).map(|i| i + SHORT)
}

/// [`find_byte`] for the first of three bytes.
#[inline]
pub(crate) fn find_byte3(a: u8, b: u8, c: u8, hay: &[u8]) -> Option<usize> {
    let head = hay.len().min(SHORT);
    if let Some(i) = hay[..head].iter().position(|&x| x == a || x == b || x == c) {
        return Some(i);
    }
    if hay.len() <= SHORT {
        return None;
    }
    memchr::memchr3(a, b, c, &hay[SHORT..]).map(|i| i + SHORT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EVERY: [Marker; 10] = [
        Marker::Fence,
        Marker::NativeCall,
        Marker::OpenAiArguments,
        Marker::ToolUse,
        Marker::MistralCalls,
        Marker::ChatOpen,
        Marker::ChatClose,
        Marker::Backtick,
        Marker::CloseTag,
        Marker::AttributeQuote,
    ];

    /// The definition: a flag is set exactly when its pattern occurs, and
    /// the open-quote flag exactly when step 4's gate holds.
    fn assert_flags_match_patterns(text: &str) {
        let m = Markers::scan(text);
        for marker in EVERY {
            let want = text.contains(PATTERNS[marker as usize]);
            assert_eq!(m.has(marker), want, "{marker:?} in {text:?}");
        }
        let want = crate::parse::preflight::may_have_open_quote(text);
        assert_eq!(m.has(Marker::OpenQuote), want, "open quote in {text:?}");
    }

    #[test]
    fn finds_overlapping_markers() {
        let m = Markers::scan("x ```xml <|tool_call> </a>");
        for marker in [
            Marker::Fence,
            Marker::Backtick,
            Marker::NativeCall,
            Marker::ChatOpen,
            Marker::CloseTag,
        ] {
            assert!(m.has(marker), "{marker:?}");
        }
        for marker in [Marker::ChatClose, Marker::AttributeQuote, Marker::ToolUse] {
            assert!(!m.has(marker), "{marker:?}");
        }
        assert!(!Markers::scan("plain prose").has(Marker::Backtick));
    }

    #[test]
    fn flags_match_patterns_on_edge_cases() {
        for text in [
            "",
            "`",
            "``",
            "```",
            "<",
            "<|",
            "<|tool_call",
            "<|tool_call>",
            "<tool_use",
            "<tool_use>",
            "|",
            "|>",
            "=",
            "=\"",
            "\"arguments",
            "\"arguments\"",
            "[TOOL_CALLS",
            "[TOOL_CALLS]",
            "x <|tool_call> <tool_use> [TOOL_CALLS] \"arguments\" ``` </ =\" |>",
            "é<|é|>é",
            "<a b=\"c<d>",
            "<a b=\"c\" d=\"<e>",
            "<a b=\"c>\" d=\"<e",
            "=\"=\"<",
            "=\"\"<",
        ] {
            assert_flags_match_patterns(text);
        }
    }

    #[test]
    fn finds_bytes_near_and_far() {
        let text: Vec<u8> = (0..100u8).collect();
        for n in [0usize, 1, 15, 16, 17, 40, 100] {
            let hay = &text[..n];
            for byte in [0u8, 5, 15, 16, 17, 50, 99, 200] {
                let want = hay.iter().position(|&c| c == byte);
                assert_eq!(find_byte(byte, hay), want, "{byte} in {n}");
                let want3 = hay.iter().position(|&c| c == byte || c == 99 || c == 201);
                assert_eq!(find_byte3(byte, 99, 201, hay), want3, "{byte} in {n}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn flags_match_patterns(
            text in r#"(```|<\|tool_call>|"arguments"|<tool_use>|\[TOOL_CALLS\]|<\||\|>|`|</|="|[<>|="`\[\]a-z_ é])*"#
        ) {
            assert_flags_match_patterns(&text);
        }
    }
}
