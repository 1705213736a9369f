"""bfloat16 autocast on the CPU: the default follows the CPU's flags, and training under it learns."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo import devices


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, True),   # AMD Zen 4, Intel Cooper Lake
    ({"avx2", "amx_bf16", "amx_tile"}, True),      # Intel Sapphire Rapids
    ({"avx2", "fma"}, False),                      # AVX2 only: bf16 would be emulated, several times slower
    (set(), False),                                # no /proc/cpuinfo
])
def test_the_cpu_default_follows_the_flags(monkeypatch, capsys, flags, expected):
    monkeypatch.delenv(devices.BF16_ENV, raising=False)
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(devices, "_announced", set())
    cpu = torch.device("cpu")
    assert devices.autocast_choice(cpu, None) == (expected, torch.bfloat16)
    assert devices.autocast_choice(cpu, None)[0] == expected
    said = capsys.readouterr().err
    assert said.count("bf16 autocast") == 1 and ("on" if expected else "off") in said  # said once
    assert devices.autocast_choice(cpu, False)[0] is False and devices.autocast_choice(cpu, True)[0] is True


def test_the_flags_are_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert "avx512_bf16" in devices.cpu_flags()


def test_bf16_autocast_training_learns(tmp_path):
    from zoo.testing import make_image_folder

    data = make_image_folder(tmp_path / "d", ("cat", "dog"), per_class=16, size=32, split=True, val_per_class=8)
    result = zoo.fit("net", str(data), epochs=4, batch_size=8, lr=0.05, amp=True, progress=False, plot=False,
                     metrics_format="none")
    assert result.history[-1]["val_acc"] >= 0.75  # 2 classes: chance is 0.5
