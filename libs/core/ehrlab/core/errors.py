"""Errors the platform raises on purpose; each maps to one gRPC status code and one CLI message."""

from __future__ import annotations


class EhrlabError(Exception):
    """Base of every expected error: shown to users as one line, never as a traceback."""


class SpecError(EhrlabError, ValueError):
    """Bad input: names where (file) and what (key path) is wrong.

    `source` is the file (or layer label) the offending value came from, `path` the dotted key path.
    """

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        self.message = message
        self.path = path
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        return f"{where}: {self.message}" if where else self.message


class NotFoundError(EhrlabError, LookupError):
    pass


class ConflictError(EhrlabError):
    """The request contradicts stored state (e.g. a name reused with a different definition)."""


class FailedPreconditionError(EhrlabError):
    """The request is valid but not now (e.g. retrying a task that has not failed)."""


class UnavailableError(EhrlabError):
    """A dependency (database, object store, another service) could not be reached in time."""


class AccessDeniedError(EhrlabError, PermissionError):
    """A service refused the request: wrong or missing credentials, or no permission."""
