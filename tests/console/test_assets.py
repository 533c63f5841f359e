"""The console's built browser files are what the build wrote (a hand edit breaks the
manifest), carry the licence of every bundled package, and every page uses only the
package's own files: no CDN, no inline script."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from conftest import Site

from engine.console.app import STATIC

VENDOR = STATIC / "vendor"


def test_the_committed_bundle_matches_its_manifest() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text(encoding="utf-8"))
    for name, facts in manifest["files"].items():
        data = (VENDOR / name).read_bytes()
        assert len(data) == facts["bytes"], name
        assert hashlib.sha256(data).hexdigest() == facts["sha256"], name
    licences = (VENDOR / "LICENSES.txt").read_text(encoding="utf-8")
    for package in manifest["packages"]:
        assert package in licences, f"no licence for {package}"
    assert "htmx.org" in licences


def test_pages_use_only_the_packages_own_files(site: Site) -> None:
    with site.client("editor") as client:
        for path in (
            "/login",
            "/playbooks",
            "/playbooks/birthday_greeting.yaml",
            "/templates/birthday_greeting.sms.j2",
        ):
            page = client.get(path, follow_redirects=True)
            assert page.status_code == 200, path
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources
            for source in sources:
                assert source.startswith("/") and not source.startswith("//"), (path, source)
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), path
            assert "script-src 'self'" in page.headers["content-security-policy"]
            for source in (s for s in sources if s.startswith("/static/")):
                asset = client.get(source)
                assert asset.status_code == 200, source
                assert Path(STATIC / source.removeprefix("/static/")).exists()
