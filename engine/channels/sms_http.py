"""The SMS gateway over HTTP: one JSON POST per message, with the idempotency key both in
the body and as an ``Idempotency-Key`` header, and IT's auth header."""

from __future__ import annotations

from engine.channels import http
from engine.channels.base import Message, Result
from engine.channels.config import HttpEndpoint


class SmsGateway:
    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint
        self.headers = dict(h.resolve() for h in endpoint.headers)
        names = {"recipient": "to", "text": "text", "idempotency_key": "idempotency_key"}
        self.names = {**names, **endpoint.fields}
        self.http = http.client(endpoint.sending.timeout, endpoint.sending.concurrency)

    def send(self, message: Message) -> Result:
        body = {
            self.names["recipient"]: message.recipient,
            self.names["text"]: message.body,
            self.names["idempotency_key"]: message.idempotency_key,
        }
        headers = {**self.headers, "Idempotency-Key": message.idempotency_key}
        return http.post(self.http, self.endpoint.url, json_body=body, headers=headers)

    def close(self) -> None:
        self.http.close()
