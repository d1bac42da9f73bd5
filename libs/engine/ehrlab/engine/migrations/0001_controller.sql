-- The controller's state: experiments, their tasks, and every attempt to run a task.
-- States are the integer values of the ehrlab.v1 TaskState / ExperimentState enums.

CREATE TABLE experiments (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    request_id       text NOT NULL UNIQUE,
    spec_hash        text NOT NULL,
    planner          text NOT NULL,
    spec             jsonb NOT NULL,
    options          jsonb NOT NULL,
    labels           jsonb NOT NULL DEFAULT '{}',
    state            smallint NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false,
    error            text NOT NULL DEFAULT '',
    counts           jsonb NOT NULL DEFAULT '{}',   -- task counts by state, kept current for finished experiments
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX experiments_active ON experiments (state) WHERE state IN (1, 2);
CREATE INDEX experiments_name ON experiments (name);
CREATE INDEX experiments_created ON experiments (created_at DESC);

CREATE TABLE tasks (
    id            text PRIMARY KEY,
    experiment_id text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    seq           integer NOT NULL,                  -- topological order within the experiment
    name          text NOT NULL,
    kind          text NOT NULL,
    key           text NOT NULL,
    dataset       text NOT NULL,
    service       text NOT NULL,
    code_version  text NOT NULL,
    params        jsonb NOT NULL,
    inputs        jsonb NOT NULL,                    -- input name -> artifact or source reference
    depends_on    text[] NOT NULL,                   -- task names
    resources     jsonb NOT NULL,
    timeout_s     double precision NOT NULL,
    max_attempts  integer NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}',
    forced        boolean NOT NULL DEFAULT false,
    skip          boolean NOT NULL DEFAULT false,    -- skipped on request
    state         smallint NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,        -- attempts used (disruptions do not count)
    launches      integer NOT NULL DEFAULT 0,        -- attempts started, disruptions included
    not_before    timestamptz,                       -- retry backoff
    error         text NOT NULL DEFAULT '',
    output_digest text,
    output_size   bigint,
    results_done  boolean NOT NULL DEFAULT false,    -- result rows forwarded to the result-store
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    UNIQUE (experiment_id, name)
);
CREATE INDEX tasks_experiment ON tasks (experiment_id, seq);
CREATE INDEX tasks_active ON tasks (experiment_id) WHERE state IN (1, 2, 3);
CREATE INDEX tasks_results_pending ON tasks (experiment_id) WHERE NOT results_done AND state IN (4, 5);

-- An attempt row is written before its process or Job exists; its handle is informational only
-- (launchers find their attempts again by the attempt id).
CREATE TABLE attempts (
    id          text PRIMARY KEY,                    -- <task id>.<launch number>
    task_id     text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    number      integer NOT NULL,
    state       text NOT NULL,                       -- running (open) | succeeded | failed | config | pruned | disrupted
    launcher    text NOT NULL,
    handle      jsonb NOT NULL DEFAULT '{}',
    message     text NOT NULL DEFAULT '',
    exit_code   integer,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX attempts_open ON attempts (task_id) WHERE state = 'running';
