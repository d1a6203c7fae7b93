"""The contract every registered env keeps (optgym.env.OptGymEnv), checked id by id on the
example each problem record gives (``EnvEntry.example``: a small benchmark, a setting other
than the default, the steps an episode takes here).
"""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import optgym
from optgym.budget import Budget, BudgetExceeded
from optgym.env import OptGymEnv
from optgym.envs import problems
from optgym.state import EpisodeState
from optgym.wrappers import BudgetWrapper

# id -> (benchmark, a non-default constructor setting, steps per test episode)
CASES: dict[str, tuple[str, dict, int]] = {
    entry.id: (entry.example.benchmark, entry.example.config, entry.example.steps)
    for problem in problems().values()
    for entry in problem.envs
}
IDS = sorted(CASES)


def test_every_id_has_an_example():
    assert set(optgym.ENV_IDS) == set(CASES)
    for env_id, (benchmark, config, steps) in CASES.items():
        assert benchmark and config and steps >= 1, env_id


def _episode(env: OptGymEnv, env_id: str, seed: int = 0) -> list:
    """Reset on the case's benchmark and take its steps with seeded sampled actions (a whole
    schedule for ScheduleSearch, whose episode is one stage per step)."""
    benchmark, _, steps = CASES[env_id]
    env.reset(seed=seed, options={"benchmark": benchmark})
    env.action_space.seed(seed)
    infos = []
    taken = 0
    while taken < steps or (env_id == "optgym/ScheduleSearch-v0" and not env._done):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        infos.append(info)
        taken += 1
        if terminated or truncated:
            break
    return infos


@pytest.fixture(scope="module", params=IDS)
def made(request: pytest.FixtureRequest):
    """(id, env with the case's non-default config), one per id for the module."""
    env_id = request.param
    env = gym.make(env_id, **CASES[env_id][1]).unwrapped
    yield env_id, env
    env.close()


def test_config_is_recorded(made):
    env_id, env = made
    _, config, _ = CASES[env_id]
    assert isinstance(env, OptGymEnv)
    for key, value in config.items():
        assert env.config[key] == value
    assert "benchmark" not in env.config and "render_mode" not in env.config
    json.dumps(env.config)  # plain JSON


def test_state_round_trips_through_json(made):
    env_id, env = made
    _episode(env, env_id)
    state = env.state
    back = EpisodeState.from_json(state.to_json())
    assert back == state and back.config == state.config == env.config
    assert back.env_id == env_id and back.benchmark == CASES[env_id][0]


def test_state_validates_and_a_tampered_reward_does_not(made):
    env_id, env = made
    _episode(env, env_id)
    state = env.state
    result = env.validate(state)
    assert result.ok, result.error
    bad = EpisodeState.from_dict(state.to_dict())
    bad.reward = state.reward + 1.0 + abs(state.reward)
    tampered = env.validate(bad)
    assert not tampered.ok
    assert tampered.error


def test_work_unit_is_counted_in_every_info(made):
    env_id, env = made
    unit = env.work_unit
    assert unit and unit != "steps"
    benchmark = CASES[env_id][0]
    _, info = env.reset(options={"benchmark": benchmark})
    assert info[unit] == 0
    infos = _episode(env, env_id)
    assert all(unit in info and info[unit] >= 0 for info in infos)
    assert sum(info[unit] for info in infos) == env.episode_work >= 1


def test_fork_is_independent(made):
    env_id, env = made
    benchmark, _, steps = CASES[env_id]
    env.reset(seed=1, options={"benchmark": benchmark})
    env.action_space.seed(1)
    fork = env.fork()
    try:
        before = env.state
        fork.action_space.seed(2)
        fork.step(fork.action_space.sample())
        assert fork.state.actions != before.actions
        assert env.state.actions == before.actions and env.episode_reward == before.reward
        env.step(env.action_space.sample())
        assert len(fork.state.actions) == 1
    finally:
        fork.close()


def _same_observation(a, b) -> bool:
    """Equal observations; LNS's ``budget_left`` (CPU seconds left) may only have dropped."""
    if isinstance(a, dict):
        clock = "budget_left"
        if clock in a and a[clock][0] > b[clock][0]:
            return False
        return a.keys() == b.keys() and all(
            _same_observation(a[k], b[k]) for k in a if k != clock
        )
    if isinstance(a, gym.spaces.GraphInstance):
        return all(_same_observation(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


def test_named_observations_are_offered_and_computed_on_request(made):
    env_id, env = made
    view = env.observation
    names = list(view)
    assert names and names == list(type(env).observation_spaces) and len(view) == len(names)
    own = [name for name, space in view.spaces.items() if space == env.observation_space]
    assert own, f"{env_id}: its observation space has no name"
    obs, _ = env.reset(seed=0, options={"benchmark": CASES[env_id][0]})
    assert _same_observation(view[own[0]], obs)
    for name in names:
        assert name in view and view.spaces[name].contains(view[name]), name
    env.action_space.seed(0)
    obs = env.step(env.action_space.sample())[0]
    assert _same_observation(env.observation[own[0]], obs)  # the episode as it stands
    fork = env.fork()
    try:
        assert _same_observation(fork.observation[own[0]], obs)
    finally:
        fork.close()
    allowed = f"allowed: {', '.join(names)}$"
    with pytest.raises(KeyError, match=f"unknown observation space 'Nope'; {allowed}"):
        view["Nope"]
    with pytest.raises(ValueError, match=f"unknown observation space 'Nope'; {allowed}"):
        view.spaces["Nope"]
    assert "Nope" not in view and [] not in view


def test_state_replays_under_its_recorded_config(made):
    env_id, env = made
    _episode(env, env_id)
    state = env.state
    default = gym.make(env_id).unwrapped  # another config: validate rebuilds the env
    try:
        assert default.config != state.config
        result = default.validate(state)
        assert result.ok, result.error
        with pytest.raises(ValueError, match="another config"):
            default.apply(state)
    finally:
        default.close()


def test_budget_is_enforced_by_the_env(made):
    env_id, env = made
    benchmark = CASES[env_id][0]
    wrapped = BudgetWrapper(env, Budget(calls=1))
    try:
        wrapped.reset(options={"benchmark": benchmark})
        env.action_space.seed(0)
        spent = 0
        with pytest.raises(BudgetExceeded, match="is spent"):
            for _ in range(200):
                _, _, terminated, truncated, info = wrapped.step(env.action_space.sample())
                spent += info[env.work_unit]
                if terminated:
                    wrapped.reset(options={"benchmark": benchmark})
        assert spent <= 1 and wrapped.meter.calls <= 1
    finally:
        wrapped.detach()
    assert env.meter is None


def test_warm_up_needs_a_reset_and_keeps_the_episode(made):
    """``warm_up()``, which the runner calls between its reset and the agent's budget, is
    refused before a reset and leaves the episode as the reset made it."""
    env_id, env = made
    fresh = gym.make(env_id).unwrapped
    try:
        with pytest.raises(RuntimeError, match="reset"):
            fresh.warm_up()
    finally:
        fresh.close()
    env.reset(options={"benchmark": CASES[env_id][0]})
    before = env.state
    env.warm_up()
    assert env.state.actions == before.actions and env.meter is None


def test_failed_reset_leaves_the_env_usable(made):
    env_id, env = made
    benchmark = CASES[env_id][0]
    with pytest.raises(ValueError):
        env.reset(options={"benchmark": "benchmark://no-such-dataset-v0/x"})
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    env.reset(options={"benchmark": benchmark})
    assert env.benchmark == benchmark
    assert math.isfinite(env.episode_reward)


def test_unknown_reset_options_are_rejected(made):
    env_id, env = made
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"benchmark": CASES[env_id][0], "bench": 1})
    with pytest.raises(ValueError, match="URI string"):
        env.reset(options={"benchmark": np.int64(3)})
