"""gymnasium's check_env over every registered OptGym id (as Gymnasium's own test does)."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import optgym

OPTGYM_SPECS = [spec for spec in gym.registry.values() if spec.id.startswith("optgym/")]


def test_every_env_id_is_registered():
    assert {s.id for s in OPTGYM_SPECS} == set(optgym.ENV_IDS)


@pytest.mark.parametrize("spec", OPTGYM_SPECS, ids=lambda s: s.id)
def test_check_env(spec):
    env = gym.make(spec.id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
