"""The dispatch benchmark's measuring function, small: every queued message reaches the
loopback gateway exactly once through the dispatcher, and both baselines are answered. No
rate is asserted (the machine decides those); the benchmark prints them."""

from __future__ import annotations

from pathlib import Path

from engine.bench.dispatch_measure import measure


def test_measure_delivers_every_message_once_and_reports_rates(tmp_path: Path) -> None:
    result = measure(300, 4, batch_size=120, db_url=f"sqlite:///{tmp_path}/bench.db")
    assert result["sent"] == result["gateway_delivered"] == 300
    assert result["gateway_duplicates"] == 0
    for key in ("baseline_httpx_per_s", "baseline_http_client_per_s", "dispatcher_per_s"):
        assert result[key] > 0
    assert result["store"] == "sqlite" and result["batch_size"] == 120
