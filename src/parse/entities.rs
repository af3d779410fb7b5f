//! Character references in text and attribute values, decoded the way an
//! HTML parser does (upstream's htmlparser2): named references from the
//! HTML5 table (quick-xml's), numeric references, and the legacy Latin-1
//! names that also work without a semicolon.

use quick_xml::escape::resolve_html5_entity;
use std::borrow::Cow;

/// Where the text came from: attribute values refuse a legacy reference
/// followed by `=` or an alphanumeric (`?a=1&copy=2` stays as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Text,
    Attribute,
}

/// Names an HTML parser decodes even without the closing semicolon.
const LEGACY: &[&str] = &[
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil",
    "ETH", "Eacute", "Ecirc", "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT",
    "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash", "Otilde", "Ouml", "QUOT", "REG", "THORN",
    "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute", "aelig", "agrave",
    "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren", "deg",
    "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt",
    "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro",
    "middot", "nbsp", "not", "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash",
    "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy", "sup1",
    "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml",
    "yacute", "yen", "yuml",
];

/// Windows-1252 meanings of numeric references 0x80–0x9F.
const C1: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

/// Decodes every reference in `s`; text without `&` is returned as is.
pub(crate) fn decode(s: &str, mode: Mode) -> Cow<'_, str> {
    if super::markers::find_byte(b'&', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match reference(after, mode) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The reference at the start of `s` (just after `&`): its text and how
/// many bytes of `s` it used.
fn reference(s: &str, mode: Mode) -> Option<(Cow<'static, str>, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        return numeric(num).map(|(c, used)| (Cow::Owned(c.to_string()), used + 1));
    }
    let name_len = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    if name_len == 0 {
        return None;
    }
    let name = &s[..name_len];
    let next = s[name_len..].chars().next();
    if next == Some(';') {
        if let Some(v) = resolve_html5_entity(name) {
            return Some((Cow::Borrowed(v), name_len + 1));
        }
    }
    match mode {
        Mode::Attribute => {
            let refused = matches!(next, Some(c) if c == '=' || c.is_ascii_alphanumeric());
            if refused || !LEGACY.contains(&name) {
                return None;
            }
            resolve_html5_entity(name).map(|v| (Cow::Borrowed(v), name_len))
        }
        // In text the longest legacy name that prefixes the run is taken
        // (`&copy2024` → ©2024).
        Mode::Text => (1..=name_len).rev().find_map(|len| {
            let prefix = &name[..len];
            LEGACY
                .contains(&prefix)
                .then(|| resolve_html5_entity(prefix))
                .flatten()
                .map(|v| (Cow::Borrowed(v), len))
        }),
    }
}

/// `#60;`, `#x3c;` (after the `&`), semicolon optional.
fn numeric(s: &str) -> Option<(char, usize)> {
    let (digits, radix, skip) = match s.as_bytes().first() {
        Some(b'x' | b'X') => (&s[1..], 16, 1),
        _ => (s, 10, 0),
    };
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if len == 0 {
        return None;
    }
    // Saturate instead of overflowing on absurd digit runs.
    let value = digits[..len].chars().fold(0u32, |acc, c| {
        acc.saturating_mul(radix)
            .saturating_add(c.to_digit(radix).unwrap_or(0))
    });
    let value = match value {
        0x80..=0x9F => C1[(value - 0x80) as usize],
        v => v,
    };
    let c = char::from_u32(value)
        .filter(|_| value != 0)
        .unwrap_or('\u{FFFD}');
    let semi = usize::from(digits[len..].starts_with(';'));
    Some((c, skip + len + semi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_an_html_parser() {
        let cases = [
            ("a &amp; b", Mode::Text, "a & b"),
            ("&nbsp;&copy c", Mode::Text, "\u{a0}© c"),
            ("&lt= &#60; &#x3e;", Mode::Text, "<= < >"),
            ("&notin; &notit;", Mode::Text, "∉ ¬it;"),
            ("&bogus; &", Mode::Text, "&bogus; &"),
            ("a&amp;b&ampc &amp=", Mode::Attribute, "a&b&ampc &amp="),
            ("&#0; &#x110000; &#128;", Mode::Text, "\u{FFFD} \u{FFFD} €"),
            ("&#99999999999999999999;", Mode::Text, "\u{FFFD}"),
        ];
        for (input, mode, want) in cases {
            assert_eq!(decode(input, mode), want, "{input}");
        }
    }
}
