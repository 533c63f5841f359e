"""What a channel adapter is: it takes one message and says sent, retry or failed.

Adapters never touch the store; the dispatcher claims rows, calls ``send`` (from several
threads at once, so adapters are thread-safe) and records the results. Every message carries
its idempotency key so the far side can drop a duplicate of a retried delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Verdict = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class Message:
    id: int
    channel: str  # sms / email / webhook
    recipient: str  # phone, e-mail address, or webhook endpoint name
    subject: str | None
    body: str
    idempotency_key: str
    customer_id: str
    playbook_id: str


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    error: str | None = None
    retry_after: float | None = None  # seconds the far side asked us to wait (HTTP 429)

    @classmethod
    def sent(cls) -> Result:
        return cls("sent")


class Channel(Protocol):
    def send(self, message: Message) -> Result: ...

    def close(self) -> None: ...


class RateLimiter:
    """A token bucket shared by the threads sending on one channel: at most ``rate``
    messages per second on average, bursts of up to ``burst``. ``rate`` 0 means no limit."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = float(burst if burst is not None else max(1, round(rate)))
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1 - 1e-9:  # float error must not stall a sender
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
