-- rummy: the whole relational schema (entry store, run skeleton, audit log).
-- Facts follow spec/01-store-and-budget.md §1, §5 and §6. Connection pragmas
-- (WAL, foreign keys, mmap, busy timeout) are set per connection in
-- src/store/db.rs, never here.

-- ---------------------------------------------------------------------------
-- Scheme registry: one row per path scheme, filled at boot by the tool registry.
-- ---------------------------------------------------------------------------
CREATE TABLE schemes (
    -- Deviation: NOT NULL added because SQLite lets a non-INTEGER primary key hold NULL.
    name             TEXT NOT NULL PRIMARY KEY,
    model_visible    BOOLEAN NOT NULL DEFAULT 1,
    category         TEXT,
    default_scope    TEXT NOT NULL DEFAULT 'run'
                     CHECK (default_scope IN ('run', 'project', 'global')),
    writable_by      JSON NOT NULL DEFAULT '["model","plugin"]'
                     CHECK (json_valid(writable_by)),
    capability_class TEXT
);

-- ---------------------------------------------------------------------------
-- Projects and models.
-- ---------------------------------------------------------------------------
CREATE TABLE projects (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    project_root TEXT,
    config_path  TEXT,
    created_at   DATETIME DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE models (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    alias          TEXT NOT NULL UNIQUE,
    actual         TEXT NOT NULL,
    context_length INTEGER,
    created_at     DATETIME DEFAULT CURRENT_TIMESTAMP
);

-- ---------------------------------------------------------------------------
-- Runs. status is an HTTP-like code: 100 queued, 102 running, 200 completed,
-- 202 proposal pending, 204/422 closed by the model, 499 aborted, 500 failed.
-- ---------------------------------------------------------------------------
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    parent_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    model         TEXT,
    status        INTEGER NOT NULL DEFAULT 100 CHECK (status BETWEEN 100 AND 599),
    alias         TEXT NOT NULL UNIQUE,
    temperature   REAL CHECK (temperature IS NULL OR temperature BETWEEN 0 AND 2),
    persona       TEXT,
    context_limit INTEGER CHECK (context_limit IS NULL OR context_limit >= 1024),
    next_turn     INTEGER NOT NULL DEFAULT 1 CHECK (next_turn >= 1),
    next_loop     INTEGER NOT NULL DEFAULT 1 CHECK (next_loop >= 1),
    created_at    DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_runs_alias ON runs (alias);
CREATE INDEX idx_runs_project ON runs (project_id);

-- ---------------------------------------------------------------------------
-- Loops: the per-run FIFO prompt queue (one row per ask/act).
-- ---------------------------------------------------------------------------
CREATE TABLE loops (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    sequence   INTEGER NOT NULL CHECK (sequence >= 1),
    mode       TEXT NOT NULL CHECK (mode IN ('ask', 'act')),
    model      TEXT,
    prompt     TEXT NOT NULL DEFAULT '',
    status     INTEGER NOT NULL DEFAULT 100 CHECK (status BETWEEN 100 AND 599),
    config     JSON,
    result     JSON,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (run_id, sequence)
);
CREATE INDEX idx_loops_run ON loops (run_id);
-- At most one loop of a run may be running (102) at a time.
CREATE UNIQUE INDEX idx_loops_one_active ON loops (run_id) WHERE status = 102;

-- ---------------------------------------------------------------------------
-- Turns: usage telemetry per LLM call; sequence is the run-wide turn number.
-- ---------------------------------------------------------------------------
CREATE TABLE turns (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    loop_id           INTEGER NOT NULL REFERENCES loops (id) ON DELETE CASCADE,
    sequence          INTEGER NOT NULL CHECK (sequence >= 1),
    context_tokens    INTEGER NOT NULL DEFAULT 0 CHECK (context_tokens >= 0),
    reasoning_content TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    cached_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    total_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    cost              REAL NOT NULL DEFAULT 0 CHECK (cost >= 0),
    created_at        DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_turns_run_seq ON turns (run_id, sequence);

-- ---------------------------------------------------------------------------
-- File constraints: per-project rules (only 'readonly' is acted upon).
-- ---------------------------------------------------------------------------
CREATE TABLE file_constraints (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    pattern    TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('active', 'readonly', 'ignore')),
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (project_id, pattern)
);
CREATE INDEX idx_file_constraints_project ON file_constraints (project_id);

-- ---------------------------------------------------------------------------
-- Entries: content addressed by (scope, path); scope is 'global',
-- 'project:N' or 'run:N'. Per-run state lives in run_views.
-- ---------------------------------------------------------------------------
CREATE TABLE entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scope      TEXT NOT NULL,
    path       TEXT NOT NULL CHECK (length(path) <= 2048),
    -- Deviation: plain SQL instead of a schemeOf() UDF, so any SQLite client can open and write the file.
    scheme     TEXT GENERATED ALWAYS AS (
                   CASE WHEN instr(path, '://') > 1
                        THEN substr(path, 1, instr(path, '://') - 1)
                   END
               ) STORED,
    body       TEXT NOT NULL DEFAULT '',
    attributes JSON NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    hash       TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX idx_entries_scope_path ON entries (scope, path);
CREATE INDEX idx_entries_scope_scheme ON entries (scope, scheme);

-- ---------------------------------------------------------------------------
-- Run views: a run's projection of an entry (lifecycle state, visibility,
-- turn). No row means the entry is not part of the run.
-- ---------------------------------------------------------------------------
CREATE TABLE run_views (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    entry_id    INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    loop_id     INTEGER REFERENCES loops (id) ON DELETE CASCADE,
    turn        INTEGER NOT NULL DEFAULT 0 CHECK (turn >= 0),
    state       TEXT NOT NULL DEFAULT 'resolved'
                CHECK (state IN ('proposed', 'streaming', 'resolved', 'failed', 'cancelled')),
    outcome     TEXT,
    visibility  TEXT NOT NULL DEFAULT 'visible'
                CHECK (visibility IN ('visible', 'summarized', 'archived')),
    write_count INTEGER NOT NULL DEFAULT 1 CHECK (write_count >= 1),
    refs        INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),
    created_at  DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at  DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX idx_run_views_run_entry ON run_views (run_id, entry_id);
CREATE INDEX idx_run_views_run_turn ON run_views (run_id, turn);
CREATE INDEX idx_run_views_run_visibility ON run_views (run_id, visibility);

-- ---------------------------------------------------------------------------
-- Turn context: the materialized packet rows of one turn (archived rows are
-- never materialized, hence the narrower visibility CHECK).
-- ---------------------------------------------------------------------------
CREATE TABLE turn_context (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    loop_id     INTEGER REFERENCES loops (id) ON DELETE CASCADE,
    turn        INTEGER NOT NULL CHECK (turn >= 1),
    ordinal     INTEGER NOT NULL CHECK (ordinal >= 0),
    path        TEXT NOT NULL,
    -- Deviation: same pure-SQL scheme expression as entries.scheme (no custom function needed).
    scheme      TEXT GENERATED ALWAYS AS (
                    CASE WHEN instr(path, '://') > 1
                         THEN substr(path, 1, instr(path, '://') - 1)
                    END
                ) STORED,
    state       TEXT NOT NULL DEFAULT 'resolved'
                CHECK (state IN ('proposed', 'streaming', 'resolved', 'failed', 'cancelled')),
    outcome     TEXT,
    visibility  TEXT NOT NULL CHECK (visibility IN ('visible', 'summarized')),
    body        TEXT NOT NULL DEFAULT '',
    attributes  JSON NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    category    TEXT NOT NULL DEFAULT 'logging',
    source_turn INTEGER DEFAULT 0
);
CREATE INDEX idx_turn_context_run_turn ON turn_context (run_id, turn);

-- ---------------------------------------------------------------------------
-- RPC audit log: every JSON-RPC call, recorded unconditionally.
-- ---------------------------------------------------------------------------
CREATE TABLE rpc_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    rpc_id     INTEGER,
    params     JSON,
    result     JSON,
    error      TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_rpc_log_project ON rpc_log (project_id);
CREATE INDEX idx_rpc_log_method ON rpc_log (method);

-- ---------------------------------------------------------------------------
-- Run status state machine. Inserts are not checked; an UPDATE that changes
-- status must follow one of the edges below.
-- ---------------------------------------------------------------------------
CREATE TRIGGER trg_run_state_transition
BEFORE UPDATE OF status ON runs
FOR EACH ROW
WHEN NEW.status <> OLD.status
 AND NOT (
        -- Deviation: 100 -> 500 added so a run failing validation before it starts can be closed as failed.
        (OLD.status = 100 AND NEW.status IN (102, 499, 500))
        -- Deviation: 102 -> 204/422 added; upstream rejects them although runs close with those codes (spec 01 §6).
     OR (OLD.status = 102 AND NEW.status IN (200, 202, 204, 422, 500, 499))
     OR (OLD.status = 202 AND NEW.status IN (102, 200, 499))
     OR (OLD.status = 200 AND NEW.status IN (102, 499))
        -- Deviation: 204/422 runs may be continued or aborted exactly like 200 runs.
     OR (OLD.status IN (204, 422) AND NEW.status IN (102, 499))
     OR (OLD.status = 500 AND NEW.status IN (102, 499))
     OR (OLD.status = 499 AND NEW.status = 102)
 )
BEGIN
    SELECT RAISE(ABORT, 'invalid run state transition');
END;

-- ---------------------------------------------------------------------------
-- Read-only views. Writes always go to entries + run_views.
-- ---------------------------------------------------------------------------

-- One row per run view joined to its entry (id is the run_views id).
CREATE VIEW known_entries AS
SELECT
    v.id          AS id,
    v.run_id      AS run_id,
    v.loop_id     AS loop_id,
    v.turn        AS turn,
    e.path        AS path,
    e.body        AS body,
    e.scheme      AS scheme,
    v.state       AS state,
    v.outcome     AS outcome,
    v.visibility  AS visibility,
    e.hash        AS hash,
    e.attributes  AS attributes,
    v.refs        AS refs,
    v.write_count AS write_count,
    e.created_at  AS created_at,
    v.updated_at  AS updated_at,
    e.id          AS entry_id,
    e.scope       AS scope
FROM run_views AS v
INNER JOIN entries AS e ON e.id = v.entry_id;

-- Views still waiting on a client decision or a stream (defined for parity; unused).
CREATE VIEW v_unresolved AS
SELECT v.run_id AS run_id, e.path AS path, e.body AS body, e.attributes AS attributes, v.turn AS turn
FROM run_views AS v
INNER JOIN entries AS e ON e.id = v.entry_id
WHERE v.state IN ('proposed', 'streaming');

-- What the model may see, in packet order. Bare paths use the 'file' scheme
-- row; schemes without a row, model-invisible schemes and archived views drop
-- out; state is not filtered. ordinal ranks rows within each run.
CREATE VIEW v_model_context AS
SELECT
    c.run_id,
    c.path,
    c.scheme,
    c.visibility,
    c.state,
    c.outcome,
    c.body,
    c.attributes,
    c.category,
    c.turn,
    row_number() OVER (
        PARTITION BY c.run_id
        ORDER BY c.category_rank, c.skill_rank, c.visibility_rank, c.turn, c.updated_at, c.view_id
    ) AS ordinal
FROM (
    SELECT
        v.id         AS view_id,
        v.run_id     AS run_id,
        e.path       AS path,
        e.scheme     AS scheme,
        v.visibility AS visibility,
        v.state      AS state,
        v.outcome    AS outcome,
        e.body       AS body,
        e.attributes AS attributes,
        coalesce(s.category, 'logging') AS category,
        v.turn       AS turn,
        v.updated_at AS updated_at,
        CASE coalesce(s.category, 'logging')
            WHEN 'tool'    THEN 1
            WHEN 'data'    THEN 2
            WHEN 'logging' THEN 3
            WHEN 'unknown' THEN 4
            ELSE 5
        END AS category_rank,
        CASE WHEN e.scheme = 'skill' THEN 0 ELSE 1 END AS skill_rank,
        CASE WHEN v.visibility = 'summarized' THEN 0 ELSE 1 END AS visibility_rank
    FROM run_views AS v
    INNER JOIN entries AS e ON e.id = v.entry_id
    INNER JOIN schemes AS s ON s.name = coalesce(e.scheme, 'file')
    WHERE v.visibility <> 'archived'
      AND s.model_visible <> 0
) AS c;

-- The run's readable history: logging, prompt and unknown entries of
-- registered schemes, minus pending proposals and run:// bookkeeping.
CREATE VIEW v_run_log AS
SELECT
    k.run_id     AS run_id,
    k.path       AS path,
    k.body       AS body,
    k.state      AS state,
    k.outcome    AS outcome,
    k.turn       AS turn,
    k.scheme     AS tool,
    k.attributes AS attributes
FROM known_entries AS k
INNER JOIN schemes AS s ON s.name = k.scheme
WHERE s.category IN ('logging', 'prompt', 'unknown')
  AND k.state <> 'proposed'
  AND k.scheme <> 'run'
ORDER BY k.id;
