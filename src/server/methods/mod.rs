//! RPC method handlers, one module per protocol area, and the table that
//! registers them.

mod entries;
mod models;
mod runs;
mod session;

use super::router::MethodSpec;

/// Every method the server answers.
pub static ALL: &[MethodSpec] = &[
    MethodSpec {
        name: "rummy/hello",
        description: "Handshake: binds this connection to a project (created on first use). Also answered as `init`.",
        params: &[
            ("name", "string — project name"),
            ("projectRoot", "string — absolute path of the project"),
            ("configPath", "string? — client config file"),
            ("clientVersion", "string? — client protocol version; MAJOR must match"),
        ],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(session::hello(c, p)),
    },
    MethodSpec {
        name: "ping",
        description: "Liveness check; answers {}.",
        params: &[],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(session::ping(c, p)),
    },
    MethodSpec {
        name: "discover",
        description: "Lists methods and notifications with their params. Also answered as `rpc/discover`.",
        params: &[],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(session::discover(c, p)),
    },
    MethodSpec {
        name: "getModels",
        description: "Lists model aliases: [{alias, actual, context_length}].",
        params: &[("limit", "number? — page size"), ("offset", "number? — rows to skip")],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(models::get_models(c, p)),
    },
    MethodSpec {
        name: "addModel",
        description: "Adds or replaces a model alias.",
        params: &[
            ("alias", "string — alias clients name"),
            ("actual", "string — {provider}/{model}"),
            ("contextLength", "number? — context window in tokens"),
        ],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(models::add_model(c, p)),
    },
    MethodSpec {
        name: "removeModel",
        description: "Removes a model alias.",
        params: &[("alias", "string — alias to remove")],
        gated: false,
        long_running: false,
        handler: |c, p| Box::pin(models::remove_model(c, p)),
    },
    MethodSpec {
        name: "set",
        description: "Writes an entry as the client tier: content, state, visibility, merged attributes, append (streaming) or a pattern (bulk) update. On run://{alias}: starts a run (body = prompt, attributes model, mode ask|act and flags), continues it with a new prompt, forks it, or cancels it with state \"cancelled\".",
        params: &[
            ("path", "string — entry path, run://{alias} for runs"),
            ("run", "string? — run alias (not for run:// paths)"),
            ("body", "string? — entry body; the prompt for run://"),
            ("state", "string? — proposed | streaming | resolved | failed | cancelled; \"cancelled\" on run:// cancels the run"),
            ("visibility", "string? — visible | summarized | archived"),
            ("outcome", "string? — reason for the state"),
            ("attributes", "object? — merged into the entry; for run://: model, mode, temperature, persona, contextLimit, noRepo, noInteraction, noWeb, noProposals, fork"),
            ("append", "boolean? — append body to the existing body"),
            ("pattern", "boolean? — treat path as a pattern for a bulk update"),
            ("bodyFilter", "string? — narrow pattern matches by body content"),
        ],
        gated: true,
        long_running: true,
        handler: |c, p| Box::pin(runs::set(c, p)),
    },
    MethodSpec {
        name: "ask",
        description: "Older verb: starts (or continues) a run in ask mode; same as set on run://.",
        params: RUN_VERB_PARAMS,
        gated: true,
        long_running: true,
        handler: |c, p| Box::pin(runs::ask(c, p)),
    },
    MethodSpec {
        name: "act",
        description: "Older verb: starts (or continues) a run in act mode; same as set on run://.",
        params: RUN_VERB_PARAMS,
        gated: true,
        long_running: true,
        handler: |c, p| Box::pin(runs::act(c, p)),
    },
    MethodSpec {
        name: "getRuns",
        description: "Lists this project's runs, newest first: [{run, status, turn, summary, created}].",
        params: &[("limit", "number? — page size"), ("offset", "number? — rows to skip")],
        gated: true,
        long_running: false,
        handler: |c, p| Box::pin(runs::get_runs(c, p)),
    },
    MethodSpec {
        name: "getRun",
        description: "One run in detail: status, settings, usage, reasoning and history.",
        params: &[("run", "string — run alias")],
        gated: true,
        long_running: false,
        handler: |c, p| Box::pin(runs::get_run(c, p)),
    },
];

/// Entry methods (client writer tier) and project file constraints.
macro_rules! entry_method {
    ($name:literal, $desc:literal, $params:expr, $handler:path) => {
        MethodSpec {
            name: $name,
            description: $desc,
            params: $params,
            gated: true,
            long_running: false,
            handler: |c, p| Box::pin($handler(c, p)),
        }
    };
}

pub static ENTRY_METHODS: &[MethodSpec] = &[
    entry_method!("get", "Promotes matching entries to visible (or sets another visibility); read-only otherwise.",
        &[("run", "string — run alias"), ("path", "string — path or pattern"), ("bodyFilter", "string? — content filter"), ("visibility", "string? — visible (default) | summarized | archived")],
        entries::get),
    entry_method!("rm", "Removes matching entries from the run.",
        &[("run", "string — run alias"), ("path", "string — path or pattern"), ("bodyFilter", "string? — content filter")],
        entries::rm),
    entry_method!("cp", "Copies an entry to another path (a missing source is a no-op).",
        &[("run", "string — run alias"), ("from", "string — source path"), ("to", "string — destination path"), ("visibility", "string? — destination visibility")],
        entries::cp),
    entry_method!("mv", "Moves an entry to another path (a missing source is a no-op).",
        &[("run", "string — run alias"), ("from", "string — source path"), ("to", "string — destination path"), ("visibility", "string? — destination visibility")],
        entries::mv),
    entry_method!("update", "Writes an update record for the run; answers {ok, path}.",
        &[("run", "string — run alias"), ("body", "string — the update text"), ("status", "number? — 1xx continues (default 102), 200/204/422/500 conclude"), ("attributes", "object? — extra attributes")],
        entries::update),
    entry_method!("getEntries", "Lists a run's entries matching a pattern (default \"*\"; \"**\" for all), without promoting them.",
        &[("run", "string — run alias"), ("pattern", "string? — pattern"), ("scheme", "string? — scheme filter"), ("state", "string? — state filter"), ("visibility", "string? — visibility filter"), ("bodyFilter", "string? — content filter")],
        entries::get_entries),
    entry_method!("file/constraint", "Sets a project file rule: active (always in view), readonly, or ignore.",
        &[("pattern", "string — path or pattern, relative to the project root"), ("visibility", "string — active | readonly | ignore")],
        entries::file_constraint),
    entry_method!("file/drop", "Removes a project file rule.",
        &[("pattern", "string — the rule's pattern")],
        entries::file_drop),
    entry_method!("getConstraints", "Lists the project's file rules: [{pattern, visibility}].",
        &[],
        entries::get_constraints),
];

const RUN_VERB_PARAMS: &[(&str, &str)] = &[
    ("prompt", "string — what to do"),
    ("model", "string — model alias (required for a new run)"),
    ("run", "string? — alias of a run to continue"),
    ("temperature", "number? — 0 to 2"),
    ("persona", "string? — persona text"),
    ("contextLimit", "number? — at least 1024"),
    ("noRepo", "boolean? — do not scan project files"),
    ("noInteraction", "boolean? — no questions to the user"),
    ("noWeb", "boolean? — no web search"),
    ("noProposals", "boolean? — no proposals"),
];
