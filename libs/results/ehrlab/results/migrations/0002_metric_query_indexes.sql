-- Metric queries page through rows in id order within an experiment, or a task's or an experiment's
-- points of one metric: each of these filters gets an index that holds its rows in that order.
CREATE INDEX metrics_experiment_id ON metrics (experiment_id, id);
DROP INDEX metrics_task;
CREATE INDEX metrics_task ON metrics (task_id, name, id);
