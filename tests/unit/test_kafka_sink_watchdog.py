"""The watchdog around librdkafka calls that can block past their own timeout (librdkafka #5456)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from drivers.kafka_sink import WEDGED_EXIT, within


def test_a_call_that_returns_gives_its_result():
    assert within(5, "quick", lambda: 42) == 42


def test_a_call_that_raises_raises_in_the_caller():
    def fail() -> None:
        raise ValueError("abortable")

    with pytest.raises(ValueError, match="abortable"):
        within(5, "failing", fail)


def test_a_call_still_blocked_after_the_bound_ends_the_process():
    code = "import time; from drivers.kafka_sink import within; within(0.3, 'stuck', lambda: time.sleep(30))"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert proc.returncode == WEDGED_EXIT
    assert "stuck still blocked" in proc.stderr
    assert time.monotonic() - started < 10


def test_a_wedged_call_is_reported_before_the_process_ends(tmp_path):
    said = tmp_path / "said.txt"
    code = ("import time, pathlib; from drivers.kafka_sink import within; "
            f"within(0.3, 'stuck', lambda: time.sleep(30), on_wedged=pathlib.Path({str(said)!r}).write_text)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert proc.returncode == WEDGED_EXIT
    assert said.read_text() == "stuck still blocked after 0s (librdkafka #5456): failing over"
