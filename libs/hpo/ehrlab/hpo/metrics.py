"""Prometheus metrics of the hpo-controller that are read from its studies at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ehrlab.hpo.studies import StudyManager

# the state names the API and `ehrlab hpo status` show
_STATE_LABELS = {"fail": "failed"}


class TrialCounts(Collector):
    """`ehrlab_hpo_trials{study, state}`: the trials of every study the hpo-controller serves, by state.

    A collector rather than a Gauge kept up to date: trials change state through Ask/Tell from any
    worker, the scheduler and the reaper, and the StudyManager already holds the counts in memory.
    """

    def __init__(self, manager: StudyManager) -> None:
        self.manager = manager

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for study, counts in sorted(self.manager.loaded_trial_counts().items()):
            for state, count in counts.items():
                family.add_metric([study, _STATE_LABELS.get(state, state)], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("ehrlab_hpo_trials", "Trials of the studies this hpo-controller serves, by state",
                                 labels=["study", "state"])
