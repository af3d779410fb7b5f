//! Which of the six kinds a pattern string is (spec 01 §4). Each test here only reads the
//! pattern's shape; compiling is left to the kind's own module.

/// XPath axis names; an `axis::` in a `/…` pattern marks it as XPath.
const XPATH_AXES: &[&str] = &[
    "child",
    "descendant",
    "descendant-or-self",
    "parent",
    "ancestor",
    "ancestor-or-self",
    "following",
    "following-sibling",
    "preceding",
    "preceding-sibling",
    "self",
    "attribute",
    "namespace",
];

/// XPath function names; `name(` inside a `[…]` of a `/…` pattern marks it as XPath.
const XPATH_FUNCTIONS: &[&str] = &[
    "position",
    "last",
    "contains",
    "starts-with",
    "not",
    "text",
    "count",
    "sum",
    "name",
    "local-name",
    "string-length",
    "normalize-space",
    "concat",
    "substring",
    "translate",
    "boolean",
    "number",
    "string",
    "true",
    "false",
    "ceiling",
    "floor",
    "round",
    "id",
    "lang",
    "comment",
    "processing-instruction",
];

/// `s/search/replace[/flags[/…]]`: the text after `s/` split on every `/` whose previous
/// character is not a backslash; at least two parts. Escapes stay in `search`.
pub(super) fn parse_sed(pattern: &str) -> Option<(String, String, String)> {
    let rest = pattern.strip_prefix("s/")?;
    let mut parts = vec![String::new()];
    // The character before the first one of `rest` is the `/` of `s/`, never a backslash.
    let mut previous = '/';
    for c in rest.chars() {
        if c == '/' && previous != '\\' {
            parts.push(String::new());
        } else if let Some(current) = parts.last_mut() {
            current.push(c);
        }
        previous = c;
    }
    if parts.len() < 2 {
        return None;
    }
    let mut parts = parts.into_iter();
    let search = parts.next().unwrap_or_default();
    let replace = parts.next().unwrap_or_default();
    let flags = parts.next().unwrap_or_default();
    Some((search, replace, flags))
}

/// `/body/flags`: starts with `/`, more than two characters, and after the first character ends
/// with `/` followed only by flags from `gimsuy`. Returns (body, flags).
pub(super) fn split_regex(pattern: &str) -> Option<(&str, &str)> {
    let rest = pattern.strip_prefix('/')?;
    if pattern.chars().count() <= 2 {
        return None;
    }
    let slash = rest.rfind('/')?;
    let flags = &rest[slash + 1..];
    if !flags.chars().all(|c| "gimsuy".contains(c)) {
        return None;
    }
    Some((&rest[..slash], flags))
}

/// `$.` followed by a letter, `_`, `*`, `@`, `.` or `[`, or `$[`, in both cases with no `/`.
/// (This also covers the exact pattern `$..`.)
pub(super) fn is_plausible_json_path(pattern: &str) -> bool {
    if let Some(after) = pattern.strip_prefix("$.") {
        return after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "_*@.[".contains(c))
            && !pattern.contains('/');
    }
    pattern.starts_with("$[") && !pattern.contains('/')
}

/// `//` followed by a letter, `_`, `*`, `@` or `.`; or `/` with an axis (`child::`) or a
/// predicate that looks like XPath (`[@…]`, `[n]`, `[fn(…)]`).
pub(super) fn is_xpath(pattern: &str) -> bool {
    if let Some(after) = pattern.strip_prefix("//") {
        if after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "_*@.".contains(c))
        {
            return true;
        }
    }
    pattern.starts_with('/') && (has_xpath_axis(pattern) || has_xpath_predicate(pattern))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Some run of `[A-Za-z0-9_-]` directly followed by `::`, less its leading dashes, is an axis
/// name. (Upstream scans with `(\w[\w-]*)(?=::)`; a name can only end where `::` follows, so
/// only whole runs count, starting at their first word character.)
fn has_xpath_axis(pattern: &str) -> bool {
    let bytes = pattern.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !(is_word_byte(bytes[start]) || bytes[start] == b'-') {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && (is_word_byte(bytes[end]) || bytes[end] == b'-') {
            end += 1;
        }
        if bytes[end..].starts_with(b"::") {
            let name = pattern[start..end].trim_start_matches('-');
            if XPATH_AXES.contains(&name) {
                return true;
            }
        }
        start = end;
    }
    false
}

/// Each `[…]` (non-empty, up to the first `]`, scanned left to right without overlap) whose
/// content starts with `@`, is a number, or calls an XPath function.
fn has_xpath_predicate(pattern: &str) -> bool {
    let mut index = 0;
    while let Some(open) = pattern[index..].find('[').map(|i| index + i) {
        let content_start = open + 1;
        match pattern[content_start..].find(']') {
            Some(len) if len > 0 => {
                let content = &pattern[content_start..content_start + len];
                if predicate_looks_like_xpath(content) {
                    return true;
                }
                index = content_start + len + 1;
            }
            _ => index = content_start,
        }
    }
    false
}

fn predicate_looks_like_xpath(content: &str) -> bool {
    if content.starts_with('@') {
        return true;
    }
    // JavaScript's trim also strips the byte order mark, which Rust's whitespace does not cover.
    let trimmed = content.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    calls_xpath_function(content)
}

/// A known function name at a word boundary, then optional whitespace, then `(`.
fn calls_xpath_function(content: &str) -> bool {
    XPATH_FUNCTIONS.iter().any(|name| {
        content.match_indices(name).any(|(at, _)| {
            let boundary = at == 0 || !is_word_byte(content.as_bytes()[at - 1]);
            boundary && content[at + name.len()..].trim_start().starts_with('(')
        })
    })
}

/// `**` anywhere, or a `*`/`?` at the start or after anything but `.` and `\`.
pub(super) fn is_glob(pattern: &str) -> bool {
    if pattern.contains("**") {
        return true;
    }
    let mut previous: Option<char> = None;
    for c in pattern.chars() {
        if (c == '*' || c == '?') && !matches!(previous, Some('.' | '\\')) {
            return true;
        }
        previous = Some(c);
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::store::patterns::tests::kind;

    #[test]
    fn detection_order_and_rules() {
        let cases = [
            ("s/a/b/", "sed"),
            ("s/a/b/gi", "sed"),
            ("s/a/b", "sed"),
            ("s/abc", "literal"),
            ("s/*", "glob"),
            (r"s/a\/b", "literal"),
            ("/a/", "regex"),
            ("/a/gimsuy", "regex"),
            ("/^(index|utils)/", "regex"),
            ("/a/x", "literal"),
            ("//", "literal"),
            ("//ig", "regex"),
            ("/$.+/", "regex"),
            ("$.name", "jsonpath"),
            ("$.*", "jsonpath"),
            ("$..", "jsonpath"),
            ("$..value", "jsonpath"),
            ("$[0]", "jsonpath"),
            ("$.", "literal"),
            ("$.1", "literal"),
            ("$.a/b", "literal"),
            ("$[0]/x", "literal"),
            ("//item", "xpath"),
            ("//*", "xpath"),
            ("//@id", "xpath"),
            ("//.", "xpath"),
            ("//1", "literal"),
            ("/root/item[1]", "xpath"),
            ("/root/item[ 2 ]", "xpath"),
            ("/root/item[@id]", "xpath"),
            ("/root/item[position()>1]", "xpath"),
            ("/root/item[starts-with (name, 'a')]", "xpath"),
            ("/root/item[mycount(x)]", "literal"),
            ("//item/child::name", "xpath"),
            ("/a/descendant-or-self::b", "xpath"),
            ("/path/to/std::vector.html", "literal"),
            ("/a/x-child::b", "literal"),
            ("/a/-child::b", "xpath"),
            ("/a/[]", "literal"),
            ("**", "glob"),
            ("a**", "glob"),
            ("*.js", "glob"),
            ("????.ts", "glob"),
            ("a.?", "literal"),
            (r"a\*", "literal"),
            (r"\*a*", "glob"),
            ("known://*", "glob"),
            ("file+name.txt", "literal"),
            ("c++", "literal"),
            (":AI[]", "literal"),
            (r"\d+", "literal"),
            ("", "literal"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(kind(pattern), expected, "{pattern:?}");
        }
    }
}
