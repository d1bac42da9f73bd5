"""ehrlab core: the task model, configuration, hashing, artifacts, database and gRPC plumbing.

Everything here is importable without a running service; the services and the engine build on it.
"""
