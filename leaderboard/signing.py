"""The board's verifier key: what the board ranks is what its verifier signed.

A board has one Ed25519 key pair. Its public half is published with the board
(``verifier.json`` at the board's root: anyone can check a signature); its private half
stays with the organizer (``<cache>/leaderboard/verifier-<key id>.key``, mode 600), made
when the organizer adds the board's first entry. Signed with it:

* every entry's verification record (``verification.json``), when ``optgym leaderboard
  add`` or ``reverify`` files it: the index ranks an entry only when its record carries a
  valid signature by the board's key, so a folder planted with ``{"ok": true}`` is left out;
* the attestation of a closed-track entry (``attestation.json``), which only ``optgym
  leaderboard rerun`` writes: ``closed`` is a track only the verifier's own run can give.

An organizer who no longer holds the private half (a new machine, a new organizer) retires
the key (:func:`new_key`, ``scripts/initial_board.py --new-key``): it moves to the file's
``retired`` list, whose keys still check the records they signed (a signature is checked
with the public half alone), and a new pair signs from then on.

A signature covers the record's canonical JSON (sorted keys, no spaces) without its
``signature`` field, under a purpose string, so a signature made for one kind of record
never fits another.

>>> signed = sign(record, "verification", board_root)
>>> signature_problem(signed, "verification", board_root)  # None when it holds
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

#: The public key's file at the board's root.
PUBLIC_KEY = "verifier.json"
#: The field of a signed record that holds its signature.
SIGNATURE = "signature"
#: What a signature may be made for.
PURPOSES = ("verification", "attestation")


def _canonical(record: dict[str, Any], purpose: str) -> bytes:
    body = {k: v for k, v in record.items() if k != SIGNATURE}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"optgym-{purpose}-1\n".encode() + text.encode()


def _key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


#: The most retired keys a board's key file lists.
MAX_RETIRED = 64
_FORMAT = (
    '{"ed25519": 64 hex digits, "id": its key id, "retired": [{"ed25519", "id"}, ...] '
    "(optional)}"
)


def _parse_key(entry: Any, path: Path) -> bytes:
    text = entry.get("ed25519") if isinstance(entry, dict) else None
    if not (isinstance(entry, dict) and set(entry) == {"ed25519", "id"}
            and isinstance(text, str) and len(text) == 64):  # fmt: skip
        raise ValueError(f"{path} is not a verifier key file ({_FORMAT})")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} is not a verifier key file (a key is not hex)") from None
    if entry["id"] != _key_id(key):
        raise ValueError(f"{path} names another key id than its key's")
    return key


def public_keys(root: Path) -> list[bytes]:
    """The board's public keys (32 bytes each): the current one first, then the retired
    ones, which still check what they signed; [] when the board has none yet.
    ``ValueError`` when its file is malformed."""
    from optgym.datasets.files import read_json_object

    path = Path(root) / PUBLIC_KEY
    if not path.exists() and not path.is_symlink():
        return []
    data = read_json_object(path, "board verifier key", 256 * (MAX_RETIRED + 2), 3)
    retired = data.get("retired", [])
    if not set(data) <= {"ed25519", "id", "retired"} or not isinstance(retired, list):
        raise ValueError(f"{path} is not a verifier key file ({_FORMAT})")
    if len(retired) > MAX_RETIRED:
        raise ValueError(f"{path} lists {len(retired)} retired keys; allowed: {MAX_RETIRED}")
    current = {k: v for k, v in data.items() if k != "retired"}
    return [_parse_key(e, path) for e in (current, *retired)]


def public_key(root: Path) -> bytes | None:
    """The board's current public key (32 bytes), None when the board has none yet;
    ``ValueError`` when its file is malformed."""
    keys = public_keys(root)
    return keys[0] if keys else None


def _private_path(key_id: str) -> Path:
    from optgym.datasets.cache import cache_dir

    return cache_dir() / "leaderboard" / f"verifier-{key_id}.key"


def _load_private(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from optgym.datasets.files import read_regular

    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.geteuid():
        raise RuntimeError(f"{path} must be a regular file of this user, mode 600")
    raw = read_regular(path, "verifier key", 64)
    if len(raw) != 32:
        raise RuntimeError(f"{path} is not a verifier key (32 bytes)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key(root: Path, create: bool = True) -> Any:
    """The board's private key, from this installation's cache; a new key pair when the
    board has none and ``create`` (its public half written into the board).
    ``RuntimeError`` when the board's key is another installation's: only its organizer
    signs for it."""
    root = Path(root)
    public = public_key(root)
    if public is not None:
        path = _private_path(_key_id(public))
        if not path.exists():
            raise RuntimeError(
                f"the board {root} is signed by verifier key {_key_id(public)}, whose private "
                "half is not in this installation's cache: only the board's organizer files "
                "and re-verifies its entries (anyone can verify them: optgym leaderboard "
                "verify); a new organizer retires the key first (scripts/initial_board.py "
                "--new-key)"
            )
        return _load_private(path)
    if not create:
        raise RuntimeError(f"the board {root} has no verifier key yet")
    return _make_key(root, [])


def new_key(root: Path) -> str:
    """Retire the board's current key (it keeps checking the records it signed) and make a
    new pair that signs from now on, its private half in this installation's cache;
    returns the new key's id. For an organizer without the current key's private half."""
    root = Path(root)
    keys = public_keys(root)
    if len(keys) > MAX_RETIRED:
        raise ValueError(f"the board {root} has retired {MAX_RETIRED} keys; allowed: no more")
    _make_key(root, keys)
    return _key_id(public_keys(root)[0])


def _make_key(root: Path, retired: list[bytes]) -> Any:
    """A new key pair for the board: its private half into the cache, its public half the
    board's current key, ``retired`` listed after it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from optgym.datasets.files import write_file

    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)  # fmt: skip
    path = _private_path(_key_id(public))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, raw, mode=0o600)
    record: dict[str, Any] = {"ed25519": public.hex(), "id": _key_id(public)}
    if retired:
        record["retired"] = [{"ed25519": k.hex(), "id": _key_id(k)} for k in retired]
    write_file(root / PUBLIC_KEY, (json.dumps(record, indent=1) + "\n").encode())
    return key


def sign(record: dict[str, Any], purpose: str, root: Path) -> dict[str, Any]:
    """``record`` with its signature by the board's key (made when the board has none)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signature purpose {purpose!r}; allowed: {PURPOSES}")
    key = signing_key(root)
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)  # fmt: skip
    signature = key.sign(_canonical(record, purpose))
    return {**record, SIGNATURE: {"key": _key_id(public), "ed25519": signature.hex()}}


def signature_problem(record: Any, purpose: str, root: Path) -> str | None:
    """Why ``record`` is not signed by the board's key for ``purpose``, or None."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        keys = {_key_id(k): k for k in public_keys(root)}
    except ValueError as e:
        return str(e)
    if not keys:
        return f"the board has no verifier key ({PUBLIC_KEY}), so nothing on it is signed"
    signature = record.get(SIGNATURE) if isinstance(record, dict) else None
    if not isinstance(signature, dict) or set(signature) != {"key", "ed25519"}:
        return "it carries no signature of the board's verifier"
    public = keys.get(signature["key"]) if isinstance(signature["key"], str) else None
    if public is None:
        return "it is signed by another key than the board's verifier keys"
    try:
        raw = bytes.fromhex(signature["ed25519"]) if isinstance(signature["ed25519"], str) else b""
        Ed25519PublicKey.from_public_bytes(public).verify(raw, _canonical(record, purpose))
    except (ValueError, InvalidSignature):
        return "its signature by the board's verifier does not match it (changed since signed)"
    return None


__all__ = ["MAX_RETIRED", "PUBLIC_KEY", "PURPOSES", "SIGNATURE", "new_key", "public_key",
           "public_keys", "sign", "signature_problem", "signing_key"]  # fmt: skip
