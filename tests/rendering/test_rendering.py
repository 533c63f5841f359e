"""Filters, masking and SMS counting behave as staff and auditors expect."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import dictionary

from engine.actions.compliance import MessageTexts, compose_sms
from engine.core.errors import TemplateError
from engine.core.masking import mask_email, mask_name, mask_phone, mask_values
from engine.rendering.renderer import (
    Renderer,
    cn_date,
    polite_name,
    sms_segments,
    wan,
    yuan,
)


def test_masks() -> None:
    assert mask_phone("13812345521") == "138****5521"
    assert mask_name("张伟") == "张*"
    assert mask_name("欧阳娜娜") == "欧阳**"
    assert mask_email("zhang.wei@example.com") == "z***@example.com"
    assert mask_phone(None) == ""


def test_mask_values_masks_every_personal_field_of_the_dictionary() -> None:
    values = {"name": "李娜", "phone": "13900001111", "email": "li@x.cn", "tier": "vip"}
    masked = mask_values(values, dictionary())
    assert masked == {"name": "李*", "phone": "139****1111", "email": "l***@x.cn", "tier": "vip"}


def test_money_and_dates() -> None:
    assert yuan(12345.6) == "12,345.60元"
    assert wan(1234567) == "123.46万元"
    assert cn_date(dt.date(2026, 11, 22)) == "2026年11月22日"
    assert cn_date(dt.datetime(2026, 2, 3, 8, 0)) == "2026年2月3日"


def test_polite_name_never_guesses_a_gender() -> None:
    assert polite_name({"name": "王芳", "gender": "F"}) == "王女士"
    assert polite_name({"name": "司马光", "gender": "M"}) == "司马先生"
    assert polite_name({"name": "赵敏", "gender": None}) == "赵客户"


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)])
def test_sms_segments(length: int, parts: int) -> None:
    assert sms_segments("字" * length) == parts


def test_marketing_sms_gets_signature_and_opt_out_service_does_not() -> None:
    texts = MessageTexts(sms_signature="【银行】", sms_opt_out="回复TD退订")
    assert compose_sms("您好", "marketing", texts) == "【银行】您好回复TD退订"
    assert compose_sms("您好", "service", texts) == "【银行】您好"
    assert compose_sms("您好回复TD退订", "marketing", texts).count("TD") == 1


def test_undefined_variable_is_an_error_not_blank(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path, dictionary())
    template = renderer.inline("尊敬的{{ customer.nmae }}")
    with pytest.raises(TemplateError) as info:
        renderer.render(template, {"customer": {"name": "张三"}})
    assert info.value.code == "PB0122"
    assert "customer.name" in (info.value.hint or "")


def test_sandbox_refuses_internals(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path)
    template = renderer.inline("{{ customer.__class__.__mro__ }}")
    with pytest.raises(TemplateError):
        renderer.render(template, {"customer": {}})


def test_enum_label_filter(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path, dictionary())
    template = renderer.inline("{{ customer.tier | label('tier') }}")
    assert renderer.render(template, {"customer": {"tier": "vip"}}) == "贵宾客户"
