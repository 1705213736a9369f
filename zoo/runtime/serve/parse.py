"""What a request carries, read and checked: an uploaded image's bytes, a v2 tensor, the query.

Reading the body is awaited on the event loop; parsing a v2 JSON body (up to
megabytes of numbers) is plain work that the server runs in its decode
threads, under the same admission limit as image decoding.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from .guard import BodyTooLarge

FLOAT32_MAX = float(np.finfo(np.float32).max)


class ApiError(Exception):
    """An answer other than 200: a status, a one-line message, maybe headers."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.headers = status, message, reason, headers or {}


async def image_bytes(request: Any) -> bytes:
    """The image in a request: the raw body, or the first file of a multipart form (closed whatever happens)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return await request.body()
    form = None
    try:
        form = await request.form(max_files=1, max_fields=8)
        files = [v for v in form.values() if hasattr(v, "read")]
        if not files:
            raise ApiError(400, "the multipart form has no file; send the image as a file field", "bad_form")
        return await files[0].read()
    except (BodyTooLarge, ApiError):
        raise
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ApiError(400, f"the multipart form cannot be read: {text[:200]}", "bad_form") from None
    finally:
        if form is not None:
            await form.close()


def v2_rows(raw: bytes, name: str, input_size: Sequence[int]) -> tuple[np.ndarray, Any]:
    """The one FP32 input tensor of a v2 infer body, checked against the model ``name`` takes."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the body is not JSON; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}",
                       "bad_json") from None
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, "give exactly one tensor in \"inputs\"", "bad_tensor")
    tensor = inputs[0]
    label = str(tensor.get("name", "inputs[0]"))[:64]
    want = [-1, *input_size]
    if tensor.get("datatype") != "FP32":
        raise ApiError(400, f"datatype {tensor.get('datatype')!r} is not supported; this model takes FP32", "bad_tensor")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not all(type(d) is int and d > 0 for d in shape) or shape[1:] != want[1:]:
        raise ApiError(400, f"shape {shape} does not fit; {name} takes {want} (N, C, H, W)", "bad_tensor")
    data = tensor.get("data")
    if not isinstance(data, list) or any(isinstance(v, (bool, str)) for v in data[:1]):
        raise ApiError(400, f"\"data\" of input {label!r} must be a flat list of numbers", "bad_tensor")
    try:
        wide = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ApiError(400, f"\"data\" of input {label!r} must be a flat list of numbers", "bad_tensor") from None
    if wide.ndim != 1:
        raise ApiError(400, f"\"data\" of input {label!r} must be a flat list of numbers, not nested lists", "bad_tensor")
    if wide.size != int(np.prod(shape)):
        raise ApiError(400, f"\"data\" holds {wide.size} numbers; shape {shape} needs {int(np.prod(shape))}", "bad_tensor")
    finite = np.isfinite(wide) & (np.abs(wide) <= FLOAT32_MAX)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise ApiError(400, f"input {label!r} holds {wide[bad]!r} at index {bad}: FP32 data must be finite numbers"
                       f" within +-{FLOAT32_MAX:.4g}", "bad_tensor")
    request_id = body.get("id")
    return wide.astype(np.float32).reshape(shape), request_id if isinstance(request_id, (str, int)) else None


def top_k(request: Any, default: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ApiError(400, f"top_k must be a whole number from 1 to 1000, not {raw[:20]!r}", "bad_query")
    return value


def threshold(request: Any, default: float) -> float:
    """``?threshold=`` of a multi-label model: the probability at which a label is given."""
    raw = request.query_params.get("threshold")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ApiError(400, f"threshold must be a probability from 0 to 1, not {raw[:20]!r}", "bad_query")
    return value


__all__ = ["ApiError", "image_bytes", "threshold", "top_k", "v2_rows"]
