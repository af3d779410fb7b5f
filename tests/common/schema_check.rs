//! The protocol schema check behind `WsClient`: every frame a test sends or
//! receives is validated against `rummy schema`'s document.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The protocol schema (`rummy::protocol::schema::document()`, what `rummy schema`
/// prints), compiled once per test binary. [`WsClient`] checks every frame against it.
///
/// Params are checked as published. Results, errors and notifications are checked
/// strictly: a struct's object may have no properties but those it lists, so a
/// field the schema does not name fails the test.
pub struct ProtocolSchema {
    params: HashMap<String, jsonschema::Validator>,
    results: HashMap<String, jsonschema::Validator>,
    notifications: HashMap<String, jsonschema::Validator>,
    error: jsonschema::Validator,
}

/// The compiled protocol schema.
pub fn protocol() -> &'static ProtocolSchema {
    static SCHEMA: OnceLock<ProtocolSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| ProtocolSchema::compile(&rummy::protocol::schema::document()))
}

/// Forbids properties a schema does not list, in every struct's object schema
/// (maps and free-form values say `additionalProperties` themselves).
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let object =
                map.contains_key("properties") || map.get("type") == Some(&json!("object"));
            if object && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

impl ProtocolSchema {
    /// Compiles one validator per method's params and result and per notification.
    pub fn compile(doc: &Value) -> ProtocolSchema {
        let defs = doc["$defs"].clone();
        let mut strict_defs = defs.clone();
        strict(&mut strict_defs);
        let build = |schema: &Value, output: bool, what: &str| {
            let mut schema = schema.clone();
            if output {
                strict(&mut schema);
            }
            let Value::Object(mut map) = schema else {
                panic!("protocol schema: {what} is not an object schema: {schema}");
            };
            let defs = if output { &strict_defs } else { &defs };
            map.insert("$defs".into(), defs.clone());
            jsonschema::validator_for(&Value::Object(map))
                .unwrap_or_else(|e| panic!("protocol schema: {what} does not compile: {e}"))
        };
        let mut params = HashMap::new();
        let mut results = HashMap::new();
        let methods = doc["methods"]
            .as_object()
            .expect("protocol schema lists methods");
        for (name, m) in methods {
            let mut names = vec![name.clone()];
            if let Some(aliases) = m["aliases"].as_array() {
                names.extend(aliases.iter().filter_map(Value::as_str).map(str::to_string));
            }
            for n in names {
                params.insert(
                    n.clone(),
                    build(&m["params"], false, &format!("{n} params")),
                );
                results.insert(n.clone(), build(&m["result"], true, &format!("{n} result")));
            }
        }
        let notifications = doc["notifications"]
            .as_object()
            .expect("protocol schema lists notifications")
            .iter()
            .map(|(name, n)| (name.clone(), build(&n["params"], true, name)))
            .collect();
        let error = build(&doc["error"], true, "the error object");
        ProtocolSchema {
            params,
            results,
            notifications,
            error,
        }
    }

    fn check(
        validators: &HashMap<String, jsonschema::Validator>,
        kind: &str,
        method: &str,
        value: &Value,
    ) -> Result<(), String> {
        let v = validators
            .get(method)
            .ok_or_else(|| format!("{method} has no {kind} schema"))?;
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {kind} do not match the protocol schema: {}; value: {value}",
                errors.join("; ")
            ))
        }
    }

    /// Whether a request's params fit the method's params schema.
    pub fn check_params(&self, method: &str, params: &Value) -> Result<(), String> {
        Self::check(&self.params, "params", method, params)
    }

    /// Whether a reply's result fits the method's result schema.
    pub fn check_result(&self, method: &str, result: &Value) -> Result<(), String> {
        Self::check(&self.results, "result", method, result)
    }

    /// Whether a notification's params fit its payload schema.
    pub fn check_notification(&self, method: &str, params: &Value) -> Result<(), String> {
        Self::check(&self.notifications, "notification params", method, params)
    }

    /// Whether an error object fits the schema every error follows.
    pub fn check_error(&self, error: &Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .error
            .iter_errors(error)
            .map(|e| e.to_string())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "error object does not match the protocol schema: {}; value: {error}",
                errors.join("; ")
            ))
        }
    }

    /// Checks one frame the server sent: the envelope, and an error's or a
    /// notification's body (a result needs its method: see [`Self::check_result`]).
    pub fn check_frame(&self, frame: &Value) -> Result<(), String> {
        if frame.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(format!("frame lacks \"jsonrpc\":\"2.0\": {frame}"));
        }
        if frame.get("id").is_some() {
            return match (frame.get("result"), frame.get("error")) {
                (Some(_), None) => Ok(()),
                (None, Some(error)) => self.check_error(error),
                _ => Err(format!(
                    "reply needs exactly one of result and error: {frame}"
                )),
            };
        }
        match (
            frame.get("method").and_then(Value::as_str),
            frame.get("params"),
        ) {
            (Some(method), Some(params)) => self.check_notification(method, params),
            _ => Err(format!("notification needs a method and params: {frame}")),
        }
    }
}
