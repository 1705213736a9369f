"""The feature pass's estimate: taken from the steady rate, not from the first batch's warm-up."""

from __future__ import annotations

import io

from zoo.transfer import engine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_estimate_uses_the_rate_after_the_first_batch(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(engine.time, "perf_counter", clock)
    lines: list[str] = []
    meter = engine.FeatureMeter(10_000, "onnxruntime", lines.append, stream=io.StringIO())
    clock.now = 10.0  # the first batch fills the decoding pipeline: 100 images in 10 s
    meter.advance(100)
    assert lines == []  # no estimate from the warm-up alone
    for _ in range(3):  # then 100 images a second
        clock.now += 1.0
        meter.advance(100)
    assert len(lines) == 1
    # 9,700 images left at 100 img/s: 97 s (the first batch's 10 img/s would have said 970 s)
    assert "~97 s more" in lines[0] and "100 img/s" in lines[0]
    meter.advance(100)
    assert len(lines) == 1  # said once


def test_a_small_pass_gets_no_estimate(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(engine.time, "perf_counter", clock)
    lines: list[str] = []
    meter = engine.FeatureMeter(500, "torch", lines.append, stream=io.StringIO())
    for _ in range(5):
        clock.now += 5.0
        meter.advance(100)
    assert lines == []
    assert meter.close().startswith("feature pass: 500 images in 25.0 s")
