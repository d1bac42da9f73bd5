"""The result-store service. Results, metrics, status history and the artifact index."""
