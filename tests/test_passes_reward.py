"""PassOrdering-v0's episode reward is exact (issue 25): ``(initial count - count now) /
norm`` in one division of integers, never a float sum of steps whose last bits depend on the
path. A replay then either gives the very same float or a truly different program."""

from __future__ import annotations

import math
from fractions import Fraction

import gymnasium as gym
import pytest

import optgym  # noqa: F401  registers the envs
from optgym.envs.passes.env import cost_reduction_reward

MEDIUM = "generator://csmith-v0/6"  # 1,117 instructions, 324 after -Oz

#: 40 random actions (``default_rng(4).integers(124, size=40)``) on MEDIUM: 14 of them change
#: the count, and their step rewards summed in different orders give three different floats.
ACTIONS = [90, 116, 109, 63, 116, 121, 120, 10, 56, 75, 35, 46, 77, 99, 72, 21, 83, 108, 27,
           67, 41, 111, 7, 59, 111, 53, 17, 97, 119, 122, 115, 45, 90, 120, 71, 115, 73, 22,
           57, 75]  # fmt: skip

#: Two different pass sequences on MEDIUM that end at the same count (568) along different
#: counts: their step rewards, summed as they come, differ in the last bit.
SAME_COUNT = (
    ["-sccp", "-loop-rotate", "-sccp", "-sccp", "-ipsccp", "-jump-threading", "-jump-threading",
     "-inline", "-ipsccp", "-simplifycfg", "-correlated-propagation", "-instcombine"],
    ["-newgvn", "-correlated-propagation", "-dse", "-sccp", "-correlated-propagation",
     "-early-cse", "-ipsccp", "-simplifycfg", "-reassociate", "-loop-rotate", "-sccp",
     "-simplifycfg"],
)  # fmt: skip


@pytest.fixture(scope="module")
def env():
    e = gym.make("optgym/PassOrdering-v0")
    yield e.unwrapped
    e.close()


def _counts(env) -> tuple[int, int]:
    """The module's instruction count now, and -Oz's on the benchmark."""
    obs = env.observation
    return int(obs["IrInstructionCount"][0]), int(obs["IrInstructionCountOz"][0])


def test_many_steps_give_one_reward_whatever_the_grouping(env):
    env.reset(options={"benchmark": MEDIUM})
    start, oz = _counts(env)
    rewards = []
    for action in ACTIONS:
        _, reward, _, _, info = env.step(action)
        assert "error" not in info
        rewards.append(reward)
    end = _counts(env)[0]
    exact = float(Fraction(start - end, start - oz))  # the correctly rounded true value
    # The same step rewards summed in other orders and groupings disagree in the last bits:
    # a float sum would make the reward depend on the path.
    chunked = sum(sum(rewards[i : i + 7]) for i in range(0, len(rewards), 7))
    sums = {sum(rewards), sum(reversed(rewards)), chunked}
    assert len(sums) > 1 and max(sums) - min(sums) < 1e-14
    assert sum(Fraction(r).limit_denominator(start - oz) for r in rewards) == Fraction(
        start - end, start - oz
    )  # each step reward is its own reduction / norm
    state = env.state
    assert env.episode_reward == state.reward == exact
    assert exact == cost_reduction_reward(start, end, start - oz)

    # forks at several points, each going on from the last
    env.reset(options={"benchmark": MEDIUM})
    current, forks = env, []
    try:
        for lo, hi in ((0, 3), (3, 11), (11, 12), (12, 26), (26, 40)):
            for action in ACTIONS[lo:hi]:
                current.step(action)
            current = current.fork()
            forks.append(current)
        assert current.episode_reward == current.state.reward == exact
        assert current.state == state
    finally:
        for fork in forks:
            fork.close()

    # multistep in groups of 9
    env.reset(options={"benchmark": MEDIUM})
    for i in range(0, len(ACTIONS), 9):
        env.multistep(ACTIONS[i : i + 9])
    assert env.episode_reward == exact

    # a replay and a validation of the state
    assert env.apply(state) == env.episode_reward == exact
    result = env.validate(state)
    assert result.ok and result.reward == exact


def test_a_reference_step_then_actions_replays_to_the_same_float(env):
    env.reset(options={"benchmark": MEDIUM})
    start, oz = _counts(env)
    assert env.apply_reference("Oz")[1] == env.episode_reward == 1.0  # -Oz scores exactly 1
    fork = env.fork()
    try:
        for action in ACTIONS[:20]:
            env.step(action)
            fork.step(action)
        state = env.state
        exact = float(Fraction(start - _counts(env)[0], start - oz))
        assert env.episode_reward == fork.episode_reward == state.reward == exact
    finally:
        fork.close()
    assert env.apply(state) == exact
    assert env.validate(state).ok


def test_different_paths_to_the_same_count_give_the_same_reward(env):
    rewards, sums, ends = [], [], []
    for flags in SAME_COUNT:
        env.reset(options={"benchmark": MEDIUM})
        start, oz = _counts(env)
        steps = [env.step(env.action_index(flag))[1] for flag in flags]
        sums.append(sum(steps))
        ends.append(_counts(env)[0])
        rewards.append(env.episode_reward)
    assert ends[0] == ends[1]
    assert sums[0] != sums[1]  # what a float sum gave: a replay of one could not match the other
    assert rewards[0] == rewards[1] == float(Fraction(start - ends[0], start - oz))


def test_a_different_program_gives_a_truly_different_reward(env):
    env.reset(options={"benchmark": MEDIUM})
    start, oz = _counts(env)
    env.multistep([env.action_index(f) for f in SAME_COUNT[0]])
    state = env.state
    env.step(env.action_index("-instcombine"))  # one more pass: 4 instructions fewer
    other = env.state
    fewer = _counts(env)[0]
    assert fewer < 568
    # one instruction is 1/norm of reward: far more than the last bit of a float
    assert other.reward - state.reward == pytest.approx((568 - fewer) / (start - oz), rel=1e-9)
    assert env.apply(state) == state.reward
    # a claim off by one ulp is refused: exact means exact, and the env never drifts by one
    tampered = type(state)(**{**state.to_dict(), "reward": math.nextafter(state.reward, 2.0)})
    result = env.validate(tampered)
    assert not result.ok and "claimed reward" in str(result)
    assert result.reward == state.reward


def test_random_episodes_replay_to_the_same_float_in_another_worker(env):
    """24 random 45-step episodes on csmith-v0 and llvm-stress-v0 programs, each replayed by
    a second env (a worker process of its own): every reward is the very same float.
    ``benchmarks/pass_ordering_replay.py`` does this for 1,000 episodes."""
    import random

    replay = gym.make("optgym/PassOrdering-v0").unwrapped
    try:
        replayed = 0
        for i in range(24):
            gen = ("csmith-v0", "llvm-stress-v0")[i % 2]
            env.reset(options={"benchmark": f"generator://{gen}/{20 + i // 2}"})
            rng = random.Random(i)
            infos = [env.step(rng.randrange(env.action_space.n))[4] for _ in range(45)]
            if any("error" in info for info in infos):
                continue  # an LLVM crash on a pass (an LLVM bug): nothing to replay
            state = env.state
            assert replay.apply(state) == state.reward, (state.benchmark, i)
            replayed += 1
        assert replayed >= 20
    finally:
        replay.close()
