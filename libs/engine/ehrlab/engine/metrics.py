"""Prometheus metrics of the engine (exported by the controller's /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

TASKS = Gauge("ehrlab_tasks", "Tasks of active experiments by state and kind", ["state", "kind"])
TASK_TRANSITIONS = Counter("ehrlab_task_transitions_total", "Task state changes", ["state", "kind"])
TASK_ATTEMPTS = Counter("ehrlab_task_attempts_total", "Finished task attempts by outcome", ["kind", "outcome"])
TASK_DURATION = Histogram(
    "ehrlab_task_duration_seconds", "Wall time of a task attempt, launch to end", ["kind", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600))
LAUNCH_LATENCY = Histogram(
    "ehrlab_task_launch_latency_seconds", "Time from a task becoming ready to its attempt being launched",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600))
CACHE_HITS = Counter("ehrlab_cache_hits_total", "Tasks whose outputs already existed for their key", ["kind"])
CACHE_MISSES = Counter("ehrlab_cache_misses_total", "Tasks that had to run", ["kind"])
EXPERIMENTS = Gauge("ehrlab_experiments", "Experiments known to the engine by state", ["state"])
EXPERIMENTS_FINISHED = Counter("ehrlab_experiments_finished_total", "Experiments that ended", ["state"])
PROGRESS = Gauge("ehrlab_experiment_progress_ratio", "Finished tasks / all tasks of an active experiment",
                 ["experiment"])
RECONCILE_SECONDS = Histogram("ehrlab_reconcile_seconds", "Duration of one reconcile pass",
                              buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))
LAUNCHER_RUNNING = Gauge("ehrlab_launcher_running_attempts", "Attempts running in the launcher", ["launcher"])
