"""Credentials by reference: a model names a secret; the secret is read only when a call is made.

A secret named `openai` is, in this order:
- the environment variable `EHRLAB_SECRET_OPENAI` (name upper-cased, other characters as `_`), or
- the file `openai` in `$EHRLAB_SECRETS_DIR` (default `/var/run/secrets/ehrlab`, where a Kubernetes
  Secret is mounted), surrounding whitespace stripped.

Only names under that prefix and folder can be read, so a model row can never make a task send some
other variable of its environment (a database URL, a token) to the model's base URL. Secret values
are never logged, stored, or put in task parameters; `scrub` removes one from any text (error
messages from SDKs echo keys back) before that text goes anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ehrlab.core.errors import FailedPreconditionError

DEFAULT_SECRETS_DIR = "/var/run/secrets/ehrlab"


class MissingSecretError(FailedPreconditionError):
    """The secret a model refers to is not available where this process runs."""


def env_var_for(name: str) -> str:
    return "EHRLAB_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def resolve_secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    var = env_var_for(name)
    if environ.get(var):
        return environ[var]
    folder = Path(environ.get("EHRLAB_SECRETS_DIR") or DEFAULT_SECRETS_DIR)
    path = folder / name
    if path.parent == folder and path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    raise MissingSecretError(f"secret {name!r} is not available: set {var} or mount a file at {path}")


def scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
