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
