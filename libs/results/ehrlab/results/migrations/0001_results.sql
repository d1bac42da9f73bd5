-- The result-store's tables (schema `results`).

-- The latest status of every task, as the controller (transitions) and runners (progress) report it.
CREATE TABLE task_status (
    task_id       text PRIMARY KEY,
    experiment_id text NOT NULL,
    task_name     text NOT NULL,
    kind          text NOT NULL,
    state         smallint NOT NULL,
    attempt       integer NOT NULL DEFAULT 0,
    message       text NOT NULL DEFAULT '',
    progress      double precision NOT NULL DEFAULT 0,
    cache_hit     boolean NOT NULL DEFAULT false,
    sequence      bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_status_experiment ON task_status (experiment_id, updated_at DESC);

-- Result rows of finished tasks (estimates, scores, evaluation figures): one row per emitted record.
CREATE TABLE results (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment_id text NOT NULL,
    task_id       text NOT NULL,
    task_name     text NOT NULL,
    kind          text NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}',
    row_index     integer NOT NULL,
    "values"      jsonb NOT NULL,
    cache_hit     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, row_index)
);
CREATE INDEX results_experiment ON results (experiment_id, id);
CREATE INDEX results_kind ON results (kind, id);
CREATE INDEX results_labels ON results USING gin (labels jsonb_path_ops);

-- Metric points reported while tasks run (loss curves, throughput): an append-only log.
CREATE TABLE metrics (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment_id text NOT NULL,
    task_id       text NOT NULL,
    kind          text NOT NULL,
    attempt       integer NOT NULL,
    name          text NOT NULL,
    step          bigint NOT NULL,
    value         double precision NOT NULL,
    time          timestamptz NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX metrics_experiment ON metrics (experiment_id, name, id);
CREATE INDEX metrics_task ON metrics (task_id, name, step);

-- Every artifact the platform produced, by its content key.
CREATE TABLE artifacts (
    dataset    text NOT NULL,
    kind       text NOT NULL,
    key        text NOT NULL,
    uri        text NOT NULL,
    digest     text NOT NULL,
    size_bytes bigint NOT NULL,
    task_id    text NOT NULL,
    files      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, kind, key)
);
CREATE INDEX artifacts_key ON artifacts (key);
