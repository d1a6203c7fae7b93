"""The learned value function / cost model of ``ScheduleSearch-v0`` (after Steiner et al.,
"Value learning for throughput optimization of deep neural networks", MLSys 2021).

:class:`ValueNet` reads one observation (the padded per-stage matrix of ``features.py``):
each valid row goes through a per-stage embedding (MLP ``N_FEATURES -> 64 -> 64``, ReLU),
a bidirectional LSTM (hidden 64 per direction) runs over the valid stages in scheduling
order, its outputs are mean-pooled over those stages and an MLP head gives one scalar: the
predicted log speedup over the naive schedule (the env's reward) of the best completion of
this (possibly partial) schedule. Inputs are standardized with a per-feature mean and
standard deviation fitted on training data and stored with the weights.

:class:`CostModel` wraps the network for inference (``predict``) and storage (``save``);
:func:`load_cost_model` reads a weights file, by default the shipped
``optgym/agents/weights/schedule_value.pt`` made by :data:`MAKE_COMMAND` (``optgym train``
of the learned agent ``value``, with ``--out`` the weights file).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from optgym.datasets.schedule.ops import FEATURE_NAMES
from optgym.envs.schedule import ENV_ID, ENV_ID_V1
from optgym.envs.schedule.features import ACQUIRED_NAMES, MAX_STAGES, N_FEATURES
from optgym.threads import single_thread

FORMAT = "optgym-schedule-value-v1"
N_INTRINSIC = len(FEATURE_NAMES)
WEIGHTS_NAME = "schedule_value.pt"
#: the shipped weights of each env (the two action spaces give different observations)
WEIGHTS_NAMES = {ENV_ID: WEIGHTS_NAME, ENV_ID_V1: "schedule_value_v1.pt"}
#: How the shipped weights are made (data collection and training), with ``--out FILE``.
MAKE_COMMAND = (
    "optgym train value --task schedule-search --dataset generator://halide-random-v0 "
    "--episodes 100 --budget measurements=540"
)
MAKE_COMMANDS = {
    ENV_ID: MAKE_COMMAND,
    ENV_ID_V1: (
        "optgym train value-v1 --task schedule-search-v1 --dataset "
        "generator://halide-random-v0 --episodes 100 --budget measurements=470"
    ),
}


def default_weights_path(env_id: str = ENV_ID) -> Path:
    """Where the shipped weights of ``env_id`` live: ``optgym/agents/weights/`` and
    ``schedule_value.pt`` (v0) or ``schedule_value_v1.pt`` (v1)."""
    if env_id not in WEIGHTS_NAMES:
        raise ValueError(
            f"no value network is shipped for {env_id!r}; one of {list(WEIGHTS_NAMES)}"
        )
    spec = importlib.util.find_spec("optgym.agents")
    if spec is None or spec.origin is None:  # pragma: no cover - optgym is always installed
        raise FileNotFoundError("cannot locate the optgym.agents package")
    return Path(spec.origin).parent / "weights" / WEIGHTS_NAMES[env_id]


def stage_counts(obs: np.ndarray | torch.Tensor) -> np.ndarray:
    """Valid stages per observation of a ``(batch, rows, N_FEATURES)`` stack: the number of
    leading rows whose intrinsic part is not all zero (padding rows are all zero)."""
    x = np.asarray(obs)
    if x.ndim == 2:
        x = x[None]
    valid = np.any(x[:, :, :N_INTRINSIC] != 0, axis=2)
    return np.cumprod(valid, axis=1).sum(axis=1).astype(np.int64)


class ValueNet(nn.Module):
    """Per-stage MLP embedding, bidirectional LSTM over the stages, mean pool, MLP head."""

    def __init__(self, n_features: int = N_FEATURES, embed: int = 64, hidden: int = 64):
        super().__init__()
        self.config = {"n_features": n_features, "embed": embed, "hidden": hidden}
        self.embed = nn.Sequential(
            nn.Linear(n_features, embed), nn.ReLU(), nn.Linear(embed, embed), nn.ReLU()
        )
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def set_normalization(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Standardize inputs by ``mean`` and ``std`` (features with std ~ 0 get std 1)."""
        std = np.where(np.asarray(std) > 1e-6, std, 1.0)
        self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, obs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``obs`` (batch, rows, features), raw; ``lengths`` (batch,) valid stages, >= 1.
        Returns (batch,) predicted rewards."""
        rows = int(lengths.max())
        x = (obs[:, :rows] - self.mean) / self.std
        e = self.embed(x)
        packed = nn.utils.rnn.pack_padded_sequence(
            e, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=rows)
        mask = (torch.arange(rows)[None, :] < lengths[:, None]).to(out.dtype)
        pooled = (out * mask[:, :, None]).sum(1) / lengths[:, None].to(out.dtype)
        return self.head(pooled).squeeze(-1)


def fit_normalization(obs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the valid rows of ``obs``."""
    rows = np.concatenate([o[:n] for o, n in zip(obs, lengths, strict=True)]).astype(np.float64)
    return rows.mean(axis=0), rows.std(axis=0)


class CostModel:
    """A :class:`ValueNet` for inference: ``predict(observations) -> rewards``."""

    def __init__(self, net: ValueNet | None = None, meta: dict[str, Any] | None = None):
        self.net = net if net is not None else ValueNet()
        self.net.eval()
        self.meta = dict(meta or {})

    def predict(self, observations: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Predicted rewards (float64, one per observation) of a list or stack of
        ``(MAX_STAGES, N_FEATURES)`` observations, on one torch thread."""
        x = np.asarray(observations, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != self.net.config["n_features"]:
            raise ValueError(
                f"observations must be (batch, rows, {self.net.config['n_features']}), "
                f"got shape {x.shape}"
            )
        if len(x) == 0:
            return np.zeros(0)
        lengths = np.maximum(stage_counts(x), 1)
        with single_thread(), torch.no_grad():
            self.net.eval()
            out = self.net(torch.from_numpy(x), torch.from_numpy(lengths))
        return out.numpy().astype(np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the weights, normalization and metadata to ``path`` (a torch file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": FORMAT,
                "config": dict(self.net.config),
                "feature_names": [*FEATURE_NAMES, *ACQUIRED_NAMES],
                "max_stages": MAX_STAGES,
                "state_dict": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
                "meta_json": json.dumps(self.meta, default=_plain),
            },
            path,
        )
        return path


def load_cost_model(path: str | Path | None = None, env_id: str = ENV_ID) -> CostModel:
    """The :class:`CostModel` in ``path`` (None: the shipped weights of ``env_id``);
    ``FileNotFoundError`` saying how to make them if the file is missing."""
    path = Path(path) if path is not None else default_weights_path(env_id)
    if not path.is_file():
        make = MAKE_COMMANDS.get(env_id, MAKE_COMMAND)
        raise FileNotFoundError(
            f"no schedule cost model weights at {path}; make them with `{make} --out "
            f"{path}` (collects measurements and trains, about 25 minutes), or pass the path "
            "of weights saved by `optgym train value`"
        )
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} weights file")
    names = [*FEATURE_NAMES, *ACQUIRED_NAMES]
    if list(blob["feature_names"]) != names:
        raise ValueError(
            f"{path} was trained on other observation features; retrain with "
            f"`{MAKE_COMMAND} --out {path}`"
        )
    net = ValueNet(**blob["config"])
    net.load_state_dict(blob["state_dict"])
    return CostModel(net, json.loads(blob.get("meta_json", "{}")))


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays in metadata."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


__all__ = [
    "CostModel",
    "ValueNet",
    "default_weights_path",
    "fit_normalization",
    "load_cost_model",
    "stage_counts",
]
