//! `//…` patterns: the subject is read as XML and evaluated with sxd-xpath, guarded against
//! the inputs that would make it panic, recurse too deep or take quadratic time.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{nesting_depth, MAX_NESTING, MAX_QUERY_LEN};

/// Deepest element nesting of an XML subject that XPath patterns evaluate. sxd-document's parser
/// takes time quadratic in the nesting depth (seconds at a few thousand levels), so one hostile
/// body must not stall every query that filters with an XPath; real documents are far shallower.
const MAX_XML_DEPTH: usize = 256;

/// Whether `expr` can be evaluated without risk: it parses, is not absurdly nested or long, and
/// has no namespace prefix. sxd-xpath panics on a prefix it cannot resolve, and patterns come
/// with no namespace bindings, so a prefixed name could never match anyway (upstream's xpath
/// library fails the same way). Outside string literals a single `:` only occurs in a prefixed
/// name (`::` is the axis separator).
pub(super) fn xpath_is_usable(expr: &str) -> bool {
    if expr.len() > MAX_QUERY_LEN || nesting_depth(expr) > MAX_NESTING {
        return false;
    }
    if has_prefixed_name(expr) {
        return false;
    }
    matches!(
        catch_unwind(|| sxd_xpath::Factory::new().build(expr).map(|x| x.is_some())),
        Ok(Ok(true))
    )
}

fn has_prefixed_name(expr: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ':' => {
                if chars.peek() == Some(&':') {
                    chars.next();
                } else {
                    return true;
                }
            }
            None => {}
        }
    }
    false
}

/// The subject parses as XML and the expression selects at least one node. Other result types
/// (numbers, strings, booleans) do not count as a match.
pub(super) fn xpath_matches(expr: &str, subject: &str) -> bool {
    // sxd-xpath still has `expect`s on paths we believe unreachable after `xpath_is_usable`;
    // a panic there must not take a query (or the store thread) down, so it reads as no match.
    if xml_nesting_exceeds(subject, MAX_XML_DEPTH) {
        return false;
    }
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(package) = sxd_document::parser::parse(subject) else {
            return false;
        };
        let document = package.as_document();
        let Ok(Some(xpath)) = sxd_xpath::Factory::new().build(expr) else {
            return false;
        };
        let context = sxd_xpath::Context::new();
        matches!(
            xpath.evaluate(&context, document.root()),
            Ok(sxd_xpath::Value::Nodeset(nodes)) if nodes.size() > 0
        )
    }))
    .unwrap_or(false)
}

/// Whether elements nest deeper than `limit`, by a light scan that skips comments, CDATA,
/// processing instructions and declarations and honours quotes inside tags. Text that is not
/// well-formed may be miscounted; the parser rejects it anyway.
fn xml_nesting_exceeds(xml: &str, limit: usize) -> bool {
    let bytes = xml.as_bytes();
    let skip_past = |from: usize, end: &str| xml[from..].find(end).map(|at| from + at + end.len());
    let mut depth = 0_usize;
    let mut i = 0;
    while let Some(open) = xml[i..].find('<').map(|at| i + at) {
        let rest = &bytes[open..];
        let next = if rest.starts_with(b"<!--") {
            skip_past(open + 4, "-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(open + 9, "]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(open + 2, "?>")
        } else if rest.starts_with(b"<!") {
            skip_past(open + 2, ">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_past(open + 2, ">")
        } else {
            // A start tag: find its `>` outside attribute quotes.
            let mut quote = None;
            let mut end = None;
            for (at, &b) in bytes.iter().enumerate().skip(open + 1) {
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if b == b'>' => {
                        end = Some(at);
                        break;
                    }
                    None => {}
                }
            }
            end.map(|at| {
                if bytes[at - 1] != b'/' {
                    depth += 1;
                }
                at + 1
            })
        };
        if depth > limit {
            return true;
        }
        match next {
            Some(next) => i = next,
            // Unterminated markup: not well-formed, the parser will refuse it.
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::patterns::hedmatch;
    use crate::store::patterns::tests::check;

    #[test]
    fn xpath_cases() {
        let xml = r#"<root><item id="3"><name>test</name></item><item id="5"/></root>"#;
        check(&[
            ("//item", xml, true, true),
            ("//missing", xml, false, false),
            ("//item[@id='3']", xml, true, true),
            ("//item[@id='99']", xml, false, false),
            ("/root/item[1]", xml, true, true),
            ("/root/item[3]", xml, false, false),
            ("/root/item[position()>1]", xml, true, true),
            ("//item/child::name", xml, true, true),
            ("//item/text()", xml, false, false),
            ("//name/text()", xml, true, true),
            ("//@id", xml, true, true),
            ("//*", "<b/>", true, true),
            ("//a | //b", "<b/>", true, true),
            ("//item", "  <root><item/></root>\n", true, true),
            (
                "//item",
                r#"<?xml version="1.0"?><root><item/></root>"#,
                true,
                true,
            ),
            ("//div", "just plain text", false, false),
            ("//item", "<root><item></root>", false, false),
            ("//item", "", false, false),
            // Not a node-set: no match.
            ("//count(a)", "<a/>", false, false),
            // A namespace prefix cannot be resolved: no match, and no panic in sxd-xpath.
            (
                "//p:item",
                r#"<root xmlns:p="u"><p:item/></root>"#,
                false,
                false,
            ),
            (
                "//item[@p:id]",
                r#"<root xmlns:p="u"><item p:id="1"/></root>"#,
                false,
                false,
            ),
            // A colon inside a string literal is fine.
            (
                "//item[@id='a:b']",
                r#"<root><item id="a:b"/></root>"#,
                true,
                true,
            ),
            // Syntax errors match nothing.
            ("//item[", xml, false, false),
        ]);
    }

    #[test]
    fn xml_depth_scan() {
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(!xml_nesting_exceeds(&nest(3), 3));
        assert!(xml_nesting_exceeds(&nest(4), 3));
        // Siblings, self-closing tags, comments, CDATA, PIs, doctype and quoted `>` do not nest.
        let flat = r#"<?xml version="1.0"?><!DOCTYPE r><r><!-- <a><b><c> --><x y="<>"/><![CDATA[<a><b><c>]]><?pi <a><b>?><a/><a></a><a></a></r>"#;
        assert!(!xml_nesting_exceeds(flat, 2));
        assert!(xml_nesting_exceeds(flat, 1));
        assert!(xml_nesting_exceeds("<r><a x='>'><b>", 2));
        // Unterminated markup stops the scan (the parser refuses it anyway).
        assert!(!xml_nesting_exceeds("<r><a", 1));
        assert!(hedmatch(
            "//b",
            &format!(
                "{}<b/>{}",
                "<a>".repeat(MAX_XML_DEPTH - 1),
                "</a>".repeat(MAX_XML_DEPTH - 1)
            )
        ));
    }
}
