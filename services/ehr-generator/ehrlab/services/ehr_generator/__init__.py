"""The ehr-generator service. Synthetic EHR generation, evaluation and model description."""
