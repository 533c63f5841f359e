"""The editor's server side over real HTTP: validation gives the codes and lines `validate`
gives, the audience estimate is `dry-run --playbook ID --as-of DATE`'s numbers, a save writes
only what validates, and hostile text gets located errors, never a server error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Site, csrf_of
from support import cli

PLAYBOOK = "birthday_greeting.yaml"


def funnel(html: str) -> dict[str, int]:
    """The estimate's numbers by key, as the page shows them (thousands separators)."""
    found = re.findall(r'data-key="([^"]+)">([\d,]+)<', html)
    assert found, html[:2000]
    return {key: int(value.replace(",", "")) for key, value in found}


@pytest.mark.parametrize(
    ("file", "day"),
    [
        ("birthday_greeting.yaml", "2026-11-24"),
        ("vip_visit_manager_30d.yaml", "2026-11-24"),
        ("dormant_winback_call.yaml", "2026-11-23"),
    ],
)
def test_the_estimate_is_the_dry_run_of_that_playbook_and_day(
    site: Site, file: str, day: str
) -> None:
    text = (site.root / "playbooks" / file).read_text(encoding="utf-8")
    playbook_id = re.search(r"^id: (\S+)", text, re.M)
    assert playbook_id
    with site.client("editor") as client:
        csrf = csrf_of(client)
        page = client.post(
            "/editor/estimate",
            data={"file": file, "text": text, "day": day},
            headers={"X-CSRF-Token": csrf},
        )
    assert page.status_code == 200
    shown = funnel(page.text)
    url = str(site.store.url)
    result = cli(
        "dry-run",
        "--db",
        url,
        "--playbook",
        playbook_id.group(1),
        "--as-of",
        day,
        "--format",
        "json",
        cwd=site.root,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["playbooks"][0]["counts"]
    assert shown["matched"] == counts["matched"]
    assert shown["acted"] == counts["customers_acted"]
    assert shown.get("held_out", 0) == counts["held_out"]
    for kind, n in counts["actions"].items():
        assert shown[f"action-{kind}"] == n
    held = {
        k: v
        for k, v in shown.items()
        if k not in {"matched", "acted", "held_out"} and not k.startswith("action-")
    }
    assert sum(held.values()) == counts["customers_suppressed"]
    assert counts["matched"] > 0, "pick a playbook and day with an audience"


def test_validation_gives_the_codes_and_lines_of_validate(site: Site, tmp_path: Path) -> None:
    text = (site.root / "playbooks" / PLAYBOOK).read_text(encoding="utf-8")
    broken = text.replace("audience:", "audiense:").replace(
        "max_per_run: 5000", "max_per_run: lots"
    )
    with site.client("editor") as client:
        got = client.post(
            f"/api/validate?file={PLAYBOOK}",
            json={"text": broken},
            headers={"X-CSRF-Token": csrf_of(client)},
        ).json()
    (tmp_path / PLAYBOOK).write_text(broken, encoding="utf-8")
    result = cli("validate", "--format", "json", str(tmp_path / PLAYBOOK), cwd=site.root)
    expected = json.loads(result.stdout)["diagnostics"]
    assert [(d["code"], d["line"]) for d in got["diagnostics"]] == sorted(
        (d["code"], d["line"]) for d in expected
    )
    typo = next(d for d in got["diagnostics"] if d["code"] == "PB0101")
    assert "audience" in typo["hint"]
    assert got["valid"] is False


def test_a_save_writes_only_what_validates(site: Site) -> None:
    target = site.root / "playbooks" / PLAYBOOK
    before = target.read_text(encoding="utf-8")
    with site.client("editor") as client:
        csrf = csrf_of(client)
        refused = client.post(
            "/editor/save",
            data={
                "file": PLAYBOOK,
                "text": before.replace("tier", "tire").replace("audience:", "audiense:"),
            },
            headers={"X-CSRF-Token": csrf},
        )
        assert "nothing was written" in refused.text
        assert target.read_text(encoding="utf-8") == before
        edited = before.replace("priority: 80", "priority: 81")
        saved = client.post(
            "/editor/save", data={"file": PLAYBOOK, "text": edited}, headers={"X-CSRF-Token": csrf}
        )
        assert "已保存" in saved.text
        assert target.read_text(encoding="utf-8") == edited
        restored = client.post(
            "/editor/save", data={"file": PLAYBOOK, "text": before}, headers={"X-CSRF-Token": csrf}
        )
        assert "已保存" in restored.text
    assert cli("validate", str(target), cwd=site.root).returncode == 0


def test_an_approver_may_preview_but_not_save(site: Site) -> None:
    target = site.root / "playbooks" / PLAYBOOK
    before = target.read_text(encoding="utf-8")
    with site.client("approver") as client:
        saved = client.post(
            "/editor/save",
            data={"file": PLAYBOOK, "text": before + "# sneaked in\n"},
            headers={"X-CSRF-Token": csrf_of(client)},
        )
    assert saved.status_code == 403
    assert target.read_text(encoding="utf-8") == before


HOSTILE = {
    "broken yaml": "id: x\ntitle: [unclosed\n",
    "sql payload": "id: x\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\n"
    'audience: {tier: "vip\'; DROP TABLE customers; --"}\n'
    "actions: [{sms: {template: birthday_greeting.sms.j2}}]\n",
    "sandbox escape": "id: x\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\naudience: {tier: vip}\n"
    "actions: [{task: {title: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"}}]\n",
    "deep nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "binary junk": "\x00\x01\x02 id: \ufffe\n",
    "a list": "- 1\n- 2\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_gets_located_errors_and_nothing_is_written(site: Site, name: str) -> None:
    before = sorted(p.name for p in (site.root / "playbooks").iterdir())
    with site.client("editor") as client:
        csrf = csrf_of(client)
        checked = client.post(
            "/api/validate", json={"text": HOSTILE[name]}, headers={"X-CSRF-Token": csrf}
        )
        assert checked.status_code == 200
        found = checked.json()
        assert found["valid"] is False and found["diagnostics"], found
        assert all(d["line"] >= 1 and d["code"] for d in found["diagnostics"])
        for path in ("/editor/save", "/editor/estimate", "/editor/explain"):
            response = client.post(
                path,
                data={"file": "hostile.yaml", "text": HOSTILE[name], "customer_id": "C1"},
                headers={"X-CSRF-Token": csrf},
            )
            assert response.status_code == 200, (path, response.status_code)
            assert "Traceback" not in response.text
    assert sorted(p.name for p in (site.root / "playbooks").iterdir()) == before


def test_an_oversized_paste_is_refused_with_413(site: Site) -> None:
    with site.client("editor") as client:
        response = client.post(
            "/api/validate",
            json={"text": "a: b\n" * 500_000},
            headers={"X-CSRF-Token": csrf_of(client)},
        )
    assert response.status_code == 413


def test_a_template_renders_for_the_sample_customer_with_its_sms_parts(site: Site) -> None:
    with site.client("editor") as client:
        csrf = csrf_of(client)
        page = client.post(
            "/editor/render",
            data={
                "name": "birthday_greeting.sms.j2",
                "text": "{{ customer | polite_name }}您好" + "好" * 80,
            },
            headers={"X-CSRF-Token": csrf},
        )
        assert "【示例银行】" in page.text and "回复TD退订" in page.text
        assert re.search(r'id="segments">2 条短信', page.text), page.text
        escape = client.post(
            "/editor/save-template",
            data={"name": "birthday_greeting.sms.j2", "text": "{{ ''.__class__.__mro__ }}"},
            headers={"X-CSRF-Token": csrf},
        )
    assert "未保存" in escape.text
    saved = (site.root / "templates" / "birthday_greeting.sms.j2").read_text(encoding="utf-8")
    assert "__class__" not in saved


def test_explain_agrees_with_the_estimate_for_a_sampled_customer(site: Site) -> None:
    text = (site.root / "playbooks" / PLAYBOOK).read_text(encoding="utf-8")
    form = {"file": PLAYBOOK, "text": text, "day": "2026-11-24"}
    with site.client("editor") as client:
        headers = {"X-CSRF-Token": csrf_of(client)}
        estimate = client.post("/editor/estimate", data=form, headers=headers).text
        sampled = re.findall(r'<span class="code">(C\d+)</span>', estimate)
        assert sampled, estimate
        acts = client.post(
            "/editor/explain", data={**form, "customer_id": sampled[0]}, headers=headers
        ).text
        assert "会执行 Acts: sms" in acts and "✓" in acts
        unknown = client.post(
            "/editor/explain", data={**form, "customer_id": "C404"}, headers=headers
        )
        assert unknown.status_code == 200 and "E0304" in unknown.text


def test_the_schema_offers_this_deployments_template_files(site: Site) -> None:
    with site.client("editor") as client:
        schema = client.get("/schema.json").json()
    offered = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "template" and isinstance(value, dict) and "examples" in value:
                    offered.append(value["examples"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    shipped = sorted(p.name for p in (site.root / "templates").glob("*.j2"))
    assert offered and all(names == shipped for names in offered)


def test_the_editor_links_the_templates_its_playbook_uses(site: Site) -> None:
    with site.client("editor") as client:
        page = client.get(f"/playbooks/{PLAYBOOK}").text
    assert 'href="/templates/birthday_greeting.sms.j2"' in page


@pytest.mark.parametrize(("accept", "word"), [("zh-CN,zh;q=0.9", "未知"), ("en-US,en", "unknown")])
def test_messages_come_in_the_browsers_language(site: Site, accept: str, word: str) -> None:
    text = (site.root / "playbooks" / PLAYBOOK).read_text(encoding="utf-8")
    with site.client("editor") as client:
        got = client.post(
            f"/api/validate?file={PLAYBOOK}",
            json={"text": text.replace("audience:", "audiense:")},
            headers={"X-CSRF-Token": csrf_of(client), "Accept-Language": accept},
        ).json()
    typo = next(d for d in got["diagnostics"] if d["code"] == "PB0101")
    assert word in typo["message"], typo
