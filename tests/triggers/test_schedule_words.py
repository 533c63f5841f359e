"""Schedules in words, as the console's lists show them; anything unusual stays cron text."""

from __future__ import annotations

import pytest

from engine.triggers.schedule import in_words


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 9 * * *", "每天 09:00"),
        ("30 8 * * 1-5", "每个工作日 08:30"),
        ("0 9 * * 1", "每周一 09:00"),
        ("0 9 * * 0", "每周日 09:00"),
        ("0 10 1 * *", "每月1日 10:00"),
        ("0 10 15 6 *", "每年6月15日 10:00"),
        ("0 8-20 * * *", "0 8-20 * * *"),
        ("0 10 * 1,4,7,10 1", "0 10 * 1,4,7,10 1"),
        ("*/5 * * * *", "*/5 * * * *"),
    ],
)
def test_common_schedules_read_as_words(cron: str, words: str) -> None:
    assert in_words(cron) == words
