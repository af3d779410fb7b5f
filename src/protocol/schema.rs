//! The protocol registry: every method with its params and result types,
//! every notification with its payload type. `discover` and `rummy schema`
//! are both derived from it, so they describe exactly the types handlers
//! deserialize and send.
//!
//! Params schemas follow serde's deserialize rules (an `Option` field may
//! be left out); result and notification schemas follow its serialize rules
//! (an `Option` field is always present, possibly null, unless it is
//! skipped when empty).

use super::entries::{
    ConstraintInfo, CopyParams, EntryInfo, FileConstraintParams, FileDropParams, FilePatternResult,
    GetEntriesParams, GetParams, RmParams, SetParams, SetResult, UpdateParams, UpdateResult,
};
use super::jsonrpc::RpcError;
use super::models::{
    AddModelParams, AddModelResult, GetModelsParams, ModelInfo, RemoveModelParams,
};
use super::notifications::{
    RunChangedNotification, RunProgressNotification, RunProposalNotification,
    RunResolvedNotification, RunStateNotification, ServerNotification, StreamCancelledNotification,
    UiNotifyNotification, UiRenderNotification,
};
use super::runs::{
    GetRunParams, GetRunResult, GetRunsParams, LegacyRunParams, RunRenameParams, RunSetResult,
    RunSummary,
};
use super::session::{
    DiscoverResult, HelloParams, HelloResult, MethodInfo, NotificationInfo, PingResult,
};
use super::skills::{
    GetSkillsParams, HomeFile, PersonaSetParams, SkillAddParams, SkillAddResult, SkillInfo,
};
use super::streams::{
    StreamAbortedParams, StreamAbortedResult, StreamCancelParams, StreamCompletedParams,
    StreamFinishedResult, StreamParams,
};
use super::tools::ToolCallParams;
use super::{NoParams, OkResult, StatusOkResult, PROTOCOL_VERSION};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// Adds a type's schema to a generator and returns a reference to it.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One method of the protocol.
pub struct MethodDef {
    pub name: &'static str,
    /// Older names answered the same way.
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub params: SchemaFn,
    pub result: SchemaFn,
    /// `false`: defined from the spec for a coming feature, not answered yet.
    pub served: bool,
}

/// One notification of the protocol.
pub struct NotificationDef {
    pub name: &'static str,
    pub description: &'static str,
    pub payload: SchemaFn,
    /// `false`: defined from the spec for a coming feature, never sent yet.
    pub sent: bool,
}

macro_rules! method {
    ($name:literal $(| $alias:literal)*, $params:ty => $result:ty, $served:expr, $desc:expr) => {
        MethodDef {
            name: $name,
            aliases: &[$($alias),*],
            description: $desc,
            params: schema_of::<$params>,
            result: schema_of::<$result>,
            served: $served,
        }
    };
}

macro_rules! notification {
    ($payload:ty, $sent:expr, $desc:expr) => {
        NotificationDef {
            name: <$payload as ServerNotification>::METHOD,
            description: $desc,
            payload: schema_of::<$payload>,
            sent: $sent,
        }
    };
}

const SERVED: bool = true;
const PLANNED: bool = false;

/// Every method, in the order `rummy schema` lists them.
pub static METHODS: &[MethodDef] = &[
    method!("rummy/hello" | "init", HelloParams => HelloResult, SERVED,
        "Handshake: binds this connection to a project (created on first use)."),
    method!("ping", NoParams => PingResult, SERVED, "Liveness check; answers {}."),
    method!("discover" | "rpc/discover", NoParams => DiscoverResult, SERVED,
        "Lists methods and notifications with their params."),
    method!("getModels", GetModelsParams => Vec<ModelInfo>, SERVED,
        "Lists model aliases: [{alias, actual, context_length}]."),
    method!("addModel", AddModelParams => AddModelResult, SERVED,
        "Adds or replaces a model alias."),
    method!("removeModel", RemoveModelParams => StatusOkResult, SERVED,
        "Removes a model alias."),
    method!("set", SetParams => SetResult, SERVED,
        "Writes an entry as the client tier: content, state, visibility, merged attributes, \
         append (streaming) or a pattern (bulk) update. A state on a proposed entry resolves it \
         (resolved = accept, cancelled = reject, failed = error; body = output or the answer) and \
         answers {run, status}, or {ok, state: \"failed\", outcome} when vetoed. On run://{alias}: starts a run (body = prompt, \
         attributes model, mode ask|act and flags), continues it with a new prompt, forks it, cancels \
         it with state \"cancelled\", or, with attributes and no body, changes its stored settings \
         (model, temperature, persona, contextLimit, flags) for its next loops."),
    method!("ask", LegacyRunParams => RunSetResult, SERVED,
        "Older verb: starts (or continues) a run in ask mode; same as set on run://."),
    method!("act", LegacyRunParams => RunSetResult, SERVED,
        "Older verb: starts (or continues) a run in act mode; same as set on run://."),
    method!("getRuns", GetRunsParams => Vec<RunSummary>, SERVED,
        "Lists this project's runs, newest first: [{run, status, turn, summary, created}]."),
    method!("getRun", GetRunParams => GetRunResult, SERVED,
        "One run in detail: status, settings, usage, reasoning, history and the proposals \
         waiting on a decision (pendingProposals)."),
    method!("run/rename", RunRenameParams => RunSetResult, SERVED,
        "Renames a run that is not working; refuses an alias another run holds. Answers \
         {ok, alias} with the new alias. Same as mv from run://old to run://new."),
    method!("get", GetParams => OkResult, SERVED,
        "Promotes matching entries to visible (or sets another visibility); read-only otherwise."),
    method!("rm", RmParams => OkResult, SERVED, "Removes matching entries from the run."),
    method!("cp", CopyParams => OkResult, SERVED,
        "Copies an entry to another path (a missing source is a no-op)."),
    method!("mv", CopyParams => OkResult, SERVED,
        "Moves an entry to another path (a missing source is a no-op)."),
    method!("update", UpdateParams => UpdateResult, SERVED,
        "Writes an update record for the run; answers {ok, path}."),
    method!("getEntries", GetEntriesParams => Vec<EntryInfo>, SERVED,
        "Lists a run's entries matching a pattern (default \"*\"; \"**\" for all), without promoting them."),
    method!("file/constraint", FileConstraintParams => FilePatternResult, SERVED,
        "Sets a project file rule: active (always in view), readonly, or ignore."),
    method!("file/drop", FileDropParams => FilePatternResult, SERVED,
        "Removes a project file rule."),
    method!("getConstraints", NoParams => Vec<ConstraintInfo>, SERVED,
        "Lists the project's file rules: [{pattern, visibility}]."),
    method!("known", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: writes the known:// entry at `path` (body = content) as the model would, \
         recording the call as log://turn_N/known/{path}. A body over RUMMY_MAX_ENTRY_TOKENS is refused."),
    method!("unknown", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: writes the unknown:// entry at `path` (body = the question) as the model would, \
         recording the call as log://turn_N/unknown/{path}; a question the run already has is not \
         written again (an error entry says so)."),
    method!("think", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: records a thought as log://turn_N/think/{path} (body = the reasoning); \
         nothing else is written. Not found when RUMMY_THINK is off."),
    method!("sh", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: proposes the shell command `path` (or attributes.command) as the model's <sh> \
         would, at log://turn_N/sh/{command}; the run's next loop announces it (run/proposal), and \
         once accepted its output is streamed with the stream methods."),
    method!("env", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: like sh, for a command that only inspects (<env>; allowed in ask mode)."),
    method!("ask_user", ToolCallParams => StatusOkResult, SERVED,
        "Tool fallback: proposes the question `path` (or attributes.question) as the model's \
         <ask_user> would, at log://turn_N/ask_user/{question}; `body` lists the choices \
         (`;`-separated). The run's next loop announces it."),
    method!("skill/add", SkillAddParams => SkillAddResult, SERVED,
        "Attaches RUMMY_HOME/skills/{name}.md to a run as skill://{name} (visible, shown to the model \
         before other data)."),
    method!("skill/remove", SkillAddParams => StatusOkResult, SERVED,
        "Removes skill://{name} from a run."),
    method!("getSkills", GetSkillsParams => Vec<SkillInfo>, SERVED,
        "Lists the skills attached to a run: [{name}]."),
    method!("listSkills", NoParams => Vec<HomeFile>, SERVED,
        "Lists the skill files in RUMMY_HOME/skills: [{name, path}]."),
    method!("persona/set", PersonaSetParams => StatusOkResult, SERVED,
        "Sets a run's persona from text or RUMMY_HOME/personas/{name}.md (text wins); neither clears \
         it. Loops started afterwards use it."),
    method!("listPersonas", NoParams => Vec<HomeFile>, SERVED,
        "Lists the persona files in RUMMY_HOME/personas: [{name, path}]."),
    method!("stream", StreamParams => StatusOkResult, SERVED,
        "Appends a chunk of an accepted sh/env command's output: `path` is the command's log entry, \
         channel 1 (stdout) or 2 (stderr) names the entry {action}://turn_N/{command}_{channel}. \
         Refused once the stream has ended."),
    method!("stream/completed", StreamCompletedParams => StreamFinishedResult, SERVED,
        "The command exited: its channels resolve (exit_code 0, the default) or fail with outcome \
         exit:{code}, and the log entry reports the exit, the duration and each channel's size."),
    method!("stream/aborted", StreamAbortedParams => StreamAbortedResult, SERVED,
        "The client killed the command: its channels end cancelled (outcome = reason, else aborted) \
         and the log entry says so. Answers {status: \"ok\", channels} as upstream does."),
    method!("stream/cancel", StreamCancelParams => StreamFinishedResult, SERVED,
        "Any client of the project stops a command, an orphaned one included: its channels end \
         cancelled (outcome = reason, else cancelled) and every client gets stream/cancelled so \
         whoever runs it kills it."),
];

/// Every notification, in the order `rummy schema` lists them.
pub static NOTIFICATIONS: &[NotificationDef] = &[
    notification!(RunStateNotification, SERVED,
        "A run's state at each turn's end and when it ends: {run, turn, status, summary?, history, \
         unknowns, telemetry}."),
    notification!(RunProgressNotification, SERVED,
        "What a run is doing while the model works: {run, turn, status: thinking|processing|retrying}; \
         retrying adds {attempt, error, delayMs} before each wait between provider calls."),
    notification!(RunChangedNotification, SERVED,
        "Only to clients that listed it in rummy/hello `subscribe`: an entry of a run changed, \
         {run, runId, path, changeType}; sent besides run/state and run/progress."),
    notification!(RunProposalNotification, SERVED,
        "An entry awaits a decision from any client of the project: {run, proposed: [{path, body, \
         attributes, turn}]}, one at a time. Answer with set {run, path, state: resolved|cancelled|failed, body?}."),
    notification!(RunResolvedNotification, SERVED,
        "A proposal was settled (beyond 2.0.0): {run, path, state, outcome}."),
    notification!(StreamCancelledNotification, SERVED,
        "A streaming command was cancelled (stream/cancel): {run, path, reason}; the client running \
         it should kill it."),
    notification!(UiRenderNotification, PLANNED, "Not sent yet. Text for the client to show: {text, append}."),
    notification!(UiNotifyNotification, PLANNED, "Not sent yet. A message for the user: {text, level}."),
];

/// The method a name (or an older alias) stands for.
pub fn method(name: &str) -> Option<&'static MethodDef> {
    METHODS
        .iter()
        .find(|m| m.name == name || m.aliases.contains(&name))
}

fn params_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
}

fn output_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
}

/// The whole protocol as one JSON Schema (draft 2020-12) document: every
/// method's `params` and `result` and every notification's `params` are
/// subschemas whose `$ref`s point into the shared `$defs`.
pub fn document() -> Value {
    let mut inputs = params_generator();
    let mut outputs = output_generator();
    let mut methods = Map::new();
    for m in METHODS {
        let mut entry = Map::new();
        entry.insert("description".into(), json!(m.description));
        if !m.aliases.is_empty() {
            entry.insert("aliases".into(), json!(m.aliases));
        }
        entry.insert("served".into(), json!(m.served));
        entry.insert("params".into(), (m.params)(&mut inputs).to_value());
        entry.insert("result".into(), (m.result)(&mut outputs).to_value());
        methods.insert(m.name.into(), Value::Object(entry));
    }
    let mut notifications = Map::new();
    for n in NOTIFICATIONS {
        notifications.insert(
            n.name.into(),
            json!({
                "description": n.description,
                "sent": n.sent,
                "params": (n.payload)(&mut outputs).to_value(),
            }),
        );
    }
    let error = schema_of::<RpcError>(&mut outputs).to_value();
    let mut defs = inputs.take_definitions(true);
    for (name, schema) in outputs.take_definitions(true) {
        // A type used both ways has one definition; the unit tests check
        // the two contracts agree on it.
        defs.entry(name).or_insert(schema);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rummy JSON-RPC protocol",
        "description": "Every method's params and result and every notification's params. Frames are \
            JSON-RPC 2.0 over WebSocket; a failed call answers `error` instead of `result`.",
        "version": PROTOCOL_VERSION,
        "methods": methods,
        "notifications": notifications,
        "error": error,
        "$defs": defs,
    })
}

/// The `discover` result: served methods with a line per param, and every
/// notification.
pub fn discover() -> DiscoverResult {
    let mut generator = params_generator();
    let mut result = DiscoverResult::default();
    for m in METHODS.iter().filter(|m| m.served) {
        let schema = (m.params)(&mut generator).to_value();
        let params = param_lines(&schema, generator.definitions());
        let mut description = m.description.to_string();
        for alias in m.aliases {
            description.push_str(&format!(" Also answered as `{alias}`."));
        }
        result.methods.insert(
            m.name.to_string(),
            MethodInfo {
                description,
                params,
            },
        );
    }
    for n in NOTIFICATIONS {
        result.notifications.insert(
            n.name.to_string(),
            NotificationInfo {
                description: n.description.to_string(),
            },
        );
    }
    result
}

/// Follows a `#/$defs/…` reference.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
        .unwrap_or(schema)
}

/// `param → "type — meaning"` for an object schema, or for each variant
/// of a union (the first variant gives the type; differing meanings are
/// joined with ` / `).
fn param_lines(
    schema: &Value,
    defs: &Map<String, Value>,
) -> std::collections::BTreeMap<String, String> {
    let schema = resolve(schema, defs);
    let mut lines = std::collections::BTreeMap::new();
    if let Some(variants) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        for v in variants {
            for (k, line) in param_lines(v, defs) {
                match lines.get_mut(&k) {
                    None => {
                        lines.insert(k, line);
                    }
                    Some(first) => {
                        let meaning = line.split_once(" — ").map(|(_, m)| m);
                        if let Some(m) = meaning.filter(|m| !first.ends_with(m)) {
                            first.push_str(if first.contains(" — ") {
                                " / "
                            } else {
                                " — "
                            });
                            first.push_str(m);
                        }
                    }
                }
            }
        }
        return lines;
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return lines;
    };
    for (name, prop) in props {
        let optional = if required.contains(&name.as_str()) {
            ""
        } else {
            "?"
        };
        let (kind, values) = type_name(prop, defs);
        let mut line = format!("{kind}{optional}");
        let meaning = prop
            .get("description")
            .or_else(|| resolve(prop, defs).get("description"))
            .and_then(Value::as_str);
        let values = values.map(|v| format!("one of {v}"));
        let text: Vec<String> = meaning
            .map(|m| m.trim_end_matches('.').to_string())
            .into_iter()
            .chain(values)
            .collect();
        if !text.is_empty() {
            line.push_str(" — ");
            line.push_str(&text.join("; "));
        }
        lines.insert(name.clone(), line);
    }
    lines
}

/// A property's JSON type (integers read as `number`, as upstream names
/// them) and, for an enumeration, its values joined with `|`.
fn type_name(prop: &Value, defs: &Map<String, Value>) -> (String, Option<String>) {
    let prop = resolve(prop, defs);
    if let Some(values) = enum_values(prop, defs) {
        return ("string".into(), Some(values.join(" | ")));
    }
    if let Some(variants) = prop
        .get("anyOf")
        .or_else(|| prop.get("oneOf"))
        .and_then(Value::as_array)
    {
        if let Some(v) = variants.iter().find(|v| !is_null(v)) {
            return type_name(v, defs);
        }
    }
    let kind = match prop.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "any",
    };
    let kind = if kind == "integer" { "number" } else { kind };
    (kind.to_string(), None)
}

fn is_null(schema: &Value) -> bool {
    schema.get("type") == Some(&json!("null"))
}

/// The strings a string enumeration allows (`enum`, or one `const` per
/// variant, which is how documented variants come out), nulls left out.
fn enum_values(prop: &Value, defs: &Map<String, Value>) -> Option<Vec<String>> {
    let prop = resolve(prop, defs);
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        );
    }
    if let Some(c) = prop.get("const").and_then(Value::as_str) {
        return Some(vec![c.to_string()]);
    }
    let variants = prop
        .get("anyOf")
        .or_else(|| prop.get("oneOf"))
        .and_then(Value::as_array)?;
    let mut all = Vec::new();
    for v in variants.iter().filter(|v| !is_null(v)) {
        all.extend(enum_values(v, defs)?);
    }
    (!all.is_empty()).then_some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_and_notification_is_in_the_document() {
        let doc = document();
        for m in METHODS {
            assert!(doc["methods"][m.name]["params"].is_object(), "{}", m.name);
            assert!(doc["methods"][m.name]["result"].is_object(), "{}", m.name);
        }
        for n in NOTIFICATIONS {
            assert!(
                doc["notifications"][n.name]["params"].is_object(),
                "{}",
                n.name
            );
        }
        assert!(doc["$defs"]["RunStateNotification"].is_object());
    }

    #[test]
    fn types_used_both_ways_agree() {
        let mut inputs = params_generator();
        let mut outputs = output_generator();
        for m in METHODS {
            (m.params)(&mut inputs);
            (m.result)(&mut outputs);
        }
        for n in NOTIFICATIONS {
            (n.payload)(&mut outputs);
        }
        let inputs = inputs.take_definitions(true);
        for (name, schema) in outputs.take_definitions(true) {
            if let Some(other) = inputs.get(&name) {
                assert_eq!(other, &schema, "{name} differs between params and results");
            }
        }
    }

    #[test]
    fn discover_lines_come_from_the_params_types() {
        let d = discover();
        let hello = &d.methods["rummy/hello"];
        assert!(hello.description.contains("Also answered as `init`"));
        assert!(
            hello.params["name"].starts_with("string — "),
            "{:?}",
            hello.params
        );
        assert!(hello.params["clientVersion"].starts_with("string? — "));
        assert_eq!(d.methods["ping"].params.len(), 0);
        let get = &d.methods["get"].params;
        assert!(
            get["visibility"].contains("visible | summarized | archived"),
            "{get:?}"
        );
        let set = &d.methods["set"].params;
        for p in [
            "path",
            "run",
            "body",
            "state",
            "attributes",
            "append",
            "pattern",
            "bodyFilter",
        ] {
            assert!(set.contains_key(p), "set lacks {p}: {set:?}");
        }
        assert!(d.methods["getModels"].params["limit"].starts_with("number? — "));
        assert_eq!(
            d.methods["file/constraint"].params["visibility"],
            "string — A project file rule's visibility; one of active | readonly | ignore"
        );
        assert!(d.methods.contains_key("stream"));
        assert!(d.methods.contains_key("sh") && d.methods.contains_key("ask_user"));
        assert!(
            !d.methods
                .keys()
                .any(|m| !METHODS.iter().any(|x| x.served && x.name == m.as_str())),
            "only served methods are discovered"
        );
        assert!(d.notifications.contains_key("run/proposal"));
    }
}
