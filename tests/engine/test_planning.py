"""Planning: validation with file/key-path errors, content-hash keys, force and skip selection."""

from pathlib import Path

import pytest

from ehrlab.core.config import Layer
from ehrlab.core.errors import SpecError
from ehrlab.engine.planning import plan_experiment


def pipeline(**steps: dict) -> dict:
    return {"name": "p", "dataset": {"id": "d"}, "steps": steps}


def keys(spec: dict, **overrides) -> dict[str, str]:
    return {t.name: t.key for t in plan_experiment([Layer("exp.yaml", spec)], overrides or None).tasks}


CHAIN = pipeline(
    a={"kind": "noop", "params": {"payload": 1}},
    b={"kind": "noop", "inputs": {"x": "a"}, "params": {"payload": 2}},
    c={"kind": "noop", "inputs": {"x": "b"}},
    side={"kind": "noop", "inputs": {"x": "a"}, "params": {"payload": "side"}},
)


def test_keys_are_deterministic_and_follow_the_data() -> None:
    first = keys(CHAIN)
    assert first == keys(CHAIN)
    assert len(set(first.values())) == 4
    changed = pipeline(**{**CHAIN["steps"], "b": {"kind": "noop", "inputs": {"x": "a"}, "params": {"payload": 3}}})
    second = keys(changed)
    assert second["a"] == first["a"] and second["side"] == first["side"]      # upstream and siblings: unchanged
    assert second["b"] != first["b"] and second["c"] != first["c"]            # the step and what it feeds


def test_defaults_and_number_spellings_do_not_change_keys() -> None:
    explicit = pipeline(a={"kind": "noop", "params": {"payload": 1, "sleep_s": 0, "output_bytes": 0}})
    assert keys(explicit) == keys(pipeline(a={"kind": "noop", "params": {"payload": 1.0}}))


def test_the_dataset_is_part_of_the_key() -> None:
    other = {**CHAIN, "dataset": {"id": "other"}}
    assert keys(CHAIN)["a"] != keys(other)["a"]


def test_sources_are_hashed_by_content_not_path(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two" / "one.csv"
    two.parent.mkdir()
    one.write_text("a,b\n1,2\n")
    two.write_text("a,b\n1,2\n")
    spec = lambda path: pipeline(a={"kind": "noop", "inputs": {"table": {"source": str(path)}}})  # noqa: E731
    assert keys(spec(one)) == keys(spec(two))
    two.write_text("a,b\n1,3\n")
    assert keys(spec(one)) != keys(spec(two))
    with pytest.raises(SpecError, match=r"steps\.a\.inputs\.table: input source .* cannot be read"):
        keys(spec(tmp_path / "missing.csv"))


def test_force_reaches_everything_downstream() -> None:
    plan = plan_experiment([Layer("exp.yaml", CHAIN)], {"force": ["b"]})
    assert {t.name for t in plan.tasks if t.forced} == {"b", "c"}
    plan = plan_experiment([Layer("exp.yaml", CHAIN)], {"force": ["noop"], "skip": ["side"]})
    assert all(t.forced for t in plan.tasks)
    assert [t.name for t in plan.tasks if t.skip] == ["side"]


def test_tasks_come_in_dependency_order() -> None:
    spec = pipeline(z={"kind": "noop", "inputs": {"x": "y"}}, y={"kind": "noop", "after": ["x"]}, x={"kind": "noop"})
    assert [t.name for t in plan_experiment([Layer("exp.yaml", spec)]).tasks] == ["x", "y", "z"]


def test_interpolation_of_seed_and_dataset() -> None:
    spec = {**pipeline(a={"kind": "noop", "params": {"payload": {"seed": "${seed}", "root": "${dataset.root}/x"}}}),
            "seed": 7, "dataset": {"id": "d", "root": "/data"}}
    task = plan_experiment([Layer("exp.yaml", spec)]).tasks[0]
    assert task.params["payload"] == {"seed": 7, "root": "/data/x"}


@pytest.mark.parametrize(("spec", "message"), [
    (pipeline(a={"kind": "nop"}), r"exp\.yaml: steps\.a\.kind: unknown task kind 'nop' \(did you mean 'noop'\?\)"),
    (pipeline(a={"kind": "noop", "params": {"sleep_s": "long"}}), r"exp\.yaml: steps\.a\.params\.sleep_s: "),
    (pipeline(a={"kind": "noop", "params": {"bogus": 1}}), r"exp\.yaml: steps\.a\.params\.bogus: unknown key"),
    (pipeline(a={"kind": "noop", "colour": "red"}), r"exp\.yaml: steps\.a\.colour: unknown key"),
    (pipeline(a={"kind": "noop", "inputs": {"x": "b"}}), r"steps\.a\.inputs\.x: no task named 'b'"),
    (pipeline(a={"kind": "noop", "after": ["b"]}, b={"kind": "noop", "after": ["a"]}),
     r"dependency cycle: a -> b -> a"),
    (pipeline(a={"kind": "noop", "params": {"payload": "${nothing}"}}), r"unknown reference \$\{nothing\}"),
    ({"name": "p", "planner": "pipelin", "steps": {}},
     r"planner: unknown planner 'pipelin' \(did you mean 'pipeline'\?\)"),
    ({"name": "p", "steps": {}}, r"exp\.yaml: steps: "),
    ({"name": "bad name!", "steps": {"a": {"kind": "noop"}}}, r"exp\.yaml: name: "),
    ({**pipeline(a={"kind": "noop"}), "options": {"max_attempts": 0}}, r"options\.max_attempts: "),
    (pipeline(a={"kind": "noop", "resources": {"memory": "lots"}}), r"steps\.a\.resources\.memory: "),
    ({**pipeline(a={"kind": "noop"}), "dataset": {"id": "../etc"}}, r"dataset\.id: "),
])
def test_bad_specs_name_the_file_and_key_path(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        plan_experiment([Layer("exp.yaml", spec)])


def test_bad_overrides_name_the_option() -> None:
    with pytest.raises(SpecError, match=r"options\.force\[0\]: 'nothing' is neither a kind nor a task"):
        plan_experiment([Layer("exp.yaml", CHAIN)], {"force": ["nothing"]})


def test_the_error_names_the_layer_that_set_the_bad_value() -> None:
    base = Layer("base.yaml", {"name": "p", "steps": {"a": {"kind": "noop", "params": {"sleep_s": 1}}}})
    experiment = Layer("experiment.yaml", {"steps": {"a": {"params": {"sleep_s": "x"}}}})
    with pytest.raises(SpecError, match=r"^experiment\.yaml: steps\.a\.params\.sleep_s"):
        plan_experiment([base, experiment])
