"""The ``messages`` section of config/policy.yaml: the SMS signature, the opt-out texts, the
operators' windows and the WeCom limits, checked with located errors in Chinese and English,
and the configured texts (not built-in ones) sent and counted in SMS parts everywhere."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from support import AS_OF, REPO, TZ, dictionary

from engine.actions.compliance import MessageTexts, load_texts
from engine.console.workbench import Workbench
from engine.core.clock import Clock
from engine.core.configfile import ConfigError
from engine.core.settings import Settings
from engine.execution.executor import Executor
from engine.execution.sinks import RecordingSink
from engine.playbook.validation import Validator
from engine.policy import default_policy, load_policy
from engine.rendering.renderer import sms_segments

SHIPPED = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")
LONG_OPT_OUT = "如您不希望继续收到本行的营销短信,请回复TD或R退订,退订后本行将不再向您发送此类信息。"

CASES = [
    (
        "version: 1\nmessages:\n  sms:\n    signature: 示例银行\n    opt_out: 回复TD退订\n",
        ("E0420", 4, "messages.sms.signature"),
        ("is not an SMS signature", "不是短信签名"),
    ),
    (
        "version: 1\nmessages:\n  sms:\n    signature: 【示例银行】\n",
        ("E0421", 3, "messages.sms"),
        ("marketing sms messages need an opt-out text", "营销sms消息必须配置退订说明"),
    ),
    (
        "version: 1\nmessages:\n  email:\n    opt_out: '  '\n",
        ("E0421", 4, "messages.email.opt_out"),
        ("need an opt-out text", "必须配置退订说明"),
    ),
    (
        "version: 1\nquiet_hours:\n  sms:\n    marketing: '07:30-21:00'\n",
        ("E0422", 4, "quiet_hours.sms.marketing"),
        ("goes outside what the operator allows", "超出了运营商允许的"),
    ),
    (
        "version: 1\nmessages:\n  sms:\n    signature: 【示例银行】\n    opt_out: 回复TD退订\n"
        "    operator_window: {marketing: '09:00-20:00'}\n"
        "quiet_hours:\n  sms: {marketing: '08:00-21:00'}\n",
        ("E0422", 8, "quiet_hours.sms.marketing"),
        ("09:00-20:00", "09:00-20:00"),
    ),
    (
        "version: 1\nmessages:\n  sms:\n    signatur: 【示例银行】\n",
        ("E0401", 4, "messages.sms"),
        ("unknown key 'signatur'", "未知的键 'signatur'"),
    ),
    (
        "version: 1\nmessages:\n  wecom:\n    per_customer: [{max: 0, per: 1d}]\n",
        ("E0401", 4, "messages.wecom.per_customer[0].max"),
        ("below the least allowed", "小于最小值"),
    ),
]


@pytest.mark.parametrize(("text", "at", "words"), CASES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_messages_mistake_is_located_and_said_in_both_languages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, at: tuple[str, int, str],
    words: tuple[str, str], lang: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("CARE_LANG", lang)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    code, line, where = at
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.code == code
    assert caught.value.where is not None and caught.value.where.startswith(f"{path}:{line}:")
    shown = caught.value.render()
    assert f"{where}: " in shown and words[0 if lang == "en" else 1] in shown, shown


def test_an_unknown_messages_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nmessages:\n  sms:\n    opt_uot: 回复TD退订\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.hint is not None and "opt_out" in caught.value.hint


def test_the_validator_reads_the_same_section_and_stops_at_the_same_mistake(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(CASES[0][0], encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_texts(path)
    assert caught.value.code == "E0420"


def test_without_a_quiet_window_the_operator_window_applies(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    policy = load_policy(path)
    assert str(policy.hours("sms", "marketing")) == "08:00-21:00"  # the carriers' hours
    assert policy.hours("sms", "service") is None
    assert policy.texts == MessageTexts() and policy.wecom_limits == default_policy().wecom_limits


def deployment(tmp_path: Path, policy_text: str) -> Settings:
    """The shipped project with its own contact policy (templates, playbooks as shipped)."""
    root = tmp_path / "bank"
    root.mkdir(parents=True)
    for name in ("schemas", "segments", "templates", "playbooks"):
        (root / name).symlink_to(REPO / name)
    (root / "config").mkdir()
    shutil.copy(REPO / "config" / "channels.yaml", root / "config" / "channels.yaml")
    (root / "config" / "policy.yaml").write_text(policy_text, encoding="utf-8")
    return Settings(root=root)


CONFIGURED = SHIPPED.replace('signature: "【示例银行】"', 'signature: "【普惠农商银行】"').replace(
    'opt_out: "回复TD退订"', f'opt_out: "{LONG_OPT_OUT}"'
)


def test_sms_carry_the_configured_texts_and_their_parts_count_them(
    demo_store: Engine, tmp_path: Path
) -> None:
    settings = deployment(tmp_path, CONFIGURED)
    policy = load_policy(settings.policy_path)
    assert policy.texts.sms_signature == "【普惠农商银行】"
    checker = Validator(settings, dictionary())
    catalog = checker.validate_paths([settings.playbooks_dir / "vip_inactive_60d.yaml"])
    [playbook] = catalog.playbooks
    ex = Executor(demo_store, settings, checker.dictionary, checker.renderer)
    outcome = ex.execute(playbook, Clock.at(AS_OF, TZ), RecordingSink(), keep_details=True)
    messages = [e for d in outcome.decisions for e in d.effects if e.kind == "sms"]
    assert messages
    for e in messages:
        body = str(e.row["body"])
        assert body.startswith("【普惠农商银行】") and body.endswith(LONG_OPT_OUT)
        assert e.row["segments"] == sms_segments(body)
        assert sms_segments(body) > sms_segments(body.removesuffix(LONG_OPT_OUT))


def test_validate_counts_the_configured_opt_out_in_the_sms_budget(tmp_path: Path) -> None:
    playbook = """id: short-sms
title: 短信
trigger: {schedule: "0 9 * * *"}
audience:
  tier: [vip]
actions:
  - sms: {template: vip_inactive_60d.sms.j2, max_segments: 1}
"""
    found = {}
    for name, policy_text in (("shipped", SHIPPED), ("configured", CONFIGURED)):
        settings = deployment(tmp_path / name, policy_text)
        path = tmp_path / name / "short.yaml"
        path.write_text(playbook, encoding="utf-8")
        catalog = Validator(settings, dictionary()).validate_paths([path])
        found[name] = {d.code for d in catalog.errors}
    # the template fits one part with today's texts, not with the longer opt-out configured
    assert "PB0125" not in found["shipped"]
    assert "PB0125" in found["configured"]


def test_the_console_preview_counts_the_configured_texts(
    demo_store: Engine, tmp_path: Path
) -> None:
    settings = deployment(tmp_path, CONFIGURED)
    bench = Workbench(settings, demo_store)
    name = "vip_inactive_60d.sms.j2"
    shown = bench.render_template(name, (REPO / "templates" / name).read_text("utf-8"))
    assert shown["ok"], shown
    assert shown["sent"].startswith("【普惠农商银行】") and shown["sent"].endswith(LONG_OPT_OUT)
    assert shown["segments"] == sms_segments(shown["sent"])
    # an edit of the policy is seen by the next preview, without restarting the console
    settings.policy_path.write_text(SHIPPED, encoding="utf-8")
    again = bench.render_template(name, (REPO / "templates" / name).read_text("utf-8"))
    assert again["sent"].startswith("【示例银行】") and again["sent"].endswith("回复TD退订")


def test_the_shipped_texts_are_todays(tmp_path: Path) -> None:
    shipped = load_policy(REPO / "config" / "policy.yaml")
    assert dataclasses.replace(shipped, source=None) == default_policy()
    assert shipped.texts == MessageTexts(
        "【示例银行】", "回复TD退订", "如不希望再收到此类邮件,请回复“退订”。"
    )
