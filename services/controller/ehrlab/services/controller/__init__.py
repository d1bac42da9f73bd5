"""The controller service. Plans experiments, caches, launches and reconciles tasks."""
