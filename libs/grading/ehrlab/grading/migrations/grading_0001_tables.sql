-- Note-generation and rubric-grading experiments, in the result-store's schema (`results`).
-- Table names carry the `grading_` prefix so they never collide with the result-store's own tables.

CREATE TABLE grading_case (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    transcript  text NOT NULL,
    facts       jsonb NOT NULL DEFAULT '{}',
    source      text NOT NULL DEFAULT '',
    created     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE grading_rubric (
    id            bigserial PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES grading_case (id) ON DELETE CASCADE,
    author        text NOT NULL,
    validation    text NOT NULL DEFAULT 'not_evaluated'
                  CHECK (validation IN ('not_evaluated', 'refused', 'accepted')),
    validated_at  timestamptz,
    criteria      jsonb NOT NULL,               -- [{criterion, weight, sense}]
    digest        text NOT NULL,                -- of author, validation, time and criteria: loads are idempotent
    created       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, digest)
);
CREATE INDEX grading_rubric_accepted ON grading_rubric (case_id, author, validated_at DESC)
    WHERE validation = 'accepted';

CREATE TABLE grading_model (
    id               bigserial PRIMARY KEY,
    vendor           text NOT NULL CHECK (vendor IN ('openai', 'anthropic', 'openai-compatible', 'offline')),
    model            text NOT NULL DEFAULT '',
    base_url         text NOT NULL DEFAULT '',
    credentials_ref  text NOT NULL DEFAULT '',  -- the NAME of a secret; secrets themselves are never stored
    reasoning_model  text NOT NULL DEFAULT '',
    created          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vendor, model, base_url, credentials_ref, reasoning_model)
);

CREATE TABLE grading_experiment (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    code_version        text NOT NULL DEFAULT '',
    note_replications   integer NOT NULL CHECK (note_replications >= 1),
    grade_replications  integer NOT NULL CHECK (grade_replications >= 1),
    description         text NOT NULL DEFAULT '',
    created             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE grading_experiment_case (
    experiment_id  bigint NOT NULL REFERENCES grading_experiment (id) ON DELETE CASCADE,
    case_id        bigint NOT NULL REFERENCES grading_case (id),
    skip_reason    text NOT NULL DEFAULT '',    -- set when a run found no eligible rubric
    skipped_at     timestamptz,
    PRIMARY KEY (experiment_id, case_id)
);

CREATE TABLE grading_experiment_model (
    id                   bigserial PRIMARY KEY,
    experiment_id        bigint NOT NULL REFERENCES grading_experiment (id) ON DELETE CASCADE,
    generator_model_id   bigint NOT NULL REFERENCES grading_model (id),
    grader_model_id      bigint NOT NULL REFERENCES grading_model (id),
    grader_is_reasoning  boolean NOT NULL DEFAULT false,
    UNIQUE (experiment_id, generator_model_id, grader_model_id, grader_is_reasoning),
    UNIQUE (id, experiment_id)
);

-- One row per note: case × model pair × replication. A success is final; failures accumulate errors.
CREATE TABLE grading_result (
    id             bigserial PRIMARY KEY,
    experiment_id  bigint NOT NULL REFERENCES grading_experiment (id) ON DELETE CASCADE,
    case_id        bigint NOT NULL,
    pair_id        bigint NOT NULL,
    replication    integer NOT NULL CHECK (replication >= 0),
    note           jsonb,
    failed         boolean NOT NULL,
    errors         jsonb NOT NULL DEFAULT '[]',
    attempts       integer NOT NULL DEFAULT 1,
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (experiment_id, case_id, pair_id, replication),
    UNIQUE (id, experiment_id),
    -- a note belongs to a case of its experiment and to one of its experiment's model pairs
    FOREIGN KEY (experiment_id, case_id) REFERENCES grading_experiment_case (experiment_id, case_id) ON DELETE CASCADE,
    FOREIGN KEY (pair_id, experiment_id) REFERENCES grading_experiment_model (id, experiment_id) ON DELETE CASCADE
);
CREATE INDEX grading_result_recent ON grading_result (experiment_id, updated DESC);

-- One row per grade: note × rubric × replication.
CREATE TABLE grading_score (
    id             bigserial PRIMARY KEY,
    result_id      bigint NOT NULL,
    rubric_id      bigint NOT NULL REFERENCES grading_rubric (id),
    replication    integer NOT NULL CHECK (replication >= 0),
    experiment_id  bigint NOT NULL,
    criteria       jsonb NOT NULL DEFAULT '[]', -- [{id, rationale, satisfaction, score}]
    overall        double precision,
    failed         boolean NOT NULL,
    errors         jsonb NOT NULL DEFAULT '[]',
    attempts       integer NOT NULL DEFAULT 1,
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (result_id, rubric_id, replication),
    FOREIGN KEY (result_id, experiment_id) REFERENCES grading_result (id, experiment_id) ON DELETE CASCADE
);
CREATE INDEX grading_score_experiment ON grading_score (experiment_id, updated DESC);
