"""Editor support, checked with the real tools staff and CI use.

- check-jsonschema (PyPI) accepts our schema against the 2020-12 metaschema, accepts every
  shipped playbook, and rejects a typo.
- yaml-language-server (npm, the engine behind VS Code's YAML extension) reports a typo'd key
  at the right line when a playbook carries our ``# yaml-language-server: $schema=`` line.
  The server is installed with npm into a cache folder on first use; without npm the test is
  skipped on a developer machine and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
from support import REPO

YAML_LS_VERSION = "2.0.0"
CACHE = REPO / ".cache" / f"yaml-language-server-{YAML_LS_VERSION}"
PLAYBOOK = REPO / "playbooks" / "vip_inactive_60d.yaml"


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_check_jsonschema_accepts_schema_and_playbooks() -> None:
    schema = str(REPO / "schemas" / "playbook.schema.json")
    assert check_jsonschema("--check-metaschema", schema).returncode == 0
    files = sorted(str(p) for p in (REPO / "playbooks").glob("*.yaml"))
    result = check_jsonschema("--schemafile", schema, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_rejects_a_typo(tmp_path: Path) -> None:
    broken = tmp_path / "typo.yaml"
    broken.write_text(PLAYBOOK.read_text(encoding="utf-8").replace("limits:", "limts:"), "utf-8")
    result = check_jsonschema(
        "--schemafile", str(REPO / "schemas" / "playbook.schema.json"), str(broken)
    )
    assert result.returncode == 1
    assert "limts" in result.stdout + result.stderr


# --- yaml-language-server over stdio --------------------------------------------------------


@pytest.fixture(scope="module")
def yaml_ls() -> Path:
    server = CACHE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if server.exists():
        return server
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        reason = "node and npm are needed to install yaml-language-server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(CACHE),
            f"yaml-language-server@{YAML_LS_VERSION}",
        ],
        check=True,
        timeout=300,
    )
    assert server.exists()
    return server


class LspClient:
    """Just enough of the Language Server Protocol to open a file and read diagnostics."""

    def __init__(self, server: Path) -> None:
        self.proc = subprocess.Popen(
            ["node", str(server), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: Queue[dict[str, Any]] = Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            length = 0
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.messages.put(json.loads(self.proc.stdout.read(length)))

    def send(self, method: str, params: Any, *, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        ident = None
        if request:
            self.next_id += 1
            ident = message["id"] = self.next_id
        self._write(message)
        return ident

    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def diagnostics_for(
        self, uri: str, timeout: float = 60, *, allow_empty: bool = False
    ) -> list[dict[str, Any]]:
        """Wait for a diagnostics notification for ``uri`` (a non-empty one unless
        ``allow_empty``), answering the server's requests meanwhile."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.messages.get(timeout=1)
            except Empty:
                continue
            if "id" in msg and "method" in msg:  # a request from the server: answer it
                result: Any = None
                if msg["method"] == "workspace/configuration":
                    items = msg["params"]["items"]
                    result = [{"validate": True, "schemaStore": {"enable": False}} for _ in items]
                self._write({"jsonrpc": "2.0", "id": msg["id"], "result": result})
            elif msg.get("method") == "textDocument/publishDiagnostics":
                params = msg["params"]
                if params["uri"] == uri and (params["diagnostics"] or allow_empty):
                    return list(params["diagnostics"])
        raise AssertionError(f"no diagnostics for {uri} within {timeout}s")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def lsp(yaml_ls: Path) -> Iterator[LspClient]:
    client = LspClient(yaml_ls)
    client.send(
        "initialize",
        {"processId": os.getpid(), "rootUri": REPO.as_uri(), "capabilities": {}},
        request=True,
    )
    client.send("initialized", {})
    client.send(
        "workspace/didChangeConfiguration",
        {"settings": {"yaml": {"validate": True, "schemaStore": {"enable": False}}}},
    )
    yield client
    client.close()


def test_yaml_language_server_underlines_a_typo_at_its_line(lsp: LspClient) -> None:
    text = PLAYBOOK.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schemas/playbook.schema.json")
    broken = text.replace("  once_per_customer: 30d", "  once_per_custmer: 30d")
    typo_line = broken.splitlines().index("  once_per_custmer: 30d")
    # a file beside the shipped ones, so the relative $schema path resolves the same way
    uri = (REPO / "playbooks" / "typo-check.yaml").as_uri()
    lsp.send(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": broken}},
    )
    diagnostics = lsp.diagnostics_for(uri)
    lines = {d["range"]["start"]["line"] for d in diagnostics}
    assert typo_line in lines, diagnostics
    assert any(
        "once_per_custmer" in d["message"] or "not allowed" in d["message"] for d in diagnostics
    )


def test_yaml_language_server_finds_nothing_wrong_in_the_shipped_playbooks(
    lsp: LspClient,
) -> None:
    """What staff see when they open a shipped playbook in VS Code: no squiggles at all."""
    files = sorted((REPO / "playbooks").glob("*.yaml"))
    assert len(files) > 10
    for version, path in enumerate(files, start=1):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../schemas/playbook.schema.json")
        lsp.send(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": path.as_uri(),
                    "languageId": "yaml",
                    "version": version,
                    "text": text,
                }
            },
        )
        assert lsp.diagnostics_for(path.as_uri(), allow_empty=True) == [], path.name
