"""The pipeline's progress reporter: timings and memory per stage, quiet mode."""

from __future__ import annotations

import gc
import math
import sys
import time

import numpy as np
import pytest

from mentor_impact._progress import Progress


def test_records_time_and_memory_per_stage(capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()  # no collection of earlier tests' garbage inside the stages below
    gc.disable()
    try:
        prog = Progress(quiet=False, total=2)
        with prog.step("small"):
            time.sleep(0.02)
        with prog.step("allocate"):
            block = np.ones(200_000_000 // 8)  # 200 MB, touched
            block += 1.0
    finally:
        gc.enable()
    out = capsys.readouterr()
    assert out.out == ""
    assert "[1/2] small ..." in out.err and "[2/2] allocate: done in" in out.err
    assert set(prog.timings) == set(prog.memory_gb) == set(prog.peak_memory_gb) == {
        "small", "allocate"}
    assert prog.timings["small"] >= 0.02
    if sys.platform.startswith("linux"):
        # resident memory at the end of a stage never exceeds the peak so far, and the
        # 200 MB block is resident at the end of its stage
        for name in prog.timings:
            assert 0 < prog.memory_gb[name] <= prog.peak_memory_gb[name] + 1e-3
        assert prog.memory_gb["allocate"] >= prog.memory_gb["small"] + 0.15
    else:  # pragma: no cover
        assert all(math.isnan(v) or v > 0 for v in prog.memory_gb.values())
    del block


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    prog = Progress(quiet=True)
    for _ in range(2):  # a repeated step accumulates its time
        with prog.step("a"):
            time.sleep(0.01)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert prog.timings["a"] >= 0.02 and prog.count == 2
