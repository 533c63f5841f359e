"""Channel settings, configured by IT in ``config/channels.yaml``.

Playbooks never hold an address of the outside world: an SMS goes to "the SMS gateway", a
webhook to an endpoint *name*; URLs, hosts, ports and the names of the environment variables
holding credentials live here. Secrets themselves are read from the environment when the
dispatcher starts, never from this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.configfile import ConfigError, ConfigFile, load_config

CODE = "E0402"


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 6
    first_delay: float = 30.0  # seconds; doubles each attempt
    max_delay: float = 3600.0


@dataclass(frozen=True)
class Sending:
    timeout: float = 10.0
    concurrency: int = 8
    rate_per_second: float = 0.0  # 0: no limit


@dataclass(frozen=True)
class Header:
    name: str
    env: str | None = None
    value: str | None = None  # for non-secret headers only; secrets go through env

    def resolve(self) -> tuple[str, str]:
        if self.env is None:
            return self.name, self.value or ""
        found = os.environ.get(self.env)
        if found is None:
            raise ConfigError(
                f"environment variable {self.env} (for header {self.name}) is not set",
                code=CODE,
                hint="IT sets it where the dispatcher runs; the value never goes in a file",
            )
        return self.name, found


@dataclass(frozen=True)
class HttpEndpoint:
    url: str
    headers: tuple[Header, ...] = ()
    sending: Sending = field(default_factory=Sending)
    # JSON body keys the gateway expects, by our name (recipient, text, idempotency_key)
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    sender_name: str | None = None
    starttls: bool = False
    ssl: bool = False
    username_env: str | None = None
    password_env: str | None = None
    sending: Sending = field(default_factory=Sending)


@dataclass(frozen=True)
class Dispatch:
    batch_size: int = 500
    lease_seconds: float = 300.0  # a crashed dispatcher's claim lapses after this
    poll_seconds: float = 5.0


@dataclass(frozen=True)
class ChannelConfig:
    sms: HttpEndpoint | None = None
    email: SmtpServer | None = None
    webhooks: Mapping[str, HttpEndpoint] = field(default_factory=dict)
    retry: Retry = field(default_factory=Retry)
    retries: Mapping[str, Retry] = field(default_factory=dict)  # per channel overrides
    dispatch: Dispatch = field(default_factory=Dispatch)
    source: str | None = None

    def retry_for(self, channel: str) -> Retry:
        return self.retries.get(channel, self.retry)


SMS_FIELDS = ("recipient", "text", "idempotency_key")

_NUMBER = {"type": "number", "exclusiveMinimum": 0}
_SENDING = {
    "timeout_seconds": _NUMBER,
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 256},
    "rate_per_second": {"type": "number", "minimum": 0},
}
_RETRY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
        "first_delay_seconds": _NUMBER,
        "max_delay_seconds": _NUMBER,
    },
}
_HEADER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "env": {"type": "string"},
        "value": {"type": "string"},
    },
}
_HTTP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "headers": {"type": "array", "items": _HEADER},
        "retry": _RETRY,
        **_SENDING,
    },
}
CHANNELS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"const": 1},
        "retry": _RETRY,
        "dispatch": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000},
                "lease_seconds": _NUMBER,
                "poll_seconds": _NUMBER,
            },
        },
        "sms": {
            **_HTTP,
            "properties": {
                **_HTTP["properties"],  # type: ignore[dict-item]
                "json_fields": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {k: {"type": "string"} for k in SMS_FIELDS},
                },
            },
        },
        "email": {
            "type": "object",
            "additionalProperties": False,
            "required": ["host", "port", "sender"],
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "sender": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
                "sender_name": {"type": "string"},
                "starttls": {"type": "boolean"},
                "ssl": {"type": "boolean"},
                "username_env": {"type": "string"},
                "password_env": {"type": "string"},
                "retry": _RETRY,
                **_SENDING,
            },
        },
        "webhooks": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
            "additionalProperties": _HTTP,
        },
    },
}


def load_channels(path: Path) -> ChannelConfig:
    """Read and check the channel settings; a mistake is one error with file:line:col."""
    cfg = load_config(path, CHANNELS_SCHEMA, CODE)
    data = cfg.data
    retries = {
        name: _retry(data[name]["retry"])
        for name in ("sms", "email")
        if isinstance(data.get(name), dict) and "retry" in data[name]
    }
    webhooks = {}
    for name, spec in (data.get("webhooks") or {}).items():
        webhooks[str(name)] = _http(spec)
        if "retry" in spec:
            retries[f"webhook:{name}"] = _retry(spec["retry"])
    sms = None
    if "sms" in data:
        sms = _http(data["sms"])
        sms = HttpEndpoint(
            sms.url, sms.headers, sms.sending, dict(data["sms"].get("json_fields", {}))
        )
    email = _smtp(cfg, data["email"]) if "email" in data else None
    raw_dispatch = data.get("dispatch") or {}
    return ChannelConfig(
        sms=sms,
        email=email,
        webhooks=webhooks,
        retry=_retry(data.get("retry") or {}),
        retries=retries,
        dispatch=Dispatch(
            batch_size=int(raw_dispatch.get("batch_size", Dispatch.batch_size)),
            lease_seconds=float(raw_dispatch.get("lease_seconds", Dispatch.lease_seconds)),
            poll_seconds=float(raw_dispatch.get("poll_seconds", Dispatch.poll_seconds)),
        ),
        source=cfg.path,
    )


def webhook_names(path: Path) -> tuple[str, ...] | None:
    """Endpoint names for validating playbooks; None when the file is missing or broken
    (the dispatcher reports that itself)."""
    try:
        return tuple(load_channels(path).webhooks)
    except ConfigError:
        return None


def _retry(raw: Mapping[str, Any]) -> Retry:
    d = Retry()
    return Retry(
        max_attempts=int(raw.get("max_attempts", d.max_attempts)),
        first_delay=float(raw.get("first_delay_seconds", d.first_delay)),
        max_delay=float(raw.get("max_delay_seconds", d.max_delay)),
    )


def _sending(raw: Mapping[str, Any]) -> Sending:
    d = Sending()
    return Sending(
        timeout=float(raw.get("timeout_seconds", d.timeout)),
        concurrency=int(raw.get("concurrency", d.concurrency)),
        rate_per_second=float(raw.get("rate_per_second", d.rate_per_second)),
    )


def _http(raw: Mapping[str, Any]) -> HttpEndpoint:
    headers = tuple(
        Header(str(h["name"]), h.get("env"), h.get("value")) for h in raw.get("headers", [])
    )
    return HttpEndpoint(url=str(raw["url"]), headers=headers, sending=_sending(raw))


def _smtp(cfg: ConfigFile, raw: Mapping[str, Any]) -> SmtpServer:
    if raw.get("starttls") and raw.get("ssl"):
        raise cfg.error(("email", "ssl"), "choose either starttls or ssl, not both")
    return SmtpServer(
        host=str(raw["host"]),
        port=int(raw["port"]),
        sender=str(raw["sender"]),
        sender_name=raw.get("sender_name"),
        starttls=bool(raw.get("starttls", False)),
        ssl=bool(raw.get("ssl", False)),
        username_env=raw.get("username_env"),
        password_env=raw.get("password_env"),
        sending=_sending(raw),
    )
