"""Webhooks to endpoints IT configured by name; the outbox row already holds the JSON body
(rendered at run time), so delivery is one POST with the idempotency key as a header."""

from __future__ import annotations

from collections.abc import Mapping

from engine.channels import http
from engine.channels.base import Message, Result
from engine.channels.config import HttpEndpoint


class Webhooks:
    def __init__(self, endpoints: Mapping[str, HttpEndpoint]) -> None:
        self.endpoints = dict(endpoints)
        self.headers = {n: dict(h.resolve() for h in e.headers) for n, e in endpoints.items()}
        self.clients = {
            n: http.client(e.sending.timeout, e.sending.concurrency) for n, e in endpoints.items()
        }

    def send(self, message: Message) -> Result:
        name = message.recipient
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return Result("failed", f"no webhook endpoint named '{name}' in the channel config")
        headers = {
            **self.headers[name],
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
        }
        return http.post(self.clients[name], endpoint.url, content=message.body, headers=headers)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
