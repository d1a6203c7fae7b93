"""The linear datamodeling score of influence methods on the data-selection task."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optgym.agents.dataselect.lds import METHODS, lds_of_scores, lds_per_method, main

DIGITS = "generator://digits-noisy-v0/0"


def test_lds_per_method_on_digits() -> None:
    lds = lds_per_method(DIGITS, subsets=12, queries=50)
    assert list(lds) == list(METHODS)
    for method, value in lds.items():
        assert math.isfinite(value) and -1 <= value <= 1, (method, value)
    assert lds["ekfac"] > 0.2
    # Curvature is what makes influence predictive here: EK-FAC beats the gradient dot product.
    assert lds["ekfac"] > lds["grad-dot"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ("ekfac", "tracin")}, "unknown influence methods"),
        ({"methods": ()}, "no methods"),
        ({"subsets": 2}, "subsets must be an integer >= 3"),
        ({"subsets": 5.0}, "subsets must be an integer"),
        ({"fraction": 1.0}, "fraction must be in"),
        ({"queries": 0}, "queries must be an integer in"),
        ({"benchmark": "generator://nope-v0/0"}, "bad benchmark"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lds_per_method(**kwargs)


def test_lds_of_scores_perfect_and_reversed_predictions() -> None:
    rng = np.random.default_rng(0)
    subsets = rng.random((20, 30)) < 0.5
    scores = rng.normal(size=(2, 30))
    losses = -(subsets.astype(float) @ scores.T)  # a lower loss exactly where predicted
    assert lds_of_scores(scores, subsets, losses) == pytest.approx(1.0)
    assert lds_of_scores(-scores, subsets, losses) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="shapes disagree"):
        lds_of_scores(scores, subsets, losses.T)


def test_cli_prints_one_line_per_method(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--subsets", "4", "--methods", "ekfac", "--queries", "10"])
    lines = capsys.readouterr().out.splitlines()
    figure = [line for line in lines if line.startswith("lds_")]
    assert len(figure) == 1 and figure[0].startswith("lds_ekfac: ")
    assert figure[0].endswith("(target: >= 0.5 for ekfac)")
    with pytest.raises(SystemExit):
        main(["--methods", "ekfac,bogus"])
