"""Influence-guided data selection (DESIGN 2.5): ``optgym/DataSelection-v0`` removes or adds
pool examples, retrains a small model for real and rewards the drop in validation loss, on
the tasks of :mod:`optgym.datasets.dataselect`."""

from optgym.envs.dataselect.env import ENV_ID, MODES, DataSelectionEnv
from optgym.envs.dataselect.models import (
    evaluate,
    example_features,
    make_mlp,
    single_thread,
    train_mlp,
)

__all__ = [
    "ENV_ID",
    "MODES",
    "DataSelectionEnv",
    "evaluate",
    "example_features",
    "make_mlp",
    "single_thread",
    "train_mlp",
]
