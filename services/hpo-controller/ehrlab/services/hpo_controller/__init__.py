"""The hpo-controller service. Optuna studies whose trials run as controller tasks."""
