"""Configuration mistakes in people's words, in the user's language, at the key or value they
are about: never a schema dump ("is not valid under any of the given schemas")."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.configfile import ConfigError
from engine.policy.rules import load_policy

CASES = [
    (
        "version: 1\nfrequency_caps:\n  sms:\n    - {max: one, per: 1d}\n",
        (4, "frequency_caps.sms[0].max"),
        ("expected a whole number, got 'one'", "应为整数,实际是 'one'"),
    ),
    (
        "version: 1\nfrequency_caps:\n  sms:\n"
        "    - {max: 1, per: 1d}\n    - {max: 4, per: 30 days}\n",
        (5, "frequency_caps.sms[1].per"),
        ("'30 days' is not a duration", "'30 days' 不是时长"),
    ),
    (
        "version: 1\ntasks:\n  escalate_after: 1d\n  escalate_aftr: 2d\n",
        (4, "tasks"),
        ("unknown key 'escalate_aftr'", "未知的键 'escalate_aftr'"),
    ),
    (
        "version: 1\nquiet_hours:\n  sms: {marketing: 8}\n",
        (3, "quiet_hours.sms.marketing"),
        ("expected text, got 8", "应为文字,实际是 8"),
    ),
]


@pytest.mark.parametrize(("text", "at", "words"), CASES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_policy_mistake_is_said_in_words_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, at: tuple[int, str],
    words: tuple[str, str], lang: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("CARE_LANG", lang)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    line, where = at
    assert caught.value.where is not None and caught.value.where.startswith(f"{path}:{line}:")
    shown = caught.value.render()
    assert f"{where}: " in shown and words[0 if lang == "en" else 1] in shown, shown
    assert "valid under" not in shown and "schemas" not in shown


def test_an_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ntasks:\n  escalate_aftr: 2d\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.hint is not None and "escalate_after" in caught.value.hint
