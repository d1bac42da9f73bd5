"""Search spaces: declared in YAML, validated with errors naming the parameter, sampled through Optuna.

    space:
      lr: {low: 1.0e-6, high: 5.0e-5, log: true}         # float (log scale)
      dropout: {low: 0.0, high: 0.3}                      # float (linear)
      head.layers: {low: 1, high: 4}                      # int (both bounds whole numbers)
      batch_size: [8, 16, 32]                             # categorical (a list)
      optimizer: {choices: [adamw, adafactor, lion]}
      lion_beta2: {low: 0.9, high: 0.999, when: {optimizer: lion}}     # exists only for Lion
      loss.smoothing: {low: 0.0, high: 0.2, when: {loss: [label_smoothing]}}

`type` (float, int, categorical) may be given explicitly; `step` discretises a numeric range. A
parameter with `when` exists only while every named categorical parameter takes one of the listed
values (conditions chain). Dotted names address nested task parameters (`head.layers` sets
`params["head"]["layers"]`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ehrlab.core.errors import SpecError
from ehrlab.core.hashing import canonical_json

Scalar = str | int | float | bool | None
_TYPES = ("float", "int", "categorical")
_KEYS = {"type", "low", "high", "log", "step", "choices", "when"}


@dataclass(frozen=True)
class Param:
    """One parameter of a search space."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Scalar, ...] = ()
    when: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)

    def distribution(self) -> BaseDistribution:
        if self.type == "categorical":
            return CategoricalDistribution(self.choices)
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high)
            if self.log:
                out["log"] = True
            if self.step is not None:
                out["step"] = self.step
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out

    def active(self, params: Mapping[str, Any]) -> bool:
        """Whether this parameter exists given the values chosen so far (parents come first)."""
        return all(parent in params and params[parent] in values for parent, values in self.when.items())


class SearchSpace:
    """Parameters in an order where every condition's parents come before the parameter."""

    def __init__(self, params: Iterable[Param]) -> None:
        self.params: dict[str, Param] = {p.name: p for p in params}

    @classmethod
    def parse(cls, data: Any, *, path: str = "space", source: str = "") -> SearchSpace:
        """Validates a space from its YAML form; every error names the parameter and the key."""
        if not isinstance(data, Mapping) or not data:
            raise SpecError("the search space is empty: declare at least one parameter", path=path, source=source)
        params = [_parse_param(str(name), body, path=f"{path}.{name}", source=source) for name, body in data.items()]
        space = cls(params)
        space._check_conditions(path, source)
        return space

    def _check_conditions(self, path: str, source: str) -> None:
        for param in self.params.values():
            for parent, values in param.when.items():
                where = f"{path}.{param.name}.when.{parent}"
                if parent == param.name:
                    raise SpecError("a parameter cannot depend on itself", path=where, source=source)
                if parent not in self.params:
                    raise SpecError(f"condition on unknown parameter {parent!r}", path=where, source=source)
                parent_param = self.params[parent]
                if parent_param.type != "categorical":
                    raise SpecError(f"conditions must name a categorical parameter; {parent!r} is "
                                    f"{parent_param.type}", path=where, source=source)
                unknown = [v for v in values if v not in parent_param.choices]
                if unknown:
                    raise SpecError(f"{unknown[0]!r} is not one of {parent!r}'s choices "
                                    f"{list(parent_param.choices)}: the parameter could never exist",
                                    path=where, source=source)
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in order:
                return
            if name in visiting:
                cycle = " -> ".join((*chain, name))
                raise SpecError(f"conditions form a cycle: {cycle}", path=f"{path}.{name}.when", source=source)
            visiting.add(name)
            for parent in self.params[name].when:
                visit(parent, (*chain, name))
            visiting.discard(name)
            order.append(name)

        for name in self.params:
            visit(name, ())
        self.params = {name: self.params[name] for name in order}
        for name in order:
            self._requirements(name, path, source)

    def _requirements(self, name: str, path: str, source: str) -> dict[str, set[Scalar]]:
        """Values each ancestor must take for `name` to exist; an empty set means it never can."""
        needed: dict[str, set[Scalar]] = {}
        for parent, values in self.params[name].when.items():
            for ancestor, allowed in [*self._requirements(parent, path, source).items(), (parent, set(values))]:
                needed[ancestor] = needed.get(ancestor, allowed) & allowed
                if not needed[ancestor]:
                    raise SpecError(f"contradictory conditions: {ancestor!r} would have to take two different "
                                    "values at once, so the parameter could never exist",
                                    path=f"{path}.{name}.when", source=source)
        return needed

    def to_dict(self) -> dict[str, Any]:
        return {name: p.to_dict() for name, p in self.params.items()}

    @property
    def fingerprint(self) -> str:
        """Canonical JSON: two spaces are the same space exactly when these are equal."""
        return canonical_json(self.to_dict())

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: p.distribution() for name, p in self.params.items()}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Samples every parameter that exists given the earlier choices."""
        chosen: dict[str, Any] = {}
        for name, param in self.params.items():
            if not param.active(chosen):
                continue
            if param.type == "categorical":
                chosen[name] = trial.suggest_categorical(name, list(param.choices))
            elif param.type == "int":
                chosen[name] = trial.suggest_int(name, int(param.low), int(param.high), log=param.log,
                                                 step=int(param.step or 1))
            else:
                chosen[name] = trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
        return chosen

    def size(self) -> float:
        """The number of distinct points (math.inf for any continuous parameter)."""
        if any(p.type == "float" and p.step is None for p in self.params.values()):
            return math.inf  # every parameter can exist (checked at parse), so one continuous one suffices
        return _count(self, list(self.params), {})

    def narrow(self, best: Sequence[Mapping[str, Any]], *, padding: float) -> SearchSpace:
        """The space around the best trials' parameters (the S2 rule in docs/hpo.md).

        Numeric parameters: the span [a, b] of the values among `best` (in log space for log
        parameters), widened on each side by `padding` x max(b - a, 10% of the original width),
        clipped to the original bounds. Categoricals: the choices that occur among `best`.
        Parameters that never occur among `best` keep their original range.
        """
        narrowed = []
        for name, param in self.params.items():
            values = [trial[name] for trial in best if name in trial]
            if not values:
                narrowed.append(param)
            elif param.type == "categorical":
                kept = tuple(c for c in param.choices if c in values)
                narrowed.append(Param(name, "categorical", choices=kept, when=param.when))
            else:
                narrowed.append(_narrow_numeric(param, values, padding))
        space = SearchSpace(narrowed)
        # a condition may now name a value its (narrowed) parent no longer offers: drop it from the condition
        for name, param in list(space.params.items()):
            when = {parent: tuple(v for v in values if v in space.params[parent].choices)
                    for parent, values in param.when.items()}
            if any(not values for values in when.values()):
                del space.params[name]
            else:
                space.params[name] = replace(param, when=when)
        return space


def _count(space: SearchSpace, names: list[str], chosen: dict[str, Any]) -> float:
    if not names:
        return 1
    name, rest = names[0], names[1:]
    param = space.params[name]
    if not param.active(chosen):
        return _count(space, rest, chosen)
    if param.type == "categorical":
        return sum(_count(space, rest, {**chosen, name: c}) for c in param.choices)
    if param.type == "float" and param.step is None:
        return math.inf
    step = param.step or 1
    points = math.floor((param.high - param.low) / step + 1e-9) + 1
    return points * _count(space, rest, chosen)


def _narrow_numeric(param: Param, values: list[Any], padding: float) -> Param:
    to_axis = math.log if param.log else float
    from_axis = math.exp if param.log else float
    low, high = to_axis(param.low), to_axis(param.high)
    span_low, span_high = min(map(to_axis, values)), max(map(to_axis, values))
    pad = padding * max(span_high - span_low, 0.1 * (high - low))
    new_low = from_axis(max(low, span_low - pad))
    new_high = from_axis(min(high, span_high + pad))
    if param.type == "int" or param.step is not None:
        step = param.step or 1
        new_low = param.low + math.floor((new_low - param.low) / step + 1e-9) * step
        new_high = param.low + math.ceil((new_high - param.low) / step - 1e-9) * step
        if param.type == "int":
            new_low, new_high = int(new_low), int(new_high)
    new_low, new_high = max(new_low, param.low), min(new_high, param.high)
    if new_low >= new_high:  # an int range that collapsed: keep one step either side where there is room
        step = param.step or 1
        new_low, new_high = max(param.low, new_low - step), min(param.high, new_high + step)
    return Param(param.name, param.type, low=new_low, high=new_high, log=param.log, step=param.step, when=param.when)


def _parse_param(name: str, body: Any, *, path: str, source: str) -> Param:
    def error(message: str, key: str = "") -> SpecError:
        return SpecError(message, path=f"{path}.{key}" if key else path, source=source)

    if not name or name.startswith(".") or name.endswith(".") or ".." in name:
        raise error(f"{name!r} is not a valid parameter name")
    if isinstance(body, list):
        body = {"type": "categorical", "choices": body}
    if not isinstance(body, Mapping):
        raise error(f"a parameter is a mapping (low/high, choices, …) or a list of choices, not {body!r}")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise error(f"unknown key (known: {', '.join(sorted(_KEYS))})", unknown[0])
    kind = body.get("type") or _infer_type(body)
    if kind not in _TYPES:
        raise error(f"unknown type {kind!r} (use one of {', '.join(_TYPES)})", "type")
    when = _parse_when(body.get("when"), error)
    if kind == "categorical":
        for key in ("low", "high", "log", "step"):
            if key in body:
                raise error("a categorical parameter takes `choices`, not numeric bounds", key)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise error("a categorical parameter needs a non-empty list of choices", "choices")
        for index, choice in enumerate(choices):
            if not isinstance(choice, Scalar):
                raise error(f"choices must be strings, numbers, booleans or null, not {choice!r}", f"choices[{index}]")
        if len({canonical_json(c) for c in choices}) != len(choices):
            raise error("choices contain a duplicate", "choices")
        return Param(name, kind, choices=tuple(choices), when=when)
    if "choices" in body:
        raise error(f"a {kind} parameter takes low/high, not choices", "choices")
    for key in ("low", "high"):
        value = body.get(key)
        if value is None:
            raise error(f"a {kind} parameter needs `{key}`", key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise error(f"`{key}` must be a finite number, not {value!r}", key)
        if kind == "int" and not float(value).is_integer():
            raise error(f"an int parameter needs whole-number bounds, not {value!r}", key)
    low, high = body["low"], body["high"]
    log = body.get("log", False)
    if not isinstance(log, bool):
        raise error("`log` is true or false", "log")
    step = body.get("step")
    if low >= high:
        raise error(f"low ({low}) must be below high ({high})", "low")
    if log and low <= 0:
        raise error(f"a log-scale range needs low > 0 (got {low})", "low")
    if step is not None:
        if log:
            raise error("`step` cannot be combined with a log scale", "step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise error(f"`step` must be a positive number, not {step!r}", "step")
        if kind == "int" and not float(step).is_integer():
            raise error("an int parameter needs a whole-number step", "step")
        if abs((high - low) / step - round((high - low) / step)) > 1e-9:
            raise error(f"step {step} does not divide high - low ({high - low})", "step")
    if kind == "int":
        return Param(name, kind, low=int(low), high=int(high), log=log, step=int(step) if step else None, when=when)
    return Param(name, kind, low=float(low), high=float(high), log=log, step=float(step) if step else None, when=when)


def _infer_type(body: Mapping[str, Any]) -> str:
    if "choices" in body:
        return "categorical"
    bounds = (body.get("low"), body.get("high"))
    if all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) and not isinstance(body.get("step"), float):
        return "int"
    return "float"


def _parse_when(when: Any, error: Any) -> dict[str, tuple[Scalar, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise error("`when` maps a categorical parameter to the value(s) under which this one exists", "when")
    parsed = {}
    for parent, values in when.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise error("an empty list of values: the parameter could never exist", f"when.{parent}")
        parsed[str(parent)] = tuple(values)
    return parsed


def apply_params(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Task parameters: `base` with each trial parameter set at its dotted path (`head.layers`)."""
    merged = _deep_copy(base)
    for name, value in params.items():
        node = merged
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return merged


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def params_key(params: Mapping[str, Any]) -> str:
    """A canonical form of a parameter set: equal sets (3 vs 3.0 included) have equal keys."""
    return canonical_json(dict(params))
