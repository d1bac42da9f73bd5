"""The trainer service. The model catalog and training task kinds."""
