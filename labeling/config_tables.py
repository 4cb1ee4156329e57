"""The tables of ``labelloop.toml``, ``[llm]`` and ``[[webhooks]]``: their settings and checks.

:mod:`labeling.config` reads the top-level keys and hands each table here; every error names
the table, the entry and the key, and says what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from labeling.errors import ConfigError


def kind(value: Any) -> str:
    """A found value as an error shows it: its type and its repr."""
    return f"{type(value).__name__} {value!r}"


@dataclass(frozen=True)
class LLMSettings:
    """``[llm]``: an OpenAI-compatible chat-completions server for the LLM labelling function.

    The key is never written here: ``api_key_env`` names the environment variable that holds
    it (empty for a local server without keys). ``max_calls`` and ``max_tokens`` cap one run
    (0: no cap); ``concurrency`` requests are in flight at once; ``timeout_s`` per request;
    ``few_shot`` examples from items a lead decided go into the prompt (0: none).
    """

    base_url: str
    model: str
    api_key_env: str = ""
    max_calls: int = 1000
    max_tokens: int = 0
    concurrency: int = 4
    timeout_s: float = 30.0
    few_shot: int = 0


_LLM_INTS = {
    "max_calls": (0, 100_000_000),
    "max_tokens": (0, 10_000_000_000),
    "concurrency": (1, 64),
    "few_shot": (0, 50),
}


def llm_from_mapping(data: Any, source: str) -> LLMSettings:
    """The ``[llm]`` table, checked: every error names ``[llm]`` and the key."""
    where = f"{source}: [llm]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, found {kind(data)}")
    known = {f for f in LLMSettings.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(known))}"
        )
    for key in ("base_url", "model"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{where}: key {key!r}: expected a non-empty string")
    if not data["base_url"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}: key 'base_url': expected an http:// or https:// address")
    env = data.get("api_key_env", "")
    if not isinstance(env, str) or (env and not env.replace("_", "A").isalnum()):
        raise ConfigError(
            f"{where}: key 'api_key_env': expected the name of an environment variable "
            "(letters, digits and _), not the key itself"
        )
    for key, (low, high) in _LLM_INTS.items():
        value = data.get(key, getattr(LLMSettings, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{where}: key {key!r}: expected an integer from {low} to {high:,}")
    timeout = data.get("timeout_s", LLMSettings.timeout_s)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ConfigError(f"{where}: key 'timeout_s': expected seconds, more than 0 and up to 600")
    return LLMSettings(**{**data, "timeout_s": float(timeout)})


# What a webhook can be told of (docs/webhooks.md); "*" in a hook's events: all of them.
WEBHOOK_EVENTS = ("round.promoted", "round.failed", "drift.flagged", "stopping.reached",
                  "import.done", "bulk.applied")  # fmt: skip


@dataclass(frozen=True)
class WebhookSettings:
    """One ``[[webhooks]]`` table: where the events in ``events`` are POSTed, signed with the
    secret held by the environment variable ``secret_env`` (never by the toml or the store).
    A delivery waits ``timeout_seconds`` for a reply and is tried ``max_attempts`` times."""

    name: str
    url: str
    events: tuple[str, ...]
    secret_env: str
    timeout_seconds: float = 10.0
    max_attempts: int = 8


def webhooks_from_list(data: Any, source: str) -> tuple[WebhookSettings, ...]:
    """The ``[[webhooks]]`` tables, checked: every error names the entry and the key."""
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise ConfigError(f"{source}: [[webhooks]]: expected tables, found {kind(data)}")
    hooks = tuple(
        _webhook(entry, f"{source}: [[webhooks]] entry {n}") for n, entry in enumerate(data, 1)
    )
    names = [hook.name for hook in hooks]
    for n, name in enumerate(names, 1):
        if names.index(name) != n - 1:
            raise ConfigError(f"{source}: [[webhooks]] entry {n}: key 'name': {name!r} is entry "
                              f"{names.index(name) + 1}'s name too; give each its own")  # fmt: skip
    return hooks


def _webhook(data: dict[str, Any], where: str) -> WebhookSettings:
    known = set(WebhookSettings.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    for key in ("url", "events", "secret_env"):
        if key not in data:
            raise ConfigError(f"{where}: key {key!r} is missing")
    url = data["url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: key 'url': expected an http:// or https:// address, found "
                          f"{kind(url)}")  # fmt: skip
    if parts.username or parts.password:
        raise ConfigError(f"{where}: key 'url': holds credentials; sign with secret_env instead")
    where = f"{where} ({data.get('name', parts.hostname)!r})"
    name = data.get("name", parts.hostname)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise ConfigError(f"{where}: key 'name': expected letters, digits, '.', '-' and '_'")
    events = data["events"]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ConfigError(f"{where}: key 'events': expected a list of event names or [\"*\"]")
    for event in events:
        if event != "*" and event not in WEBHOOK_EVENTS:
            raise ConfigError(f"{where}: key 'events': unknown event {event!r}; known events are "
                              f"{', '.join(WEBHOOK_EVENTS)} (or \"*\" for all)")  # fmt: skip
    env = data["secret_env"]
    if not isinstance(env, str) or not env or not env.replace("_", "A").isalnum():
        raise ConfigError(f"{where}: key 'secret_env': expected the name of an environment "
                          "variable (letters, digits and _), not the secret itself")  # fmt: skip
    timeout = data.get("timeout_seconds", WebhookSettings.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        raise ConfigError(f"{where}: key 'timeout_seconds': expected seconds, over 0 and up to 120")
    tries = data.get("max_attempts", WebhookSettings.max_attempts)
    if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 100:
        raise ConfigError(f"{where}: key 'max_attempts': expected an integer from 1 to 100")
    return WebhookSettings(name, url, tuple(events), env, float(timeout), tries)
