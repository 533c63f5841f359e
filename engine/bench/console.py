"""Section 8: the console, served for real by uvicorn on 127.0.0.1 and asked over HTTP as a
browser asks it. Each figure beside its baseline in the same run:

- the validation round trip of a shipped playbook (what the editor does after each pause in
  typing) against the validator's own time on the same text, in process (target: ≤ 150 ms
  median round trip);
- the audience estimate of the playbook with the largest audience against the command
  ``dry-run --playbook ID --as-of DAY`` (target: ≤ 1.10×), and against the same pass in process,
  which leaves out the command's start-up and so is the stricter of the two;
- the page weight: the scripts the editor page loads, gzip-compressed (target: ≤ 500 KB).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from engine.bench.figures import cpu_ratio, ratio, repeat
from engine.bench.lab import Lab
from engine.console import accounts
from engine.console.app import STATIC
from engine.console.auth import Sessions
from engine.console.context import Console
from engine.console.server import ConsoleServer
from engine.core.yamlfile import load_text
from engine.execution.selection import decide
from engine.playbook.validation import Validator

VALIDATED = "birthday_greeting.yaml"
ROUND_TRIPS = 20


def measure(lab: Lab, repeats: int) -> dict[str, Any]:
    name, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    accounts.add(lab.store, name, "editor", password)
    console = Console(lab.settings, lab.store, Sessions(secrets.token_bytes(32)))
    server = ConsoleServer(console, "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=3600) as client:
            csrf = _log_in(client, name, password)
            return {
                "validate": _validate(lab, client, csrf, repeats),
                "estimate": _estimate(lab, client, csrf, repeats),
                "page": _page_weight(client),
            }
    finally:
        server.stop()


def _log_in(client: httpx.Client, name: str, password: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"name": name, "password": password, "csrf_token": token[1]})
    page = client.get("/playbooks")
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found is not None, "the bench account could not log in"
    return found[1]


def _validate(lab: Lab, client: httpx.Client, csrf: str, repeats: int) -> dict[str, Any]:
    text = (lab.settings.playbooks_dir / VALIDATED).read_text(encoding="utf-8")
    validator = Validator(lab.settings, lab.dictionary)
    headers = {"X-CSRF-Token": csrf}

    def over_http() -> None:
        for _ in range(ROUND_TRIPS):
            answer = client.post(
                f"/api/validate?file={VALIDATED}", json={"text": text}, headers=headers
            )
            assert answer.json()["valid"], answer.text

    def in_process() -> None:
        for _ in range(ROUND_TRIPS):
            assert validator.validate_document(load_text(text, VALIDATED))[0] is not None

    http, _ = repeat(over_http, repeats)
    local, _ = repeat(in_process, repeats)
    return {
        "playbook": VALIDATED,
        "round_trip_ms": round(http.median / ROUND_TRIPS * 1000, 1),
        "validator_ms": round(local.median / ROUND_TRIPS * 1000, 1),
        "http": http.as_dict(),
        "local": local.as_dict(),
        "ratio": ratio(http, local),
    }


def _estimate(lab: Lab, client: httpx.Client, csrf: str, repeats: int) -> dict[str, Any]:
    executor = lab.executor()
    # the playbook with the most customers matched that day: the estimate that takes longest
    sizes = {}
    with lab.store.connect() as conn:
        for p in lab.scheduled:
            query = executor.audience_query(p, lab.clock(p)).subquery()
            sizes[p.id] = int(conn.execute(select(func.count()).select_from(query)).scalar_one())
    chosen = max(lab.scheduled, key=lambda p: sizes[p.id])
    path = Path(chosen.source)
    text = path.read_text(encoding="utf-8")
    moment = dt.datetime.combine(lab.day, dt.time(), lab.settings.timezone)
    form = {"file": path.name, "text": text, "day": lab.day.isoformat()}

    def over_http() -> None:
        page = client.post("/editor/estimate", data=form, headers={"X-CSRF-Token": csrf})
        assert 'id="funnel"' in page.text, page.text[:500]

    def dry_run() -> None:
        decide(lab.store, lab.executor(), [chosen], moment, whole_day=True, dry_run=True, mask=True)

    url = lab.store.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "engine", "dry-run", "--db", url, "--playbook", chosen.id,
               "--as-of", lab.day.isoformat()]  # fmt: skip

    def cli() -> None:
        subprocess.run(command, cwd=lab.settings.root, stdout=subprocess.DEVNULL, check=True)

    http, _ = repeat(over_http, repeats)
    local, _ = repeat(dry_run, repeats)
    whole, _ = repeat(cli, repeats)
    return {
        "playbook": chosen.id,
        "matched": sizes[chosen.id],
        "http": http.as_dict(),
        "dry_run": local.as_dict(),
        "cli": whole.as_dict(),
        "ratio": ratio(http, local),
        "cpu_ratio": cpu_ratio(http, local),
        "cli_ratio": ratio(http, whole),
    }


def _page_weight(client: httpx.Client) -> dict[str, Any]:
    page = client.get("/playbooks/" + VALIDATED)
    scripts = re.findall(r'<script src="/static/([^"]+)"', page.text)
    sizes = {
        name: len(gzip.compress((STATIC / name).read_bytes(), compresslevel=9)) for name in scripts
    }
    return {"scripts": sizes, "gzip_kb": round(sum(sizes.values()) / 1024, 1)}
