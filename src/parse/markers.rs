//! One scan of a reply for every marker a pre-flight pass looks for.
//!
//! Nearly every reply holds none of the foreign formats, code spans or
//! broken quotes the pre-flight passes repair, so one pass over the bytes
//! decides which of them run instead of each pass searching on its own.
//! A flag is a necessary condition only: a pass whose marker is present
//! may still find nothing to do.
//!
//! The scan reads the text eight bytes at a time and flags, with a few
//! word operations and no branch, the bytes a marker can start with (`<`,
//! `=`, `"`, the backtick, `|` and `[`); only at those does it look at
//! what follows. Replies are short, and a vectorized search would spend
//! more on its setup than on them. A flag is set exactly when its pattern
//! occurs anywhere in the text, overlaps included.

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

/// The markers a marker's first byte at `i` starts (`found` are those
/// found so far); 0 for any other byte.
#[inline(always)]
fn markers_at(b: &[u8], i: usize, found: u16) -> u16 {
    let rest = b.get(i..).unwrap_or_default();
    match (rest.first(), rest.get(1)) {
        (Some(b'<'), Some(b'/')) => bit(Marker::CloseTag),
        (Some(b'<'), Some(b'|')) if rest.starts_with(b"<|tool_call>") => {
            bit(Marker::ChatOpen) | bit(Marker::NativeCall)
        }
        (Some(b'<'), Some(b'|')) => bit(Marker::ChatOpen),
        (Some(b'<'), Some(b't')) if rest.starts_with(b"<tool_use>") => bit(Marker::ToolUse),
        (Some(b'='), Some(b'"')) if found & bit(Marker::OpenQuote) == 0 => {
            bit(Marker::AttributeQuote) | open_quote(rest.get(2..).unwrap_or_default())
        }
        (Some(b'='), Some(b'"')) => bit(Marker::AttributeQuote),
        (Some(b'"'), Some(b'a')) if rest.starts_with(b"\"arguments\"") => {
            bit(Marker::OpenAiArguments)
        }
        (Some(b'`'), Some(b'`')) if rest.starts_with(b"```") => {
            bit(Marker::Backtick) | bit(Marker::Fence)
        }
        (Some(b'`'), _) => bit(Marker::Backtick),
        (Some(b'|'), Some(b'>')) => bit(Marker::ChatClose),
        (Some(b'['), Some(b'T')) if rest.starts_with(b"[TOOL_CALLS]") => bit(Marker::MistralCalls),
        _ => 0,
    }
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The high bit of every byte of `w` that is zero. It can also set the
/// bit of a 0x01 byte above a zero byte, never miss a zero byte; the
/// scan checks every flagged byte again, so that is harmless.
#[inline]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// The bytes of `w` that may start a marker (see [`zero_bytes`]).
#[inline]
fn marker_starts(w: u64) -> u64 {
    let has = |byte: u8| zero_bytes(w ^ (ONES * u64::from(byte)));
    has(b'<') | has(b'=') | has(b'"') | has(b'`') | has(b'|') | has(b'[')
}

/// The markers present in one text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Markers(u16);

impl Markers {
    pub(crate) fn scan(text: &str) -> Markers {
        let b = text.as_bytes();
        let mut bits = 0u16;
        let chunks = b.chunks_exact(8);
        let tail = chunks.remainder();
        for (n, chunk) in chunks.enumerate() {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                continue;
            };
            let mut starts = marker_starts(u64::from_le_bytes(word));
            while starts != 0 {
                let i = n * 8 + (starts.trailing_zeros() / 8) as usize;
                bits |= markers_at(b, i, bits);
                starts &= starts - 1;
            }
        }
        let tail_start = b.len() - tail.len();
        for i in tail_start..b.len() {
            bits |= markers_at(b, i, bits);
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
            "\u{0}<\u{1}/\u{0}=\u{1}\"\u{0}`\u{1}|\u{1}>",
            "1234567<",
            "12345678<",
            "1234567\"arguments\"",
            "123456789012345[TOOL_CALLS]",
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
            text in r#"(```|<\|tool_call>|"arguments"|<tool_use>|\[TOOL_CALLS\]|<\||\|>|`|</|="|[<>|="`\[\]a-z_ é\x00\x01])*"#
        ) {
            assert_flags_match_patterns(&text);
        }
    }
}
