"""Task `train_catboost`: the baseline arm's cross-fitted propensity and outcome models.

For each fold: fit on the other folds (a stratified share held out for early stopping), predict the
held-out fold. The propensity model sees age summaries and one-hot codes; each outcome model sees the
exposure too, and the counterfactual prediction flips it. `scale_pos_weight = negatives / positives`
(as the reference system did) leaves the raw probabilities uncalibrated; `calibrate` corrects them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from catboost import CatBoostClassifier, Pool
from scipy import sparse
from sklearn.metrics import log_loss, roc_auc_score

from ehrlab.causal import files
from ehrlab.causal.features import baseline_features, with_exposure
from ehrlab.causal.folds import require_both_classes, stratified_holdout
from ehrlab.causal.kinds import TrainCatboostParams
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError

PROPENSITY = "exposure"


def fit_classifier(x: sparse.csr_matrix, labels: np.ndarray, settings: dict[str, Any], *, target: str,
                   holdout: float, balance: bool, rng: np.random.Generator) -> CatBoostClassifier:
    """Fits with early stopping on a stratified holdout of (x, labels)."""
    validation = stratified_holdout(labels, holdout, rng)
    fit, val = ~validation, validation
    require_both_classes(labels[fit], target, "the early-stopping fit split")
    options = dict(settings)
    if balance:
        positives = int(labels[fit].sum())
        options["scale_pos_weight"] = (fit.sum() - positives) / positives
    model = CatBoostClassifier(**options, loss_function="Logloss", use_best_model=True, verbose=False,
                               allow_writing_files=False)
    model.fit(Pool(x[fit], labels[fit]), eval_set=Pool(x[val], labels[val]))
    return model


def _tune(x: sparse.csr_matrix, labels: np.ndarray, base: dict[str, Any], p: TrainCatboostParams,
          rng_seed: int) -> dict[str, Any]:
    """A small Optuna search (depth, learning rate, L2) on one split; the best settings for every fold."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    split_rng = np.random.default_rng([rng_seed, 7])
    test = stratified_holdout(labels, 0.2, split_rng)

    def objective(trial: optuna.Trial) -> float:
        settings = {**base, "depth": trial.suggest_int("depth", 3, 8),
                    "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                    "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 10.0, log=True)}
        model = fit_classifier(x[~test], labels[~test], settings, target=PROPENSITY, holdout=p.validation_fraction,
                               balance=False, rng=np.random.default_rng([rng_seed, trial.number]))
        return float(log_loss(labels[test], model.predict_proba(x[test])[:, 1], labels=[0, 1]))

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=rng_seed))
    study.optimize(objective, n_trials=p.tuning.n_trials)
    return dict(study.best_params)


def train_catboost(ctx: TaskContext) -> None:
    p: TrainCatboostParams = ctx.params  # type: ignore[assignment]
    data_dir = ctx.inputs["data"]
    frame = files.read_outcomes(data_dir)
    outcome_names = files.outcome_names(data_dir)
    features = baseline_features(data_dir, max_codes=p.max_codes, min_code_count=p.min_code_count)
    if not np.array_equal(features.subject_id, frame["subject_id"].to_numpy()):
        raise SpecError("simulated outcomes: cohort.parquet and outcomes.parquet list different patients")
    folds, folds_meta = files.read_folds(ctx.inputs["folds"], features.subject_id)
    exposure = frame["exposure"].to_numpy(np.int64)
    x = features.matrix
    x_exposed, x_unexposed = with_exposure(x, np.ones_like(exposure)), with_exposure(x, np.zeros_like(exposure))
    x_observed = with_exposure(x, exposure)

    settings: dict[str, Any] = {"iterations": p.iterations, "learning_rate": p.learning_rate, "depth": p.depth,
                                "l2_leaf_reg": p.l2_leaf_reg, "early_stopping_rounds": p.early_stopping_rounds,
                                "random_seed": p.seed, "thread_count": p.threads or ctx.threads}
    tuned: dict[str, Any] = {}
    if p.tuning.n_trials:
        ctx.progress(0.0, message=f"tuning ({p.tuning.n_trials} trials)")
        tuned = _tune(x[folds != 0], exposure[folds != 0], settings, p, p.seed)
        settings.update(tuned)

    n_folds = int(folds.max()) + 1
    ps = np.empty(len(exposure))
    probas = {name: np.empty(len(exposure)) for name in outcome_names}
    cf_probas = {name: np.empty(len(exposure)) for name in outcome_names}
    metrics: dict[str, dict[str, float]] = {}
    models_dir = ctx.output_dir / "models"
    models_dir.mkdir()
    targets = [(PROPENSITY, exposure), *((name, frame[name].to_numpy(np.int64)) for name in outcome_names)]
    for fold in range(n_folds):
        train, test = folds != fold, folds == fold
        rng = np.random.default_rng([p.seed, fold])
        for target, labels in targets:
            require_both_classes(labels[train], target, f"the training folds of fold {fold}")
            inputs = x if target == PROPENSITY else x_observed
            model = fit_classifier(inputs[train], labels[train], settings, target=target,
                                   holdout=p.validation_fraction, balance=p.balance_classes, rng=rng)
            model.save_model(str(models_dir / f"fold{fold}_{target}.cbm"))
            if target == PROPENSITY:
                ps[test] = predicted = model.predict_proba(x[test])[:, 1]
            else:
                treated = model.predict_proba(x_exposed[test])[:, 1]
                untreated = model.predict_proba(x_unexposed[test])[:, 1]
                observed = exposure[test] == 1
                probas[target][test] = predicted = np.where(observed, treated, untreated)
                cf_probas[target][test] = np.where(observed, untreated, treated)
            auc = float(roc_auc_score(labels[test], predicted)) if 0 < labels[test].sum() < test.sum() else float("nan")
            scores = {"auc": auc, "logloss": float(log_loss(labels[test], predicted, labels=[0, 1])),
                      "iterations": float(model.get_best_iteration() + 1)}
            metrics[f"fold{fold}/{target}"] = scores
            ctx.report_metrics(fold, scores, target=target)
        ctx.progress(fold + 1, n_folds, message=f"fold {fold + 1}/{n_folds}")

    per_outcome = {name: (frame[name].to_numpy(np.int64), probas[name], cf_probas[name]) for name in outcome_names}
    predictions = files.long_predictions(features.subject_id, folds, exposure, ps, per_outcome)
    files.write_predictions(ctx.output_dir, predictions, {
        "arm": "baseline", "model": "catboost", "fold_seed": folds_meta["seed"], "n_folds": n_folds,
        "seed": p.seed, "settings": {k: v for k, v in settings.items() if k != "thread_count"}, "tuned": tuned,
        "features": len(features.names), "metrics": metrics})
