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


def test_the_precision_probe_leaves_the_model_as_it_was():
    from zoo.train.prepare import bf16_pays

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    model.eval()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    keep, fp32, bf16 = bf16_pays(model, (3, 8, 8), 32, channels_last=True)
    assert isinstance(keep, bool) and fp32 > 0 and bf16 > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm statistics too
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight)) and model[5].weight.grad is None
    assert not model.training and torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("pays", [False, True])
def test_the_cpu_default_keeps_bf16_only_where_the_probe_says_it_pays(monkeypatch, tmp_path, pays):
    import json

    from zoo.testing import make_image_folder
    from zoo.train import prepare

    monkeypatch.setenv(devices.BF16_ENV, "1")  # a CPU with bfloat16 units
    monkeypatch.setattr(prepare, "bf16_pays", lambda *a, **k: (pays, 100.0, 110.0 if pays else 80.0))
    data = make_image_folder(tmp_path / "d", ("cat", "dog"), per_class=8, size=32, split=True, val_per_class=4)
    from zoo.data.dataset import load_image_data

    data = load_image_data(data, (3, 32, 32))
    lines = []
    trainer = zoo.Trainer("net", data, epochs=2, batch_size=8, out=str(tmp_path / "run"), progress=False,
                          plot=False, metrics_format="none")
    trainer.say = lines.append
    trainer.fit()
    assert trainer.amp is pays and trainer.config.amp is pays
    assert any("bf16 autocast off for this model" in line for line in lines) is (not pays)
    saved = json.loads((tmp_path / "run" / "last" / "config.json").read_text())["train_args"]
    assert saved["amp"] is pays  # the checkpoint records the choice ...
    # ... and a resumed run takes it, whatever the probe would say now
    monkeypatch.setattr(prepare, "bf16_pays", lambda *a, **k: (not pays, 1.0, 1.0))
    again = zoo.Trainer("net", data, epochs=3, batch_size=8, out=str(tmp_path / "run"),
                        resume=str(tmp_path / "run" / "last"), progress=False, plot=False, metrics_format="none")
    again.fit()
    assert again.amp is pays
