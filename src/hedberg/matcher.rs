//! The tolerant matcher behind a SEARCH text that is not literally in the
//! body (spec 02 §4.1 "Applying", step 3).

use super::sed::unescape_regex_punctuation;
use super::{Applied, EditError};

/// (a) regex-escaped punctuation undone when that makes it match; (b) an
/// exact match starting at a line start; (c) a blank search appends; (d)
/// line-by-line match ignoring surrounding whitespace and blank body
/// lines; (e) the replacement re-indented to the matched lines' indent.
/// Several candidate places are an error, not a guess.
pub(crate) fn match_and_patch(
    body: &str,
    search: &str,
    replacement: &str,
) -> Result<Applied, EditError> {
    let mut search = search.to_string();
    let unescaped = unescape_regex_punctuation(&search);
    if unescaped != search && body.contains(&unescaped) {
        search = unescaped;
    }

    if !search.is_empty() {
        let starts: Vec<usize> = body
            .match_indices(search.as_str())
            .map(|(i, _)| i)
            .filter(|&i| i == 0 || body.as_bytes().get(i - 1) == Some(&b'\n'))
            .collect();
        match starts.as_slice() {
            [] => {}
            [at] => {
                let mut out = String::with_capacity(body.len() + replacement.len());
                out.push_str(&body[..*at]);
                out.push_str(replacement);
                out.push_str(&body[at + search.len()..]);
                return Ok(Applied {
                    body: out,
                    warnings: Vec::new(),
                });
            }
            several => {
                return Err(EditError::Ambiguous {
                    search,
                    count: several.len(),
                })
            }
        }
    }

    let search_lines: Vec<&str> = split_lines(&search);
    let tokens: Vec<&str> = search_lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if tokens.is_empty() {
        return Ok(Applied {
            body: append(body, replacement),
            warnings: Vec::new(),
        });
    }

    let file_lines: Vec<&str> = split_lines(body);
    let file_tokens: Vec<&str> = file_lines.iter().map(|l| l.trim()).collect();
    let mut found: Option<(usize, usize)> = None;
    let mut count = 0usize;
    for start in 0..file_tokens.len() {
        if file_tokens[start].is_empty() {
            continue;
        }
        let mut s = 0;
        let mut f = start;
        while s < tokens.len() && f < file_tokens.len() {
            if file_tokens[f].is_empty() {
                f += 1;
            } else if file_tokens[f] == tokens[s] {
                s += 1;
                f += 1;
            } else {
                break;
            }
        }
        if s == tokens.len() {
            count += 1;
            found = Some((start, f - 1));
        }
    }
    let (first, last) = match (found, count) {
        (Some(range), 1) => range,
        (Some(_), n) => return Err(EditError::Ambiguous { search, count: n }),
        (None, _) => return Err(EditError::NoMatch { search }),
    };

    let file_indent = first_indent(&file_lines[first..=last]);
    let search_indent = first_indent(&search_lines);
    let mut warnings = Vec::new();
    let healed = if file_indent != search_indent {
        warnings.push(format!(
            "Indentation healed: the text is indented '{}' where the SEARCH block has '{}'. Match indentation exactly in future edits.",
            show_indent(file_indent),
            show_indent(search_indent)
        ));
        split_lines(replacement)
            .iter()
            .map(|line| {
                if line.trim().is_empty() {
                    line.to_string()
                } else if let Some(rest) = line.strip_prefix(search_indent) {
                    format!("{file_indent}{rest}")
                } else {
                    format!("{file_indent}{}", line.trim_start())
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        replacement.to_string()
    };
    let mut lines: Vec<&str> = Vec::with_capacity(file_lines.len());
    lines.extend_from_slice(&file_lines[..first]);
    lines.push(&healed);
    lines.extend_from_slice(&file_lines[last + 1..]);
    Ok(Applied {
        body: lines.join("\n"),
        warnings,
    })
}

/// Lines split on `\n` or `\r\n`, as upstream's `split(/\r?\n/)`.
fn split_lines(s: &str) -> Vec<&str> {
    s.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

fn first_indent<'a>(lines: &[&'a str]) -> &'a str {
    lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .unwrap_or("")
}

fn show_indent(indent: &str) -> String {
    indent.replace('\t', "\\t").replace(' ', "s")
}

/// Appends `addition` as new lines at the end (an empty body just takes it).
pub(crate) fn append(body: &str, addition: &str) -> String {
    if body.is_empty() {
        return format!("{addition}\n");
    }
    let sep = if body.ends_with('\n') { "" } else { "\n" };
    format!("{body}{sep}{addition}\n")
}
