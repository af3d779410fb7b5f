//! One scan of a reply for every marker a pre-flight pass looks for.
//!
//! Nearly every reply holds none of the foreign formats, code spans or
//! broken quotes the pre-flight passes repair, so one Aho-Corasick pass
//! decides which of them run instead of each pass searching on its own.
//! A flag is a necessary condition only: a pass whose marker is present
//! may still find nothing to do.

use aho_corasick::AhoCorasick;
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
}

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

const ALL: u16 = (1 << PATTERNS.len()) - 1;

/// None only if the constant patterns could not be built; then every
/// pass runs, as before the scan existed.
static SCANNER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| AhoCorasick::new(PATTERNS).ok());

/// The markers present in one text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Markers(u16);

impl Markers {
    pub(crate) fn scan(text: &str) -> Markers {
        let Some(scanner) = SCANNER.as_ref() else {
            return Markers(ALL);
        };
        let Ok(found) = scanner.try_find_overlapping_iter(text) else {
            return Markers(ALL);
        };
        let mut bits = 0u16;
        for m in found {
            bits |= 1 << m.pattern().as_usize();
            if bits == ALL {
                break;
            }
        }
        Markers(bits)
    }

    pub(crate) fn has(self, marker: Marker) -> bool {
        self.0 & (1 << marker as u16) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
