"""The one channel between a sandboxed agent and the trusted harness that holds its env.

A message is a frame: one kind byte, an 8-byte big-endian length, the payload. The two
directions trust each other differently:

* **sandbox -> harness**: JSON only (kind ``J``), decoded by :func:`decode_data` into plain
  values, NumPy arrays of plain dtypes, tuples and :class:`~optgym.state.EpisodeState`
  records. Nothing the sandbox sends is unpickled or imported, and a frame is refused
  before it is read when it is longer than the harness allows.
* **harness -> sandbox**: pickles (kind ``P``) of what the env returns (observations,
  spaces, states, models), with the env's own objects (envs and their budget meter) sent
  as references (:class:`Ref`) that the sandbox turns into proxies. The sandbox trusts its
  harness; the harness never reads a pickle.

>>> a, b = socket.socketpair()
>>> send_data(a, {"op": "get", "ref": 0, "name": "state"})
>>> read_frame(b, JSON)
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

JSON, PICKLE = b"J", b"P"
_HEADER = struct.Struct(">cQ")
#: The longest frame the harness reads from a sandbox, in bytes (an action, a batch of plans).
MAX_DATA_BYTES = 64 * 2**20
#: How deep data from a sandbox may nest.
MAX_DATA_DEPTH = 32
#: NumPy dtypes data from a sandbox may hold (no objects, no structured types).
DTYPES = frozenset(
    np.dtype(t).str
    for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float16", "float32", "float64")
)  # fmt: skip


class ChannelClosed(EOFError):
    """The other end of the channel went away."""


@dataclass(frozen=True)
class Ref:
    """A reference to an object that stays in the harness: ``kind`` is ``"env"`` or
    ``"meter"``, ``id`` its number in the harness's table."""

    id: int
    kind: str


def rebuild_error(name: str, text: str, fallback: type[Exception]) -> Exception:
    """The exception an error sent as its type's ``name`` and message ``text`` stands for:
    a built-in exception type or ``BudgetExceeded`` as itself, any other as ``fallback``
    with the name leading the message (no class is imported by name)."""
    import builtins

    from optgym.budget import BudgetExceeded

    if name == "BudgetExceeded":
        return BudgetExceeded(text)
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(text)
    return fallback(f"{name[:80]}: {text}")


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 2**20))
        if not chunk:
            raise ChannelClosed("the other end of the channel closed it")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    """Send one frame of ``kind`` (:data:`JSON` or :data:`PICKLE`)."""
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def read_frame(sock: socket.socket, kind: bytes, limit: int | None = None) -> bytes:
    """The payload of the next frame, which must be of ``kind`` and at most ``limit`` bytes
    (refused before it is read); ``ValueError`` otherwise, :class:`ChannelClosed` at the
    end."""
    got, size = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    if got != kind:
        raise ValueError(f"expected a frame of kind {kind!r}, got {got!r}")
    if limit is not None and size > limit:
        raise ValueError(f"a message of {size} bytes; at most {limit} allowed")
    return _read_exactly(sock, size)


# --- data: what a sandbox may send ----------------------------------------------------------


def encode_data(value: Any) -> Any:
    """``value`` as JSON data with tags: tuples, NumPy arrays and scalars, dicts (any
    key), :class:`~optgym.state.EpisodeState` records. ``TypeError`` for anything else."""
    from optgym.state import EpisodeState

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, list):
        return [encode_data(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode_data(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[encode_data(k), encode_data(v)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return encode_data(value.item())
    if isinstance(value, EpisodeState):
        return {"$state": value.to_dict()}
    if not isinstance(value, np.ndarray) and hasattr(value, "__array__"):
        value = np.asarray(value)  # a torch tensor, say
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        if array.dtype.str not in DTYPES:
            raise TypeError(f"arrays of dtype {array.dtype} cannot be sent to the harness")
        data = base64.b64encode(array.tobytes()).decode("ascii")
        return {"$array": [array.dtype.str, list(array.shape), data]}
    raise TypeError(f"a {type(value).__name__} cannot be sent to the harness (plain data only)")


def _decode(value: Any, depth: int) -> Any:
    from optgym.result_line import state_problem
    from optgym.state import EpisodeState

    if depth > MAX_DATA_DEPTH:
        raise ValueError(f"data nested more than {MAX_DATA_DEPTH} deep")
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError("an object that is not a tagged value")
    (tag, body), = value.items()
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$tuple" and isinstance(body, list):
        return tuple(_decode(v, depth + 1) for v in body)
    if tag == "$dict" and isinstance(body, list):
        out = {}
        for item in body:
            if not (isinstance(item, list) and len(item) == 2):
                raise ValueError("a dict item that is not a [key, value] pair")
            key = _decode(item[0], depth + 1)
            if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                raise ValueError("a dict key that is not a plain value")
            out[key] = _decode(item[1], depth + 1)
        return out
    if tag == "$state":
        why = state_problem(body)
        if why:
            raise ValueError(f"a malformed state: {why}")
        return EpisodeState.from_dict(body)
    if tag == "$array" and isinstance(body, list) and len(body) == 3:
        dtype, shape, data = body
        if dtype not in DTYPES:
            raise ValueError(f"an array of dtype {dtype!r}; allowed: plain numbers and bools")
        if not (isinstance(shape, list) and len(shape) <= MAX_DATA_DEPTH
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                        for n in shape) and isinstance(data, str)):  # fmt: skip
            raise ValueError("an array with a malformed shape or body")
        raw = base64.b64decode(data, validate=True)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * np.dtype(dtype).itemsize != len(raw):
            raise ValueError("an array whose bytes do not fill its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    raise ValueError("an object with an unknown tag")


def decode_data(payload: bytes) -> Any:
    """The value a sandbox sent (see :func:`encode_data`); ``ValueError`` naming what is
    malformed, never quoting it."""
    from optgym.datasets.files import check_json_depth

    check_json_depth(payload, "a message from the sandbox", 2 * MAX_DATA_DEPTH + 4)
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("a message from the sandbox is not UTF-8 JSON") from None
    try:
        return _decode(value, 0)
    except (TypeError, ValueError, KeyError, RecursionError, base64.binascii.Error) as e:
        raise ValueError(f"a malformed message from the sandbox: {e}") from None


def send_data(sock: socket.socket, value: Any) -> None:
    """Send ``value`` as data (:func:`encode_data`)."""
    send_frame(sock, JSON, json.dumps(encode_data(value), allow_nan=False).encode())


def read_data(sock: socket.socket, limit: int = MAX_DATA_BYTES) -> Any:
    """The next data message, decoded (:func:`decode_data`)."""
    return decode_data(read_frame(sock, JSON, limit))


__all__ = [
    "DTYPES", "JSON", "MAX_DATA_BYTES", "PICKLE", "ChannelClosed", "Ref", "decode_data",
    "encode_data", "read_data", "read_frame", "rebuild_error", "send_data", "send_frame",
]  # fmt: skip
