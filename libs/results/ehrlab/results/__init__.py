"""The result-store's data: task status history, result rows, metric points and the artifact index."""
