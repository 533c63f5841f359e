"""HTTP delivery shared by the SMS gateway and webhooks: one pooled client, and the mapping
from HTTP outcomes to sent / retry / failed.

2xx is delivered; 409 means the gateway already has this idempotency key (delivered before);
408, 425, 429 and 5xx, timeouts and broken connections are worth retrying; any other 4xx is
a message the gateway will never accept, so it goes straight to the dead letters.
"""

from __future__ import annotations

import httpx

from engine.channels.base import Result

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0


def client(timeout: float, concurrency: int) -> httpx.Client:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.Client(timeout=timeout, limits=limits, follow_redirects=False)


def post(
    http: httpx.Client,
    url: str,
    *,
    json_body: object | None = None,
    content: str | None = None,
    headers: dict[str, str],
) -> Result:
    try:
        if content is not None:
            response = http.post(url, content=content.encode("utf-8"), headers=headers)
        else:
            response = http.post(url, json=json_body, headers=headers)
    except httpx.TimeoutException as exc:
        return Result("retry", f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:  # refused, reset, closed without an answer, …
        return Result("retry", f"connection: {type(exc).__name__}: {exc}"[:300])
    return verdict(response)


def verdict(response: httpx.Response) -> Result:
    code = response.status_code
    if 200 <= code < 300 or code == 409:
        return Result.sent()
    detail = f"HTTP {code}: {response.text[:200]}".strip()
    if code in RETRYABLE:
        return Result("retry", detail, _retry_after(response))
    return Result("failed", detail)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: rare from gateways; our own backoff applies
