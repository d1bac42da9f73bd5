"""Search spaces: parsing, validation errors that name the parameter, conditional sampling, narrowing."""

from __future__ import annotations

import math

import optuna
import pytest

from ehrlab.core.errors import SpecError
from ehrlab.hpo.space import SearchSpace, apply_params, params_key

SPACE = {
    "lr": {"low": 1e-6, "high": 5e-5, "log": True},
    "dropout": {"low": 0.0, "high": 0.3},
    "head.layers": {"low": 1, "high": 4},
    "batch_size": [8, 16, 32],
    "optimizer": {"choices": ["adamw", "lion", "adafactor"]},
    "optimizer.beta2": {"low": 0.9, "high": 0.999, "when": {"optimizer": ["adamw", "lion"]}},
    "lion_only": {"choices": ["x", "y"], "when": {"optimizer": "lion"}},
    "deep": {"low": 0.0, "high": 1.0, "when": {"lion_only": "x"}},
}


def test_types_are_inferred_and_conditions_ordered() -> None:
    space = SearchSpace.parse(SPACE)
    kinds = {name: p.type for name, p in space.params.items()}
    assert kinds == {"lr": "float", "dropout": "float", "head.layers": "int", "batch_size": "categorical",
                     "optimizer": "categorical", "optimizer.beta2": "float", "lion_only": "categorical",
                     "deep": "float"}
    assert space.params["lr"].log
    order = list(space.params)
    assert order.index("optimizer") < order.index("lion_only") < order.index("deep")
    assert SearchSpace.parse(space.to_dict()).fingerprint == space.fingerprint


def test_conditional_parameters_exist_only_under_their_condition() -> None:
    space = SearchSpace.parse(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(200):
        params = space.suggest(study.ask())
        seen.add(params["optimizer"])
        assert ("optimizer.beta2" in params) == (params["optimizer"] in ("adamw", "lion"))
        assert ("lion_only" in params) == (params["optimizer"] == "lion")
        assert ("deep" in params) == (params.get("lion_only") == "x")
        assert 1e-6 <= params["lr"] <= 5e-5 and isinstance(params["head.layers"], int)
    assert seen == {"adamw", "lion", "adafactor"}


@pytest.mark.parametrize(("space", "path", "words"), [
    ({}, "space", "empty"),
    ({"lr": {"low": 0.1, "high": 0.01}}, "space.lr.low", "below high"),
    ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "space.lr.low", "low > 0"),
    ({"lr": {"low": 0.1}}, "space.lr.high", "needs `high`"),
    ({"lr": {"type": "complex", "low": 0, "high": 1}}, "space.lr.type", "unknown type"),
    ({"lr": {"low": 0, "high": 1, "scale": "log"}}, "space.lr.scale", "unknown key"),
    ({"bs": {"choices": []}}, "space.bs.choices", "non-empty"),
    ({"bs": [8, 8, 16]}, "space.bs.choices", "duplicate"),
    ({"bs": [[1, 2]]}, "space.bs.choices[0]", "strings, numbers"),
    ({"n": {"type": "int", "low": 1.5, "high": 4}}, "space.n.low", "whole-number"),
    ({"x": {"low": 0.0, "high": 1.0, "step": 0.3}}, "space.x.step", "does not divide"),
    ({"x": {"low": 0.0, "high": 1.0, "when": {"opt": "adam"}}}, "space.x.when.opt", "unknown parameter"),
    ({"opt": ["adam"], "x": {"low": 0.0, "high": 1.0, "when": {"opt": "sgd"}}}, "space.x.when.opt",
     "could never exist"),
    ({"a": {"low": 0.0, "high": 1.0}, "x": {"low": 0.0, "high": 1.0, "when": {"a": 0.5}}}, "space.x.when.a",
     "categorical"),
    ({"a": {"choices": [1, 2], "when": {"b": 1}}, "b": {"choices": [1, 2], "when": {"a": 1}}}, "when",
     "cycle"),
    ({"opt": ["adam", "sgd"], "m": {"choices": ["on", "off"], "when": {"opt": "sgd"}},
      "x": {"low": 0.0, "high": 1.0, "when": {"m": "on", "opt": "adam"}}}, "space.x.when", "contradictory"),
    ({"lr": "fast"}, "space.lr", "mapping"),
])
def test_bad_spaces_name_the_parameter(space: dict, path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        SearchSpace.parse(space, source="study.yaml")
    assert caught.value.path.startswith(path) or path in caught.value.path
    assert words in caught.value.message
    assert caught.value.source == "study.yaml"


def test_size_counts_finite_spaces() -> None:
    assert SearchSpace.parse({"a": [1, 2, 3], "b": {"low": 1, "high": 4}}).size() == 12
    assert SearchSpace.parse({"a": ["x", "y"], "b": {"choices": [1, 2], "when": {"a": "x"}}}).size() == 3
    assert SearchSpace.parse({"a": [1], "f": {"low": 0.0, "high": 1.0}}).size() == math.inf
    assert SearchSpace.parse({"f": {"low": 0.0, "high": 1.0, "step": 0.25}}).size() == 5


def test_narrowing_follows_the_documented_rule() -> None:
    space = SearchSpace.parse({"lr": {"low": 1e-6, "high": 1e-2, "log": True}, "drop": {"low": 0.0, "high": 1.0},
                               "layers": {"low": 1, "high": 8}, "opt": ["adamw", "lion", "sgd"],
                               "beta": {"low": 0.5, "high": 0.99, "when": {"opt": "lion"}}})
    best = [{"lr": 1e-4, "drop": 0.2, "layers": 3, "opt": "adamw"},
            {"lr": 1e-3, "drop": 0.4, "layers": 4, "opt": "adamw"}]
    narrow = space.narrow(best, padding=0.2)
    lr = narrow.params["lr"]
    span = math.log(1e-3) - math.log(1e-4)
    assert lr.low == pytest.approx(math.exp(math.log(1e-4) - 0.2 * span))
    assert lr.high == pytest.approx(math.exp(math.log(1e-3) + 0.2 * span))
    drop = narrow.params["drop"]
    assert (drop.low, drop.high) == (pytest.approx(0.16), pytest.approx(0.44))
    assert narrow.params["layers"].low <= 3 and narrow.params["layers"].high >= 4
    assert narrow.params["opt"].choices == ("adamw",)
    assert "beta" not in narrow.params  # its condition can no longer hold
    # a span collapsed to one point still gets room: 10% of the original width, padded
    single = space.narrow([{"lr": 1e-4, "drop": 0.5, "layers": 2, "opt": "lion", "beta": 0.9}], padding=0.2)
    assert single.params["drop"].low == pytest.approx(0.48) and single.params["drop"].high == pytest.approx(0.52)
    assert single.params["beta"].low < 0.9 < single.params["beta"].high


def test_apply_params_sets_dotted_paths_without_touching_the_base() -> None:
    base = {"lr": 1.0, "head": {"pooling": "cls", "layers": 1}}
    merged = apply_params(base, {"head.layers": 3, "optimizer.name": "lion", "lr": 0.1})
    assert merged == {"lr": 0.1, "head": {"pooling": "cls", "layers": 3}, "optimizer": {"name": "lion"}}
    assert base["head"]["layers"] == 1
    assert params_key({"a": 3}) == params_key({"a": 3.0})
