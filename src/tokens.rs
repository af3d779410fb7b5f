//! Token accounting: `ceil(length / RUMMY_TOKEN_DIVISOR)`, length in UTF-16
//! units as upstream's JavaScript measures it, so budgets agree.

/// Tokens of one text; empty text costs nothing.
pub fn count_tokens(text: &str, divisor: f64) -> i64 {
    if text.is_empty() || divisor <= 0.0 {
        return 0;
    }
    tokens_of_units(utf16_len(text), divisor)
}

/// Length in UTF-16 code units without decoding: every byte that starts a
/// character is one unit, and a four-byte character (lead byte 0xF0 and
/// up) is a surrogate pair, one more. Counted in byte lanes, 127 bytes at
/// a time (each byte adds at most 2, so a lane cannot overflow), which the
/// compiler turns into 16- or 32-byte vector steps; a `usize` per byte
/// gave 64-bit lanes, four times fewer bytes a step, and every packet is
/// measured each turn.
pub fn utf16_len(text: &str) -> usize {
    text.as_bytes()
        .chunks(127)
        .map(|chunk| {
            let units = chunk.iter().fold(0u8, |acc, &b| {
                acc.wrapping_add(u8::from((b & 0xC0) != 0x80) + u8::from(b >= 0xF0))
            });
            usize::from(units)
        })
        .sum()
}

/// Tokens of text measured in parts (UTF-16 units summed, then divided
/// once): the same figure as [`count_tokens`] of the parts joined.
pub fn tokens_of_units(units: usize, divisor: f64) -> i64 {
    if units == 0 || divisor <= 0.0 {
        return 0;
    }
    (units as f64 / divisor).ceil() as i64
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
        // Across lane boundaries (127-byte chunks), with every width.
        let long: String = "aé日😀".repeat(200);
        assert_eq!(utf16_len(&long), long.encode_utf16().count());
        let ascii = "x".repeat(1000);
        assert_eq!(utf16_len(&ascii), 1000);
        assert_eq!(
            tokens_of_units(utf16_len("abc") + utf16_len("de"), 2.0),
            count_tokens("abcde", 2.0)
        );
    }
}
