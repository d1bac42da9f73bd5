"""Samplers and pruners from their YAML form, with errors naming the bad key.

    sampler: {name: tpe, seed: 0, multivariate: true, group: true, constant_liar: true}
    pruner: {name: hyperband, min_resource: 1, max_resource: 10, patience: 2}

Samplers: tpe, random, qmc. Pruners: median, percentile, hyperband, successive_halving, wilcoxon,
none. Any pruner takes `patience` (and `min_delta`): it is then wrapped in Optuna's PatientPruner,
which prunes only after the wrapped pruner's verdict and no improvement for that many steps.

`BatchTPESampler` is TPE that can draw a batch of points from one fit of its Parzen estimators (see
`batch`): the service asks for many trials at once, and refitting the estimators per trial is what
makes plain TPE slow on long studies.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import optuna
from optuna.samplers._tpe.sampler import _split_trials
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace, _SearchSpaceGroup
from optuna.trial import FrozenTrial, TrialState
from pydantic import Field

from ehrlab.core.config import SpecModel, validate
from ehrlab.core.errors import SpecError


class TpeConfig(SpecModel):
    name: Literal["tpe"] = "tpe"
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0)
    n_ei_candidates: int = Field(24, ge=1)
    multivariate: bool = True
    group: bool = True
    constant_liar: bool = True


class RandomConfig(SpecModel):
    name: Literal["random"]
    seed: int | None = None


class QmcConfig(SpecModel):
    name: Literal["qmc"]
    seed: int | None = None
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True


class PrunerBase(SpecModel):
    patience: int | None = Field(None, ge=0, description="wrap in PatientPruner with this patience")
    min_delta: float = Field(0.0, ge=0)


class NoneConfig(PrunerBase):
    name: Literal["none"]


class MedianConfig(PrunerBase):
    name: Literal["median"]
    n_startup_trials: int = Field(5, ge=0)
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: int = Field(1, ge=1)
    n_min_trials: int = Field(1, ge=1)


class PercentileConfig(MedianConfig):
    name: Literal["percentile"]  # type: ignore[assignment]
    percentile: float = Field(25.0, ge=0, le=100)


class HyperbandConfig(PrunerBase):
    name: Literal["hyperband"]
    min_resource: int = Field(1, ge=1)
    max_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(3, ge=2)
    bootstrap_count: int = Field(0, ge=0)


class SuccessiveHalvingConfig(PrunerBase):
    name: Literal["successive_halving"]
    min_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(4, ge=2)
    min_early_stopping_rate: int = Field(0, ge=0)
    bootstrap_count: int = Field(0, ge=0)


class WilcoxonConfig(PrunerBase):
    name: Literal["wilcoxon"]
    p_threshold: float = Field(0.1, gt=0, lt=1)
    n_startup_steps: int = Field(2, ge=0)


SAMPLERS: dict[str, type[SpecModel]] = {"tpe": TpeConfig, "random": RandomConfig, "qmc": QmcConfig}
PRUNERS: dict[str, type[PrunerBase]] = {
    "none": NoneConfig, "median": MedianConfig, "percentile": PercentileConfig, "hyperband": HyperbandConfig,
    "successive_halving": SuccessiveHalvingConfig, "wilcoxon": WilcoxonConfig,
}


def _config(data: Mapping[str, Any] | None, known: Mapping[str, type[SpecModel]], what: str, default: str,
            path: str, source: str) -> SpecModel:
    body = dict(data or {})
    name = body.setdefault("name", default)
    if name not in known:
        raise SpecError(f"unknown {what} {name!r} (known: {', '.join(sorted(known))})", path=f"{path}.name",
                        source=source)
    try:
        return validate(known[name], body)
    except SpecError as exc:
        raise SpecError(exc.message, path=f"{path}.{exc.path}" if exc.path else path, source=source) from None


def sampler_config(data: Mapping[str, Any] | None, *, path: str = "sampler", source: str = "") -> SpecModel:
    return _config(data, SAMPLERS, "sampler", "tpe", path, source)


def pruner_config(data: Mapping[str, Any] | None, *, path: str = "pruner", source: str = "") -> PrunerBase:
    return _config(data, PRUNERS, "pruner", "median", path, source)  # type: ignore[return-value]


def build_sampler(config: SpecModel) -> optuna.samplers.BaseSampler:
    if isinstance(config, TpeConfig):
        with warnings.catch_warnings():  # `group` is marked experimental; it is what conditional spaces need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return BatchTPESampler(seed=config.seed, n_startup_trials=config.n_startup_trials,
                                   n_ei_candidates=config.n_ei_candidates, multivariate=config.multivariate,
                                   group=config.group and config.multivariate, constant_liar=config.constant_liar)
    if isinstance(config, RandomConfig):
        return optuna.samplers.RandomSampler(seed=config.seed)
    if isinstance(config, QmcConfig):
        return optuna.samplers.QMCSampler(seed=config.seed, qmc_type=config.qmc_type, scramble=config.scramble,
                                          warn_independent_sampling=False)
    raise TypeError(f"not a sampler config: {config!r}")


def build_pruner(config: PrunerBase) -> optuna.pruners.BasePruner:
    with warnings.catch_warnings():  # Wilcoxon and Patient are marked experimental; they are what the spec asks for
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _build_pruner(config)


def _build_pruner(config: PrunerBase) -> optuna.pruners.BasePruner:
    pruner: optuna.pruners.BasePruner
    if isinstance(config, NoneConfig):
        pruner = optuna.pruners.NopPruner()
    elif isinstance(config, PercentileConfig):
        pruner = optuna.pruners.PercentilePruner(
            config.percentile, n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps,
            interval_steps=config.interval_steps, n_min_trials=config.n_min_trials)
    elif isinstance(config, MedianConfig):
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps,
            interval_steps=config.interval_steps, n_min_trials=config.n_min_trials)
    elif isinstance(config, HyperbandConfig):
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=config.min_resource, max_resource=config.max_resource,
            reduction_factor=config.reduction_factor, bootstrap_count=config.bootstrap_count)
    elif isinstance(config, SuccessiveHalvingConfig):
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.min_resource, reduction_factor=config.reduction_factor,
            min_early_stopping_rate=config.min_early_stopping_rate, bootstrap_count=config.bootstrap_count)
    elif isinstance(config, WilcoxonConfig):
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=config.p_threshold,
                                               n_startup_steps=config.n_startup_steps)
    else:
        raise TypeError(f"not a pruner config: {config!r}")
    if config.patience is not None:
        pruner = optuna.pruners.PatientPruner(pruner, patience=config.patience, min_delta=config.min_delta)
    return pruner


class BatchTPESampler(optuna.samplers.TPESampler):
    """TPE that, inside `batch(n)`, draws up to n points per fit of its estimators.

    Each point is the best of its own `n_ei_candidates` candidates under the same estimators, so a
    batch is n independent TPE proposals; running trials count as "above" (constant liar) from one
    batch to the next. Outside a batch it is Optuna's TPESampler unchanged.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._batch_size = 1
        self._proposals: dict[str, list[dict[str, Any]]] = {}
        if self._group:
            self._group_decomposed_search_space = _IncrementalGroups(include_pruned=True)

    @contextmanager
    def batch(self, size: int) -> Iterator[None]:
        self._batch_size, self._proposals = max(1, size), {}
        try:
            yield
        finally:
            self._batch_size, self._proposals = 1, {}

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, optuna.distributions.BaseDistribution]) -> dict[str, Any]:
        if self._batch_size == 1:
            return super()._sample(study, trial, search_space)
        key = repr(sorted(search_space.items()))
        queue = self._proposals.get(key)
        if not queue:
            queue = self._proposals[key] = self._sample_many(study, trial, search_space, self._batch_size)
        return queue.pop()

    def _sample_many(self, study: optuna.Study, trial: FrozenTrial,
                     search_space: dict[str, optuna.distributions.BaseDistribution], n: int) -> list[dict[str, Any]]:
        states = [TrialState.COMPLETE, TrialState.PRUNED]
        if self._constant_liar:
            states.append(TrialState.RUNNING)
        trials = [t for t in study._get_trials(deepcopy=False, states=states, use_cache=not self._constant_liar)
                  if t.number != trial.number]
        if self._gamma is None:
            self._gamma = optuna.samplers._tpe.sampler.default_gamma
        finished = sum(t.state != TrialState.RUNNING for t in trials)
        below, above = _split_trials(study, trials, self._gamma(finished))
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates * n)
        scores = self._compute_acquisition_func(samples, mpe_below, mpe_above).reshape(n, self._n_ei_candidates)
        best = np.argmax(scores, axis=1) + np.arange(n) * self._n_ei_candidates
        return [{name: dist.to_external_repr(samples[name][i].item()) for name, dist in search_space.items()}
                for i in best]


class _IncrementalGroups(_GroupDecomposedSearchSpace):
    """Optuna's group decomposition, folding in each finished trial once instead of all trials per ask.

    The fold is the same (a trial's distributions are added once); only the repeated re-adding of
    trials already folded in, which made every ask linear in the study's length, is skipped.
    """

    def __init__(self, include_pruned: bool) -> None:
        super().__init__(include_pruned)
        self._folded: set[int] = set()

    def calculate(self, study: optuna.Study, use_cache: bool = False) -> _SearchSpaceGroup:
        states = (TrialState.COMPLETE, TrialState.PRUNED) if self._include_pruned else (TrialState.COMPLETE,)
        for trial in study._get_trials(deepcopy=False, states=states, use_cache=use_cache):
            if trial.number not in self._folded:
                self._folded.add(trial.number)
                self._search_space.add_distributions(trial.distributions)
        return copy.deepcopy(self._search_space)
