"""E-mail over SMTP: one connection per sending thread, reused across messages and reopened
after any error. The idempotency key becomes the Message-ID (and an X-Idempotency-Key
header), which mail systems use to recognise a duplicate.

SMTP says itself what is worth retrying: 4xx replies are temporary, 5xx permanent.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import threading
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from engine.channels.base import Message, Result, Verdict
from engine.channels.config import SmtpServer
from engine.core.configfile import ConfigError


class SmtpSender:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.credentials = self._credentials()
        self.local = threading.local()
        self.lock = threading.Lock()
        self.connections: list[smtplib.SMTP] = []

    def send(self, message: Message) -> Result:
        mail = self._compose(message)
        try:
            conn = self._connection()
            refused = conn.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            return _from_codes([code for code, _ in exc.recipients.values()], str(exc))
        except smtplib.SMTPResponseException as exc:
            self._drop()
            verdict: Verdict = "retry" if 400 <= exc.smtp_code < 500 else "failed"
            return Result(verdict, f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused
            self._drop()
            return Result("retry", f"connection: {type(exc).__name__}: {exc}"[:300])
        if refused:
            return _from_codes([code for code, _ in refused.values()], str(refused))
        return Result.sent()

    def close(self) -> None:
        with self.lock:
            for conn in self.connections:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()
            self.connections.clear()

    def _compose(self, message: Message) -> EmailMessage:
        s = self.server
        mail = EmailMessage()
        mail["From"] = formataddr((s.sender_name, s.sender)) if s.sender_name else s.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(localtime=True)
        domain = Address(addr_spec=s.sender).domain or "care-playbooks.invalid"
        mail["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
        mail["X-Idempotency-Key"] = message.idempotency_key
        mail.set_content(message.body)
        return mail

    def _connection(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = getattr(self.local, "conn", None)
        if conn is not None:
            return conn
        s = self.server
        timeout = s.sending.timeout
        if s.ssl:
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=timeout)
            if s.starttls:
                conn.starttls()
        if self.credentials:
            conn.login(*self.credentials)
        self.local.conn = conn
        with self.lock:
            self.connections.append(conn)
        return conn

    def _drop(self) -> None:
        conn: smtplib.SMTP | None = getattr(self.local, "conn", None)
        self.local.conn = None
        if conn is None:
            return
        with self.lock:
            if conn in self.connections:
                self.connections.remove(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def _credentials(self) -> tuple[str, str] | None:
        s = self.server
        if not s.username_env:
            return None
        user, password = os.environ.get(s.username_env), os.environ.get(s.password_env or "")
        if user is None or password is None:
            raise ConfigError(
                f"environment variables {s.username_env} / {s.password_env} are not set",
                code="E0402",
                hint="IT sets the SMTP credentials where the dispatcher runs",
            )
        return user, password


def _from_codes(codes: list[int], detail: str) -> Result:
    temporary = all(400 <= c < 500 for c in codes)
    return Result("retry" if temporary else "failed", f"SMTP refused: {detail}"[:300])


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
