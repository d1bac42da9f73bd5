"""ehrlab causal: known-truth causal simulation studies on EHR cohorts.

Stage 1 (once per outer run): `simulate_outcomes` turns a sampled MEDS cohort into history features,
a simulated exposure and outcomes with known counterfactuals. Stage 2 (K times per outer run):
`prepare_folds` reshuffles cross-fitting folds with a recorded seed, `train_catboost` or
`finetune_bert` fit propensity and outcome models, `calibrate` recalibrates them and
`estimate_effects` scores every estimator against the true effect. `aggregate_estimates` summarises
all runs (coverage, bias, RMSE). The planner `causal_batch` builds that graph from a spec.
"""
