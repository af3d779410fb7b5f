//! `$.…` patterns: the subject is read as JSON and queried with RFC 9535 JSONPath.

use super::{nesting_depth, MAX_NESTING, MAX_QUERY_LEN};

#[derive(Debug)]
pub enum JsonQuery {
    /// Exactly `$..`: RFC 9535 rejects it; upstream selects the root and every descendant,
    /// which is something for any JSON document except `null` (its walk skips null nodes).
    AnyDocument,
    /// Everything else goes through the RFC 9535 evaluator.
    Query(serde_json_path::JsonPath),
}

pub(super) fn compile_json_path(pattern: &str) -> Option<JsonQuery> {
    if pattern == "$.." {
        return Some(JsonQuery::AnyDocument);
    }
    if pattern.len() > MAX_QUERY_LEN || nesting_depth(pattern) > MAX_NESTING {
        return None;
    }
    serde_json_path::JsonPath::parse(pattern)
        .ok()
        .map(JsonQuery::Query)
}

impl JsonQuery {
    /// The subject parses as JSON and the query selects at least one node (a `null` value
    /// counts as a node).
    pub(super) fn matches(&self, subject: &str) -> bool {
        // serde_json refuses documents nested deeper than 128 levels, so neither parsing nor
        // the query's recursive descent can exhaust the stack.
        let Ok(document) = serde_json::from_str::<serde_json::Value>(subject) else {
            return false;
        };
        match self {
            JsonQuery::AnyDocument => !document.is_null(),
            JsonQuery::Query(path) => !path.query(&document).is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::patterns::tests::check;

    #[test]
    fn jsonpath_cases() {
        let json = r#"{"name":"alice","items":[{"id":1},{"id":2}],"nested":{"deep":{"value":42}},"nothing":null}"#;
        check(&[
            ("$.name", json, true, true),
            ("$.nested.deep.value", json, true, true),
            ("$.items[0].id", json, true, true),
            ("$.items[*].id", json, true, true),
            ("$.items[5].id", json, false, false),
            ("$..value", json, true, true),
            ("$..missing", json, false, false),
            ("$.missing", json, false, false),
            ("$.nothing", json, true, true),
            ("$['name']", json, true, true),
            ("$.items[?@.id == 2]", json, true, true),
            ("$.items[?@.id == 3]", json, false, false),
            ("$.*", "{}", false, false),
            ("$[0]", "[1]", true, true),
            ("$..", "{}", true, true),
            ("$..", "1", true, true),
            ("$..", "null", false, false),
            ("$..", "not json", false, false),
            ("$.name", "not json", false, false),
            ("$.name", "", false, false),
            // Syntax errors match nothing.
            ("$.a b", r#"{"a b":1}"#, false, false),
            ("$[", "[1]", false, false),
        ]);
    }
}
