"""Where pretrained weight files are looked for, offline first (torch-free).

Each ``find_*`` function is a :class:`zoo.extensions.WeightSource` ``find``:
called as ``find(spec, weights, allow_download)`` it returns a local path or
``None``. Only :func:`download` touches the network, and only when
:func:`network_allowed` says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from zoo.text import first_line

# Any of these set to a true value keeps zoo off the network.
OFFLINE_VARS = ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
HF_FILES = ("model.safetensors", "pytorch_model.bin")


def network_allowed() -> bool:
    """False when the user (or a test) asked zoo to stay offline."""
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no", "off"):
            return False
    return True


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: $TORCH_HOME/hub."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(home)) / "hub"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, as huggingface_hub computes it."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expanduser(explicit))
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(os.path.expanduser(home)) / "hub"


def weight_file_name(weights: Any) -> str | None:
    """The torch hub cache name: the explicit ``filename`` or the URL's last part."""
    if getattr(weights, "filename", None):
        return weights.filename
    url = getattr(weights, "url", None)
    if url:
        return os.path.basename(urlparse(url).path) or None
    return None


def find_package_file(spec: Any, weights: Any, allow_download: bool = False) -> str | None:
    """Weights shipped inside an installed package: ``package_file="pkg:rel/path"``."""
    ref = getattr(weights, "package_file", None)
    if not ref:
        return None
    package, _, relative = ref.partition(":")
    try:
        from importlib import resources

        path = resources.files(package).joinpath(relative)
    except (ModuleNotFoundError, TypeError):
        return None
    return str(path) if path.is_file() else None


def package_installed(ref: str) -> bool:
    """Whether the import package of a ``"pkg:rel/path"`` reference can be found."""
    from importlib.util import find_spec

    try:
        return find_spec(ref.partition(":")[0]) is not None
    except (ImportError, ValueError):
        return False


def find_torch_hub_cache(spec: Any, weights: Any, allow_download: bool = False) -> str | None:
    """``$TORCH_HOME/hub/checkpoints/<name>``, where torchvision keeps downloads."""
    name = weight_file_name(weights)
    if not name:
        return None
    path = torch_hub_dir() / "checkpoints" / name
    return str(path) if path.is_file() else None


def hf_repo_dir(hf_hub_id: str) -> Path:
    """``models--org--name`` inside the hub cache."""
    return hf_hub_cache() / ("models--" + hf_hub_id.replace("/", "--"))


def find_hf_cache(spec: Any, weights: Any, allow_download: bool = False) -> str | None:
    """A snapshot of ``hf_hub_id`` already in the Hugging Face cache (main first)."""
    hub_id = getattr(weights, "hf_hub_id", None)
    if not hub_id:
        return None
    repo = hf_repo_dir(hub_id)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates: list[Path] = []
    ref = repo / "refs" / "main"
    if ref.is_file():
        candidates.append(snapshots / ref.read_text().strip())
    # Then any other snapshot, newest first (a cache copied without refs/ still works).
    others = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    candidates.extend(p for p in others if p not in candidates)
    for snapshot in candidates:
        for name in HF_FILES:
            path = snapshot / name
            if path.is_file():
                return str(path)
    return None


def download(spec: Any, weights: Any, allow_download: bool = False) -> str | None:
    """Fetch the weights into the usual cache; only when allowed and online.

    A failure raises (see :func:`download_failure`), except a Hugging Face
    file name the repository lacks, which tries the next name and the URL.
    """
    if not allow_download or not network_allowed():
        return None
    hub_id = getattr(weights, "hf_hub_id", None)
    hub_error: BaseException | None = None
    if hub_id:
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            hf_hub_download = None
        if hf_hub_download is not None:
            for name in HF_FILES:
                try:
                    return hf_hub_download(hub_id, name)
                except Exception as exc:
                    if download_failure(exc)[0] == "missing":
                        continue
                    hub_error = DownloadFailed(hub_id, exc, hub=True)  # the URL may still work
                    break
    url = getattr(weights, "url", None)
    name = weight_file_name(weights)
    if url and name:
        import torch.hub

        target = torch_hub_dir() / "checkpoints" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # download_url_to_file writes to a temporary name and renames it.
            torch.hub.download_url_to_file(url, str(target), progress=True)
        except Exception as exc:
            raise hub_error or DownloadFailed(url, exc) from None  # the hub's reason first: it was asked first
        return str(target)
    if hub_error is not None:
        raise hub_error
    return None


class DownloadFailed(Exception):
    """A download from ``where`` (a hub repository or a URL) that raised ``cause``."""

    def __init__(self, where: str, cause: BaseException, hub: bool = False) -> None:
        super().__init__(f"{where}: {first_line(cause)}")
        self.where, self.cause, self.hub = where, cause, hub


GATED = "gated or private: log in (huggingface-cli login, or set HF_TOKEN) with an account that may read it"
DENIED = "access denied by the server; download the file yourself and pass --weights FILE"
_CONNECTION_NAMES = ("ConnectError", "ConnectionError", "ConnectTimeout", "Timeout", "LocalEntryNotFoundError",
                     "OfflineModeIsEnabled")


def download_failure(exc: BaseException) -> tuple[str, str]:
    """``(kind, text)`` of a failed download: ``denied`` (HTTP 401/403), ``missing`` (404), ``offline``
    (no connection) or ``other``; ``text`` says it in a few words for the user (a hub's 401/403: log in)."""
    import socket
    import urllib.error

    hub = isinstance(exc, DownloadFailed) and exc.hub
    exc = exc.cause if isinstance(exc, DownloadFailed) else exc
    status = _http_status(exc)
    if status in (401, 403):
        return "denied", f"HTTP {status}: {GATED if hub else DENIED}"
    if status == 404 or type(exc).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
        return "missing", f"HTTP 404: {first_line(exc)}"
    seen: BaseException | None = exc
    for _ in range(8):  # the exception, its reasons and its causes
        if seen is None:
            break
        if isinstance(seen, (socket.gaierror, ConnectionError, TimeoutError)) or any(
                part in type(seen).__name__ for part in _CONNECTION_NAMES) or (
                isinstance(seen, urllib.error.URLError) and not isinstance(seen, urllib.error.HTTPError)):
            reason = getattr(seen, "reason", None) if isinstance(seen, urllib.error.URLError) else seen
            return "offline", f"no network ({first_line(str(reason or seen))})"
        seen = seen.__cause__ or seen.__context__
    return "other", first_line(exc)


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None

