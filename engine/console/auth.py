"""Sessions, CSRF tokens and login throttling.

A session is a signed cookie (HttpOnly, SameSite=Lax) naming the account and a random nonce;
the account is read from the store on every request, so disabling it, changing its role or
its password takes effect at once. The CSRF token is an HMAC of the nonce: bound to the
session, never stored, and checked on every state-changing request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from engine.console.accounts import Account
from engine.console.roles import Permission, allows

SESSION_COOKIE = "care_session"
LOGIN_COOKIE = "care_login"  # binds the login form's CSRF token before there is a session
SESSION_SECONDS = 8 * 3600  # one working day; then log in again
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: their account and their session's nonce."""

    account: Account
    nonce: str
    csrf: str

    def can(self, permission: Permission) -> bool:
        return allows(self.account.role, permission)


class Sessions:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._signer = URLSafeTimedSerializer(secret, salt="care-console-session")

    def issue(self, account: Account) -> str:
        return self._signer.dumps(
            {"u": account.name, "n": secrets.token_hex(16), "p": _stamp(account)}
        )

    def read(self, cookie: str | None) -> tuple[str, str, str] | None:
        """(account name, nonce, password stamp) of a valid, unexpired cookie."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        name, nonce, stamp = data.get("u"), data.get("n"), data.get("p")
        if isinstance(name, str) and isinstance(nonce, str) and isinstance(stamp, str):
            return name, nonce, stamp
        return None

    def viewer(self, account: Account, nonce: str, stamp: str) -> Viewer | None:
        """The viewer, unless the account was disabled or its password changed since."""
        if account.disabled or stamp != _stamp(account):
            return None
        return Viewer(account, nonce, self.csrf_for(nonce))

    def csrf_for(self, nonce: str) -> str:
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_for(nonce), str(token))


def _stamp(account: Account) -> str:
    return account.password_changed_at.isoformat()


class Throttle:
    """Failed logins per key (the account name, the client address): after ``limit`` failures
    within ``window`` seconds the key is refused for ``window`` seconds. Bounded in memory, so
    a flood of made-up names cannot grow it without end."""

    def __init__(self, limit: int = 5, window: float = 900.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, *keys: str, now: float | None = None) -> float:
        """Seconds until ``keys`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        longest = 0.0
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window]
                if len(recent) >= self.limit:
                    longest = max(longest, self.window - (now - recent[-self.limit]))
        return longest

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.pop(key, []) if now - t < self.window]
                self._failures[key] = [*recent, now][-self.limit :]
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def load_secret(path: Path) -> bytes:
    """The key that signs sessions: ``CARE_CONSOLE_SECRET`` if set, else the file, created
    (owner-only) on first start, so sessions survive a restart and every console process of
    one deployment shares it."""
    env = os.environ.get("CARE_CONSOLE_SECRET", "").strip()
    if env:
        return env.encode()
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path.read_bytes().strip()
