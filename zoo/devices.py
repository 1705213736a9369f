"""Device choice, the one place: ``auto`` picks cuda, then mps, then cpu.

Every command that runs PyTorch (train, finetune, evaluate, predict, export
validation, bench) asks here, so ``--device`` means the same everywhere.
torch is imported only inside the functions.
"""

from __future__ import annotations

from zoo.errors import ZooError

DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"


def select_device(request: str | None = "auto"):
    """``auto`` picks cuda, then mps, then cpu; a named device that is not there is a ZooError."""
    import torch

    request = (request or "auto").strip().lower()
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(request)
    except RuntimeError:
        raise ZooError(f"unknown device {request!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ZooError(f"device {request!r} was requested but CUDA is not available here; use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ZooError(f"device {request!r} does not exist: this machine has {count} CUDA device(s)")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ZooError(f"device {request!r} was requested but MPS is not available here; use --device cpu or auto")
    elif device.type != "cpu":
        raise ZooError(f"device {request!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return device


def onnx_provider(device) -> str:
    """The ONNX Runtime provider that matches a torch device: ``cuda`` or ``cpu``."""
    return "cuda" if getattr(device, "type", str(device)).startswith("cuda") else "cpu"


# -- bfloat16 on the CPU -------------------------------------------------------------

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bfloat16 dot-product units
_announced: set[str] = set()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


BF16_ENV = "ZOO_CPU_BF16"  # "0" or "1": answer for the CPU (a test suite that must run in float32 everywhere)


def cpu_has_bf16() -> bool:
    """Whether the CPU has bfloat16 units (AVX512-BF16 or AMX-BF16): there bf16 autocast is the faster choice.

    ``$ZOO_CPU_BF16`` set to 0 or 1 answers instead of ``/proc/cpuinfo``.
    """
    import os

    forced = os.environ.get(BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def autocast_choice(device, requested: bool | None, *, announce: bool = True):
    """``(enabled, dtype)`` of mixed precision for ``device``: the one rule for train, finetune, evaluate, predict.

    CUDA: on by default, bfloat16 where supported, else float16. CPU: bfloat16
    autocast, on by default where the CPU has bfloat16 units (:func:`cpu_has_bf16`)
    and off elsewhere (there it is several times slower); ``requested`` True or
    False (``--amp``/``--no-amp``) overrides. Other devices: off, and asking is an error.
    The CPU default is said once per process on stderr.
    """
    import torch

    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        on = True if requested is None else bool(requested)
        return on, (torch.bfloat16 if (on and torch.cuda.is_bf16_supported()) else torch.float16)
    if kind != "cpu":
        if requested:
            raise ZooError(f"--amp runs on CUDA or the CPU, not on {kind}")
        return False, torch.float32
    on = cpu_has_bf16() if requested is None else bool(requested)
    if requested is None and announce and "cpu" not in _announced:
        import sys

        _announced.add("cpu")
        print("zoo: bf16 autocast " + ("on: this CPU has bfloat16 units (--no-amp turns it off)" if on
                                       else "off: this CPU has no bfloat16 units (--amp turns it on)"),
              file=sys.stderr, flush=True)
    return on, torch.bfloat16


def autocast(device, enabled: bool, dtype=None):
    """The autocast context of :func:`autocast_choice`'s answer (a no-op context when off)."""
    import torch

    kind = getattr(device, "type", str(device))
    if not enabled or kind not in ("cuda", "cpu"):
        from contextlib import nullcontext

        return nullcontext()
    return torch.autocast(kind, dtype=dtype or torch.bfloat16)
