"""Validation messages in English and Chinese: the catalog is complete and consistent, every
message the checkers build comes from it, and `validate --lang` / the locale choose the
language while codes stay the same."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from support import REPO, validator

from engine.core.diagnostics import format_json, format_text
from engine.core.i18n import CATALOG, LANGS, Msg, choose_lang, localize, placeholders, t

ENGINE = REPO / "engine"
INVALID = REPO / "tests" / "fixtures" / "invalid"
CJK = re.compile(r"[\u4e00-\u9fff]")


def engine_sources() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in ENGINE.rglob("*.py")}


def test_every_key_has_both_languages_with_the_same_parameters() -> None:
    for key, texts in CATALOG.items():
        assert len(texts) == len(LANGS), key
        en, zh = texts
        assert en.strip() and zh.strip(), key
        assert placeholders(en) == placeholders(zh), key
        dummy = {name: "x" for name in placeholders(en)}
        assert en.format(**dummy) and zh.format(**dummy)  # no stray braces
        if not key.startswith("template."):
            assert CJK.search(zh), f"{key}: the Chinese text has no Chinese in it"


def test_every_documented_code_has_a_message() -> None:
    documented = set(re.findall(r"^## (PB\d{4})$", (REPO / "docs/errors.md").read_text(), re.M))
    assert len(documented) > 40
    codes = {key.split(".")[0] for key in CATALOG if key.startswith("PB")}
    assert documented <= codes, sorted(documented - codes)
    assert codes <= documented, sorted(codes - documented)  # no message for an unknown code


def test_every_key_used_exists_and_every_key_is_used() -> None:
    text = "\n".join(engine_sources().values())
    used = set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
    assert used, "no t(...) calls found"
    assert used <= set(CATALOG), sorted(used - set(CATALOG))
    families = set(re.findall(r"""\bt\(\s*f["']([\w.]+)\.\{""", text))  # t(f"type.{name}")
    unused = {k for k in CATALOG if k not in used and k.split(".")[0] not in families}
    assert not unused, sorted(unused)


def test_no_diagnostic_is_built_from_a_bare_string() -> None:
    """A message written inline would show in English only: each must come from t(...)."""
    bare = re.compile(r"""["']PB\d{4}["'],\s*\n?\s*f?["']""")
    found = {path: bare.findall(src) for path, src in engine_sources().items()}
    assert not {p: f for p, f in found.items() if f}


def test_every_invalid_fixture_reads_in_both_languages() -> None:
    catalog = validator().validate_paths([INVALID])
    assert len(catalog.diagnostics) >= 80
    for d in catalog.diagnostics:
        assert isinstance(d.message, Msg), (d.code, d.file, d.message)
        assert d.message.key.split(".")[0] in (d.code, "template"), (d.code, d.message.key)
        zh = localize(d.message, "zh")
        assert zh and CJK.search(zh), (d.code, zh)
        assert localize(d.message, "en") == d.message  # English is the plain text
        if d.hint is not None and isinstance(d.hint, Msg):
            assert localize(d.hint, "zh")
    zh_text = format_text(catalog.diagnostics, catalog.sources, "zh")
    en_text = format_text(catalog.diagnostics, catalog.sources, "en")
    assert zh_text.count("error[PB") == en_text.count("error[PB") == len(catalog.errors)
    assert "参见: docs/errors.md#" in zh_text and "see: docs/errors.md#" in en_text


def test_json_keeps_codes_and_carries_both_languages() -> None:
    catalog = validator().validate_paths([INVALID / "unknown_field.audience.yaml"])
    doc = json.loads(format_json(catalog.diagnostics, "zh"))
    assert doc["lang"] == "zh"
    [item] = doc["diagnostics"]
    assert item["code"] == "PB0107"
    assert item["message"] == item["messages"]["zh"] != item["messages"]["en"]
    assert item["messages"]["en"].startswith("unknown field ")
    assert item["hints"]["zh"] and item["hint"] == item["hints"]["zh"]


def test_nested_messages_are_translated_too() -> None:
    inner = t("type.object")
    outer = t("PB0102", expected=inner, found=t("found.list"))
    assert outer == "expected a mapping, found a list"
    assert localize(outer, "zh") == "应为映射,实际是列表"


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {}, "en"),
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LANG": "en_US.UTF-8"}, "en"),
        (None, {"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "en_GB.UTF-8", "LC_ALL": "zh_TW.UTF-8"}, "zh"),
        (None, {"LC_ALL": "zh_CN.UTF-8", "CARE_LANG": "en"}, "en"),
        (None, {"CARE_LANG": "zh"}, "zh"),
        ("en", {"CARE_LANG": "zh", "LANG": "zh_CN.UTF-8"}, "en"),
        ("zh", {}, "zh"),
    ],
)
def test_language_choice(flag: str | None, env: dict[str, str], expected: str) -> None:
    assert choose_lang(flag, env) == expected


def run_validate(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "CARE_LANG")
    }
    return subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "validate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=300,
    )


def test_cli_lang_flag_and_locale() -> None:
    target = str(INVALID / "bad_cron.trigger.yaml")
    zh = run_validate(target, "--lang", "zh")
    assert zh.returncode == 1
    assert "error[PB0111]: " in zh.stdout and "不是 cron 时间表" in zh.stdout
    assert "1 个文件:0 个有效,1 个错误" in zh.stdout
    by_locale = run_validate(target, LANG="zh_CN.UTF-8")
    assert by_locale.stdout == zh.stdout
    en = run_validate(target, CARE_LANG="en", LANG="zh_CN.UTF-8")
    assert "is not a cron schedule" in en.stdout and "1 file(s): 0 valid, 1 error(s)" in en.stdout
    bad = run_validate(target, "--lang", "fr")
    assert bad.returncode == 2
