"""The daemon reloads config/policy.yaml like playbooks: a valid edit reaches every loaded
version without a restart, an invalid one keeps the last good policy and shows in ``status``
with its place."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from daemon_support import deployment, playbook_yaml, status_json
from support import REPO, TZ, dictionary

from engine.daemon.scheduler import Daemon, DaemonConfig
from engine.daemon.timesource import TimeSource
from engine.store.db import create_all, open_store


def _sms_caps(daemon: Daemon, pid: str) -> list[int]:
    policy = daemon.folder.active()[pid].executor.policy
    return sorted(c.max for c in policy.caps if c.channel == "sms")


def test_policy_edit_reloads_and_an_invalid_one_keeps_the_last_good(tmp_path: Path) -> None:
    root = tmp_path / "deploy"
    (root / "config").mkdir(parents=True)
    for name in ("policy.yaml", "channels.yaml"):
        shutil.copy(REPO / "config" / name, root / "config" / name)
    settings = deployment(root, {"a.yaml": playbook_yaml("care-a", "0 9 * * *")})
    policy = root / "config" / "policy.yaml"
    original = policy.read_text(encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    create_all(store)
    config = DaemonConfig(reload_interval=3600, tick=3600, events=False)
    clock = TimeSource.rehearsal(dt.datetime(2026, 11, 20, tzinfo=TZ), speed=1.0)
    daemon = Daemon(store, settings, dictionary(), config=config, time_source=clock)
    daemon.start()
    try:
        assert _sms_caps(daemon, "care-a") == [1, 4]
        policy.write_text(original.replace("{max: 1, per: 1d}", "{max: 2, per: 1d}"), "utf-8")
        daemon.reload()
        assert _sms_caps(daemon, "care-a") == [2, 4]  # no restart

        broken = original.replace("{max: 1, per: 1d}", "{max: many, per: 1d}")
        policy.write_text(broken, "utf-8")
        daemon.reload()
        assert _sms_caps(daemon, "care-a") == [2, 4]  # the last good policy still applies
        problem = daemon.policy.problem
        assert problem is not None and problem.where and "policy.yaml:" in problem.where
        doc = status_json(root, url)
        [shown] = doc["policy_errors"]
        assert shown["code"] == problem.code and shown["where"] == problem.where

        # a playbook loaded while the policy is broken gets the last good one too
        (root / "playbooks" / "b.yaml").write_text(playbook_yaml("care-b", "0 10 * * *"), "utf-8")
        daemon.reload()
        assert _sms_caps(daemon, "care-b") == [2, 4]

        policy.write_text(original, "utf-8")
        daemon.reload()
        assert daemon.policy.problem is None
        assert _sms_caps(daemon, "care-a") == _sms_caps(daemon, "care-b") == [1, 4]
        assert status_json(root, url)["policy_errors"] == []
    finally:
        daemon.stop()
        store.dispose()


def _texts(daemon: Daemon, pid: str) -> tuple[str, str]:
    texts = daemon.folder.active()[pid].executor.policy.texts
    return texts.sms_signature, texts.sms_opt_out


def test_message_texts_reload_with_the_policy_and_a_broken_edit_keeps_the_last_good(
    tmp_path: Path,
) -> None:
    root = tmp_path / "deploy"
    (root / "config").mkdir(parents=True)
    for name in ("policy.yaml", "channels.yaml"):
        shutil.copy(REPO / "config" / name, root / "config" / name)
    settings = deployment(root, {"a.yaml": playbook_yaml("care-a", "0 9 * * *")})
    policy = root / "config" / "policy.yaml"
    original = policy.read_text(encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    create_all(store)
    config = DaemonConfig(reload_interval=3600, tick=3600, events=False)
    clock = TimeSource.rehearsal(dt.datetime(2026, 11, 20, tzinfo=TZ), speed=1.0)
    daemon = Daemon(store, settings, dictionary(), config=config, time_source=clock)
    daemon.start()
    try:
        assert _texts(daemon, "care-a") == ("【示例银行】", "回复TD退订")
        policy.write_text(original.replace("【示例银行】", "【普惠农商】"), "utf-8")
        daemon.reload()
        assert _texts(daemon, "care-a") == ("【普惠农商】", "回复TD退订")
        # a signature carriers would refuse: the last good texts still apply, and say why
        policy.write_text(original.replace("【示例银行】", "普惠农商"), "utf-8")
        daemon.reload()
        assert _texts(daemon, "care-a") == ("【普惠农商】", "回复TD退订")
        problem = daemon.policy.problem
        assert problem is not None and problem.code == "E0420"
        assert problem.where is not None and "policy.yaml:" in problem.where
    finally:
        daemon.stop()
        store.dispose()
