"""ScheduleSearch-v1's expressive action space: decoding, legality, correct outputs, and
Halide's Adams2019 schedules re-expressed in it (the mapping of ``express.py``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import optgym  # noqa: F401
from optgym.datasets.schedule import HalideOpsDataset, load_spec
from optgym.envs.schedule.actions_v1 import COMPONENTS, NVEC, decode, encode, prior_action
from optgym.envs.schedule.env import reference_schedule
from optgym.envs.schedule.express import express
from optgym.envs.schedule.measure import Timer

CHAIN = "generator://halide-random-v0/2003"  # a few stencil/pointwise stages
OPS = "benchmark://halide-ops-v0/"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = gym.make(
        "optgym/ScheduleSearch-v1", samples=3, baseline_info=False, mode="cache",
        cache_path=tmp_path_factory.mktemp("v1") / "m.sqlite",
    )  # fmt: skip
    yield e.unwrapped
    e.close()


@pytest.fixture(scope="module")
def model_env():
    e = gym.make("optgym/ScheduleSearch-v1", mode="model", baseline_info=False)
    yield e.unwrapped
    e.close()


def test_the_action_space_is_v1s(env):
    env.reset(options={"benchmark": OPS + "matmul-192"})
    assert list(env.action_space.nvec) == list(NVEC) and len(NVEC) == len(COMPONENTS) == 15
    assert env.action_mask().shape == (int(NVEC.sum()),)
    with pytest.raises(ValueError, match="15 components"):
        env.step([0] * 9)  # a v0 action


def test_every_legal_action_decodes_and_encodes_back(model_env):
    """Random legal actions (model mode: nothing compiled) decode to a schedule that
    encodes back to an action of the same schedule, and the features follow every
    location an action can name."""
    rng = np.random.default_rng(0)
    for uri in (CHAIN, OPS + "resblock-64", OPS + "conv2d-relu-96"):
        for _ in range(20):
            model_env.reset(options={"benchmark": uri})
            for name in model_env.stage_names:
                action = prior_action(model_env.masks(), rng)
                shape = model_env.pipeline.stage(name).shape
                s = decode(action, shape)
                assert decode(encode(s, shape), shape) == s
                model_env.peek(action)
                model_env.step(action)


def test_random_v1_schedules_compile_and_compute_the_right_output(tmp_path):
    """Any mix of legal components is a legal schedule: compiled, run and checked against
    the NumPy reference (a wrong output is an error in ``info``)."""
    e = gym.make("optgym/ScheduleSearch-v1", samples=1, baseline_info=False, mode="measure")
    base = e.unwrapped
    rng = np.random.default_rng(1)
    try:
        for uri in (CHAIN, OPS + "resblock-64", OPS + "depthwise-relu-256", OPS + "blur-1024"):
            for _ in range(2):
                base.reset(options={"benchmark": uri})
                done, info = False, {}
                while not done:
                    _, _, done, _, info = base.step(prior_action(base.masks(), rng))
                assert "error" not in info, (uri, info.get("error"), base.render())
                assert info["speedup_vs_naive"] > 0
    finally:
        e.close()


def test_the_loop_nest_text_shows_middle_tiles_and_where_stages_go(env):
    env.reset(options={"benchmark": OPS + "conv2d-relu-96"})
    # relu: tiles 16 x 4 x 2 inside middle tiles 32 x 8 x 4, vector 16, inner tile unrolled
    relu = [0, 7, 3, 1, 1, 1, 1, 0, 0, 3, 4, 0, 0, 0, 0]
    env.step(relu)
    # conv: in relu's innermost middle loop (level 0), stored one loop further out
    conv = [2, 7, 3, 1, 0, 0, 0, 0, 0, 3, 4, 0, 2, 0, 1]
    env.step(conv)
    text = env.nest.loop_nest_text()
    assert "for x_m in [0, 2)" in text and "for c_m in [0, 2)" in text
    assert "realize conv (stored 1 loop(s) further out)" in text
    assert "for r_i in [0, 4) (reduction)" in text
    lines = text.splitlines()
    x_m = next(i for i, line in enumerate(lines) if "x_m" in line)
    conv_at = next(i for i, line in enumerate(lines) if "realize conv" in line)
    assert conv_at == x_m + 1  # computed inside relu's innermost middle loop


@pytest.mark.parametrize("name", ["matmul-192", "conv2d-relu-96", "resblock-64", "blur-1024"])
def test_adams2019_schedules_time_within_10_percent_when_expressed_in_v1(name, model_env):
    """Adams2019's own schedule (beam 1: quick to find), re-expressed as v1 actions by
    ``express``, stepped through the env (each action legal under its mask; model mode, so
    nothing is timed there) and timed paired against Adams2019's in one worker: within 10%
    (the benchmark ``schedule_space_adams.py`` checks all 12 test pipelines at beam 32)."""
    spec = load_spec(HalideOpsDataset().benchmark(OPS + name))
    adams = reference_schedule("Adams2019-beam1")
    timer = Timer(threads=1)
    try:
        source = timer.measure(spec.to_json(), adams).schedule_source
        actions = express(source, spec)
        model_env.reset(options={"benchmark": OPS + name})
        for stage in model_env.stage_names:
            model_env.step(actions[stage])
        ratios = []
        for _ in range(3):  # a slow spell of this shared machine can move one measurement
            m = timer.measure_paired(spec.to_json(), model_env.schedules, adams, fresh=True)
            assert m.output_ok
            ratios.append(m.ratio)
            if 0.9 <= m.ratio <= 1.1:
                break
        assert 0.9 <= ratios[-1] <= 1.1, ratios
    finally:
        timer.close()


@pytest.mark.parametrize(
    "source, message",
    [
        ("matmul\n    .fuse(x, y, t);", r"directive \.fuse\(\) is not one v1 expresses"),
        ("not a schedule at all", "neither a Func block nor a directive"),
        ("other\n    .compute_root();", "no stage of the pipeline"),
        ("matmul\n    .split(x, x, xi);", r"\.split\(\) takes"),
        ("x" * (2 << 20), "at most"),
        ("matmul\n    .vectorize();", r"\.vectorize\(\) takes 1 to 2 arguments, got 0"),
        ("matmul\n    .compute_at(matmul);", r"\.compute_at\(\) takes 2 arguments, got 1"),
        ("matmul\n    .split(x, x, xi, 0000099999999, T);", "factor must be an integer in"),
        ("matmul\n    .split(x, x, xi, 4, T).unroll(xi);", "a call in its arguments"),
        ("matmul\n    .split(q, q, qi, 4, T);", "splits a loop that is no pure loop"),
        (
            "matmul.update(0)\n    .split(r_matmul_y, r_matmul_y, ri, 4, Tail::GuardWithIf);\n"
            "matmul\n    .compute_root();",
            "reduction loop other than its last",
        ),
    ],
)
def test_a_source_v1_cannot_say_is_a_clear_error(source, message):
    spec = load_spec(HalideOpsDataset().benchmark(OPS + "matmul-192"))
    with pytest.raises(ValueError, match=message) as caught:
        express(source, spec)
    assert "xxxx" not in str(caught.value)  # the source is never echoed


def test_reference_actions_give_the_autoscheduler_schedule_as_v1_actions(model_env):
    model_env.reset(options={"benchmark": OPS + "conv2d-relu-96"})
    actions = model_env.reference_actions("Adams2019-beam1")
    assert len(actions) == len(model_env.stage_names) == 2
    for a in actions:
        model_env.step(a)  # each legal under the mask of its stage
    assert model_env.schedules["relu"].unroll_all  # Adams2019 unrolls its register tile
    with pytest.raises(ValueError, match="unknown autoscheduler reference 'naive'"):
        model_env.reference_actions("naive")
    v0 = gym.make("optgym/ScheduleSearch-v0", mode="model").unwrapped
    try:
        v0.reset(options={"benchmark": OPS + "matmul-192"})
        with pytest.raises(ValueError, match="needs optgym/ScheduleSearch-v1"):
            v0.reference_actions()
    finally:
        v0.close()


def test_local_search_from_adams2019_keeps_the_best_within_its_budget(model_env):
    from optgym.agents import make_agent
    from optgym.budget import Budget

    agent = make_agent("schedule-local")
    result = agent.solve(model_env, OPS + "resblock-64", Budget(calls=8), seed=0)
    assert result.budget_used["calls"] <= 8
    start = gym.make("optgym/ScheduleSearch-v1", mode="model", baseline_info=False).unwrapped
    try:  # the start alone: the search never returns anything worse than it
        start.reset(options={"benchmark": OPS + "resblock-64"})
        for a in start.reference_actions():
            _, reward, *_ = start.step(a)
        assert result.state.reward >= reward - 1e-9
        assert start.validate(result.state).ok
    finally:
        start.close()
