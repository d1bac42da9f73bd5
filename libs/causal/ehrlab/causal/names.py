"""Experiment names encode the simulation's strengths: `ce0p62_cy0p62_y0p2_i0p2`.

`ce` confounders -> exposure, `cy` confounders -> outcome, `y` outcome-only factors -> outcome,
`i` exposure-only factors (instruments) -> exposure; `0p62` reads 0.62.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ehrlab.core.errors import SpecError

_VALUE = r"\d+(?:p\d+)?"
_NAME = re.compile(rf"ce(?P<ce>{_VALUE})_cy(?P<cy>{_VALUE})_y(?P<y>{_VALUE})_i(?P<i>{_VALUE})")
EXAMPLE = "ce0p62_cy0p62_y0p2_i0p2"


@dataclass(frozen=True)
class Strengths:
    """How strongly each group of latent factors drives the exposure and the outcomes."""

    ce: float  # shared (confounding) factors -> exposure
    cy: float  # shared (confounding) factors -> outcome
    y: float   # outcome-only factors -> outcome
    i: float   # exposure-only factors (instruments) -> exposure

    @property
    def name(self) -> str:
        return "_".join(f"{field}{_format(getattr(self, field))}" for field in ("ce", "cy", "y", "i"))


def _format(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", "p")


def parse_experiment_name(name: str, *, path: str = "") -> Strengths:
    """The strengths an experiment name encodes; a malformed name is a SpecError naming the expected form."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise SpecError(f"malformed experiment name {name!r}: expected ce<v>_cy<v>_y<v>_i<v> with values "
                        f"written like 0p62 for 0.62, e.g. {EXAMPLE}", path=path)
    return Strengths(**{key: float(value.replace("p", ".")) for key, value in match.groupdict().items()})
