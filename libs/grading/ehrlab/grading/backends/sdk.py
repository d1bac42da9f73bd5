"""What the OpenAI and Anthropic backends share: credentials at call time and one error mapping.

Both official SDKs raise the same family of errors (timeouts, connection errors, status errors with
a code). SDK retries are turned off (`max_retries=0`): the platform's retry policy is the only one,
so every failed attempt is counted and recorded.
"""

from __future__ import annotations

from types import ModuleType

from ehrlab.grading.backends import BackendError, MalformedOutputError, PermanentBackendError, TransientBackendError
from ehrlab.grading.model import ModelSpec, Vendor
from ehrlab.grading.secrets import MissingSecretError, resolve_secret, scrub

# Local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) usually want no key, but the SDK needs one.
NO_KEY = "none"


def api_key(spec: ModelSpec) -> str:
    """The secret the model refers to, read now; a missing one is a permanent failure."""
    if not spec.credentials_ref:
        if spec.vendor is Vendor.OPENAI_COMPATIBLE:
            return NO_KEY
        raise PermanentBackendError(f"a {spec.vendor.value} model needs credentials_ref (the name of a secret)",
                                    type="credentials")
    try:
        return resolve_secret(spec.credentials_ref)
    except MissingSecretError as exc:
        raise PermanentBackendError(str(exc), type="credentials") from None


def translate(exc: Exception, sdk: ModuleType, secret: str) -> BackendError:
    """An SDK error as a transient or permanent backend error, with the secret scrubbed from its text."""
    message = scrub(f"{type(exc).__name__}: {exc}", secret)[:1000]
    if isinstance(exc, sdk.APITimeoutError):
        return TransientBackendError(message, type="timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return TransientBackendError(message, type="connection")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        if status == 429:
            return TransientBackendError(message, type="rate_limit")
        if status in (408, 409) or status >= 500:
            return TransientBackendError(message, type="server_error")
        if status in (401, 403):
            return PermanentBackendError(message, type="auth")
        return PermanentBackendError(message, type="bad_request")
    return MalformedOutputError(message)
