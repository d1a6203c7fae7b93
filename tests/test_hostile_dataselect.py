"""Data selection under hostile input: task files (``file://...npz``) that are too large,
zip bombs, pickles, corrupt or truncated, or that break the schema array by array; a bad
task never breaks the env; bad actions name the problem; cached base models are checked."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zipfile
from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest
import torch

import optgym  # noqa: F401  registers the envs
from optgym.datasets.dataselect import LIMITS, load_task, make_digits_task
from optgym.datasets.dataselect.digits import MAX_ROWS
from optgym.datasets.dataselect.npz import arrays_to_npz
from optgym.datasets.dataselect.text import CHUNK, is_text_task
from optgym.envs.dataselect.lm import base_model

ENV_ID = "optgym/DataSelection-v0"
SECRET = "S3CRET-PASSWORD-hash"  # a file's contents: no error message may show it


def small_digits() -> dict[str, np.ndarray]:
    """The arrays of a small digits task (pool 120, validation 40, test 40)."""
    arrays = asdict(make_digits_task(0))
    sizes = {"pool": 120, "val": 40, "test": 40}
    for name, a in arrays.items():
        split = "pool" if name.startswith("pool") or name == "corrupted" else name.split("_")[0]
        arrays[name] = a[: sizes[split]]
    return arrays


DIGITS = small_digits()
VAL = ("val_x", "val_y", "val_index")
POOL = ("pool_x", "pool_y", "pool_clean_y", "corrupted", "pool_index")


def small_text() -> dict[str, np.ndarray]:
    """The arrays of a small, valid text task (never trained on: only loaded)."""
    rng = np.random.default_rng(0)

    def codes(n: int) -> np.ndarray:
        return rng.integers(0, 96, size=(n, CHUNK)).astype(np.uint8)

    return {
        "pool": codes(20),
        "pool_clean": codes(20),
        "corrupted": np.zeros(20, bool),
        "corruption": np.zeros(20, np.int8),
        "val": codes(5),
        "test": codes(5),
        "base": codes(8),
        "pool_index": np.arange(20),
        "val_index": np.arange(5),
        "test_index": np.arange(5),
        "base_index": np.arange(8),
        "text_sha256": np.zeros(32, np.uint8),
    }


def write(tmp_path, name: str, arrays: dict, compressed: bool = False) -> str:
    path = tmp_path / f"{name}.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return f"file://{path}"


def changed(source: dict, /, **changes) -> dict:
    arrays = dict(source)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    return arrays


@pytest.fixture(scope="module")
def good_uri(tmp_path_factory) -> str:
    return write(tmp_path_factory.mktemp("good"), "good", DIGITS)


@pytest.fixture(scope="module")
def env(good_uri):
    env = gym.make(ENV_ID, benchmark=good_uri, batch=5, budget=10)
    yield env
    env.close()


def assert_clean(message: str) -> None:
    """A message never shows a file's contents nor a raw library error."""
    assert SECRET not in message
    assert "could not convert" not in message and "Traceback" not in message


# ---------------------------------------------------------------------------- schema

y99 = DIGITS["pool_y"].copy()
y99[7] = 99
nan_x = DIGITS["pool_x"].copy()
nan_x[3, 5] = np.nan
inf_val = DIGITS["val_x"].copy()
inf_val[0, 0] = np.inf
neg_label = DIGITS["test_y"].astype(np.int64).copy()
neg_label[2] = -1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"pool_y": y99},
            r"'pool_y' has 1 value out of range, the first at index 7; allowed: "
            r"class labels 0 to 9",
        ),
        (
            {"pool_x": nan_x},
            r"'pool_x' has 1 non-finite value \(NaN or inf\), the first at "
            r"index \(3, 5\); allowed: finite features in \[0, 1\]",
        ),
        ({"val_x": inf_val}, r"'val_x' has 1 non-finite value"),
        ({"pool_x": DIGITS["pool_x"] * 16}, r"'pool_x' has \d+ values out of range"),
        ({"test_y": neg_label}, r"'test_y' has 1 value out of range, the first at index 2"),
        (
            {
                "val_x": DIGITS["val_x"][:0],
                "val_y": DIGITS["val_y"][:0],
                "val_index": DIGITS["val_index"][:0],
            },
            r"the validation split is empty \(array 'val_x' has 0 rows\); it needs 1 to 20000",
        ),
        ({"test_y": None}, r"lacks the arrays test_y; required: pool_x, pool_y"),
        (
            {"pool_y": DIGITS["pool_y"].astype(np.float32)},
            r"'pool_y' has dtype float32; allowed: integer of shape \(n,\)",
        ),
        (
            {"pool_x": DIGITS["pool_x"][:, :10]},
            r"'pool_x' has shape \(120, 10\); allowed: float of shape \(n, 64\)",
        ),
        ({"pool_x": DIGITS["pool_x"].ravel()}, r"'pool_x' has shape \(7680,\)"),
        (
            {"pool_y": DIGITS["pool_y"][:119]},
            r"arrays 'pool_x' and 'pool_y' must have the same number of rows .* got 120 and 119",
        ),
        ({"corrupted": np.full(120, 2)}, r"'corrupted' has 120 values out of range"),
        (
            {
                k: np.resize(DIGITS[k], (MAX_ROWS["validation"] + 1, *DIGITS[k].shape[1:]))
                for k in VAL
            },
            r"the validation split has 20001 rows \(array 'val_x'\); at most 20000 allowed",
        ),
        (
            {k: np.resize(DIGITS[k], (MAX_ROWS["pool"] + 1, *DIGITS[k].shape[1:])) for k in POOL},
            r"the pool split has 5001 rows \(array 'pool_x'\); at most 5000 allowed",
        ),
        (
            {"pool_y": DIGITS["pool_y"].astype(complex)},
            r"'pool_y' has dtype complex128; allowed: plain boolean, integer or float arrays",
        ),
        ({"notes": np.zeros(3)}, r"member 'notes' that is not one of its arrays; allowed:"),
    ],
)
def test_task_arrays_are_validated_by_name(tmp_path, changes, message):
    uri = write(tmp_path, "bad", changed(DIGITS, **changes))
    with pytest.raises(ValueError, match=message) as err:
        load_task(uri[len("file://") :])
    assert_clean(str(err.value))


def test_text_task_arrays_are_validated_by_name(tmp_path):
    text = small_text()
    write(tmp_path, "ok", text)
    assert load_task(tmp_path / "ok.npz").pool.shape == (20, CHUNK)
    assert is_text_task(tmp_path / "ok.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x05\x06" + bytes(18))
    assert not is_text_task(tmp_path / "junk.npz") and not is_text_task(tmp_path / "none.npz")
    big = text["pool"].copy()
    big[4, 9] = 200
    signed = text["val"].astype(np.int8)
    signed[1, 1] = -1
    cases = [
        (
            {"pool": big},
            r"'pool' has 1 value out of range, the first at index \(4, 9\); "
            r"allowed: symbol codes 0 to 95",
        ),
        ({"val": signed}, r"'val' has 1 value out of range"),
        (
            {"base": text["base"][:, :64]},
            r"'base' has shape \(8, 64\); allowed: integer of "
            r"shape \(n, 65\)",
        ),
        ({"corruption": np.full(20, 3, np.int8)}, r"'corruption' has 20 values out of range"),
        (
            {"test": text["test"][:0], "test_index": text["test_index"][:0]},
            r"the test split is empty",
        ),
        ({"text_sha256": np.zeros(31, np.uint8)}, r"'text_sha256' has shape \(31,\)"),
    ]
    for changes, message in cases:
        write(tmp_path, "bad", changed(text, **changes))
        with pytest.raises(ValueError, match=message):
            load_task(tmp_path / "bad.npz")


def test_pickles_are_refused_before_unpickling(tmp_path):
    secret = np.array([{"password": SECRET}] * 120, dtype=object)
    path = tmp_path / "pickle.npz"
    np.savez(path, **changed(DIGITS, pool_y=secret))
    with pytest.raises(ValueError, match=r"'pool_y' holds Python objects \(a pickle\)") as err:
        load_task(path)
    assert_clean(str(err.value))


def test_byte_order_fortran_order_and_compression_are_read_exactly(tmp_path):
    arrays = changed(
        DIGITS,
        pool_x=np.asfortranarray(DIGITS["pool_x"].astype(">f4")),
        pool_y=DIGITS["pool_y"].astype(">i2"),
    )
    task = load_task(write(tmp_path, "exotic", arrays, compressed=True)[len("file://") :])
    assert np.array_equal(task.pool_x, DIGITS["pool_x"]) and task.pool_x.flags.writeable
    assert np.array_equal(task.pool_y, DIGITS["pool_y"])
    assert task.pool_x.dtype.byteorder in "=|<"


# ---------------------------------------------------------------------------- limits


def test_a_zip_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.npz"
    zeros = np.zeros((80 * 2**20 // 256, 64), np.float32)  # 80 MiB of zeros
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("pool_x.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, zeros)
    del zeros
    assert path.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(
        ValueError,
        match=r"'pool_x' inflates to 83886208 bytes; at most "
        r"33554432 allowed per array",
    ):
        load_task(path)
    assert time.perf_counter() - start < 0.5


def test_a_forged_uncompressed_size_is_refused(tmp_path):
    """A 2 GB uncompressed size declared in the zip directory is refused from the header."""
    data = bytearray(arrays_to_npz(type("T", (), DIGITS)(), list(DIGITS)))
    at = data.rfind(b"PK\x01\x02")  # the last member's directory entry
    struct.pack_into("<I", data, at + 24, 2**31 - 1)
    (tmp_path / "forged.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"'test_index' inflates to 2147483647 bytes"):
        load_task(tmp_path / "forged.npz")


def test_limits_on_the_file_members_and_directory(tmp_path):
    big = tmp_path / "big.npz"
    with big.open("wb") as f:
        f.truncate(LIMITS.file_bytes + 1)
    with pytest.raises(ValueError, match=r"is 33554433 bytes; at most 33554432 allowed"):
        load_task(big)
    many = tmp_path / "many.npz"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(LIMITS.members + 1):
            zf.writestr(f"a{i}.npy", b"")
    with pytest.raises(ValueError, match=r"has 33 members; at most 32 allowed"):
        load_task(many)
    directory = tmp_path / "directory.npz"
    with zipfile.ZipFile(directory, "w") as zf:
        for i in range(400):
            zf.writestr(f"{i:0200d}.npy", b"")
    with pytest.raises(ValueError, match=r"zip directory is \d+ bytes; at most 65536"):
        load_task(directory)
    twice = tmp_path / "twice.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(twice, "w") as zf:
            for name in ("pool_y", "pool_y"):
                buf = io.BytesIO()
                np.save(buf, DIGITS[name])
                zf.writestr(f"{name}.npy", buf.getvalue())
    with pytest.raises(ValueError, match=r"holds array 'pool_y' twice"):
        load_task(twice)


def test_corrupt_truncated_and_foreign_files_give_clear_errors(tmp_path):
    write(tmp_path, "good", DIGITS)
    good = (tmp_path / "good.npz").read_bytes()
    cases = {
        "empty": b"",
        "half": good[: len(good) // 2],
        "text": f"root:{SECRET}:19000:0:99999:7:::\n".encode(),
        "random": np.random.default_rng(0).bytes(4096),
    }
    for name, data in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
        with pytest.raises(ValueError, match=r"is not a readable \.npz file") as err:
            load_task(tmp_path / f"{name}.npz")
        assert_clean(str(err.value))
    # a flipped byte inside a compressed member: the CRC or zlib catches it
    write(tmp_path, "packed", DIGITS, compressed=True)
    data = bytearray((tmp_path / "packed.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt or truncated|not a valid \.npy|readable"):
        load_task(tmp_path / "flipped.npz")
    # an .npy header that declares more data than the member holds
    buf = io.BytesIO()
    np.save(buf, DIGITS["pool_y"])
    raw = buf.getvalue()[:-8]
    with zipfile.ZipFile(tmp_path / "short.npz", "w") as zf:
        for name, a in DIGITS.items():
            one = io.BytesIO()
            np.save(one, a)
            zf.writestr(f"{name}.npy", raw if name == "pool_y" else one.getvalue())
    with pytest.raises(
        ValueError,
        match=r"'pool_y' declares shape \(120,\) of int64 \(960 "
        r"bytes\) but holds 952 bytes",
    ):
        load_task(tmp_path / "short.npz")


# ---------------------------------------------------------------------------- the env


def test_a_bad_task_never_breaks_the_env(env, good_uri, tmp_path):
    env.reset(options={"benchmark": good_uri})
    for name, arrays in {
        "label99": changed(DIGITS, pool_y=y99),
        "nan": changed(DIGITS, pool_x=nan_x),
        "short": changed(DIGITS, pool_y=DIGITS["pool_y"][:50]),
    }.items():
        bad = write(tmp_path, name, arrays)
        with pytest.raises(ValueError, match=name == "nan" and "non-finite" or "pool_y"):
            env.reset(options={"benchmark": bad})
        obs, info = env.reset(options={"benchmark": good_uri})
        assert obs["features"].shape == (120, 76) and np.isfinite(obs["features"]).all()
        _, reward, _, _, info = env.step(obs["features"][:, 74])
        assert np.isfinite(reward) and info["kept"] == 115
    with pytest.raises(ValueError, match="label|out of range"):
        env.reset(options={"benchmark": write(tmp_path, "again", changed(DIGITS, pool_y=y99))})
    obs, _ = env.reset()  # without options: back to the last good task
    assert env.unwrapped.benchmark == good_uri and env.unwrapped.pool_size == 120
    env.step(np.zeros(120))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("abc", r"must hold numbers, got an array of dtype <U3 \(str\); allowed: 120 finite"),
        (np.full(120, np.nan), r"finite float32 numbers .* 120 are not, first at index 0: nan"),
        (np.r_[np.zeros(119), np.inf], r"1 are not, first at index 119: inf"),
        (np.full(120, 1e39), r"finite float32 numbers \(\|x\| < 3.4e38\)"),
        (np.zeros(119), r"shape \(120,\), one score per pool example; got shape \(119,\)"),
        (np.zeros((120, 1)), r"got shape \(120, 1\)"),
        (np.ones(120, dtype=bool),
         r"not a boolean mask \(to train on a mask, call env.unwrapped.retrain\(mask\)\); "
         r"allowed: 120 finite numbers"),
        (None, r"must hold numbers, got an array of dtype object \(NoneType\)"),
        ([1.0, "a"] * 60, r"must hold numbers"),
        ([[1.0], [1.0, 2.0]], r"must be an array of numbers|must hold numbers"),
        (np.zeros(120, complex), r"dtype complex128"),
    ],
)
def test_bad_actions_name_the_problem(env, good_uri, action, message):
    env.reset(options={"benchmark": good_uri})
    with pytest.raises(ValueError, match=message) as err:
        env.step(action)
    assert_clean(str(err.value))
    _, reward, *_ = env.step(np.arange(120.0))  # the episode goes on
    assert np.isfinite(reward)


def test_a_changed_cached_base_model_is_trained_again(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    base = small_text()["base"]
    trained = base_model(base, steps=2, batch=2)
    (path,) = (tmp_path / "models").glob("char-lm-*.pt")
    planted = {k: torch.zeros_like(v) for k, v in trained.state_dict().items()}
    buf = io.BytesIO()
    torch.save(planted, buf)
    path.write_bytes(buf.getvalue())  # weights planted in the cache, tag unchanged
    with pytest.warns(UserWarning, match="does not match its integrity tag"):
        again = base_model(base, steps=2, batch=2)
    for p, q in zip(trained.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    assert base_model(base, steps=2, batch=2).head.weight.abs().sum() > 0  # re-tagged
