"""ehrlab.hpo: hyperparameter optimisation over Optuna, with studies stored in the platform's PostgreSQL."""
