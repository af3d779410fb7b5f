//! Token accounting: `ceil(length / RUMMY_TOKEN_DIVISOR)`, length in UTF-16
//! units as upstream's JavaScript measures it, so budgets agree.

/// Tokens of one text; empty text costs nothing.
pub fn count_tokens(text: &str, divisor: f64) -> i64 {
    if text.is_empty() || divisor <= 0.0 {
        return 0;
    }
    let units = text.encode_utf16().count() as f64;
    (units / divisor).ceil() as i64
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
}
