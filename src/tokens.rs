//! Token accounting: `ceil(length / RUMMY_TOKEN_DIVISOR)`, length in UTF-16
//! units as upstream's JavaScript measures it, so budgets agree.

/// Tokens of one text; empty text costs nothing.
pub fn count_tokens(text: &str, divisor: f64) -> i64 {
    if text.is_empty() || divisor <= 0.0 {
        return 0;
    }
    (utf16_len(text) as f64 / divisor).ceil() as i64
}

/// Length in UTF-16 code units without decoding: every byte that starts a
/// character is one unit, and a four-byte character (lead byte 0xF0 and
/// up) is a surrogate pair, one more. A byte loop the compiler vectorizes;
/// `encode_utf16().count()` decodes character by character, and every
/// packet is measured several times a turn.
pub fn utf16_len(text: &str) -> usize {
    text.as_bytes()
        .iter()
        .map(|&b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

/// `floor(context_size * ceiling_ratio)`.
pub fn ceiling(context_size: i64, ratio: f64) -> i64 {
    (context_size as f64 * ratio).floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_upstream() {
        assert_eq!(count_tokens("", 2.0), 0);
        assert_eq!(count_tokens("a", 2.0), 1);
        assert_eq!(count_tokens("abcd", 2.0), 2);
        assert_eq!(count_tokens("abcde", 2.0), 3);
        // One astral character is two UTF-16 units.
        assert_eq!(count_tokens("😀", 1.0), 2);
        assert_eq!(ceiling(32768, 0.9), 29491);
    }

    #[test]
    fn utf16_length_matches_the_encoder() {
        for text in [
            "",
            "plain ascii",
            "é and ü",
            "日本語",
            "😀 astral 𝄞",
            "mixed é😀日a",
        ] {
            assert_eq!(utf16_len(text), text.encode_utf16().count(), "{text}");
        }
    }
}
