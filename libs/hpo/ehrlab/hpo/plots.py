"""Study plots as files: optimisation history, parameter importances, intermediate values.

The plots are drawn from the trials the hpo-controller returns (GetStudy with trials), rebuilt into an
in-memory Optuna study with the search space's distributions, so they need no database access.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState

from ehrlab.hpo.space import SearchSpace
from ehrlab.hpo.studies import StudyDefinition, TrialInfo

PLOTS = {
    "history": optuna.visualization.matplotlib.plot_optimization_history,
    "importances": optuna.visualization.matplotlib.plot_param_importances,
    "intermediate": optuna.visualization.matplotlib.plot_intermediate_values,
}


def rebuild(definition: StudyDefinition, trials: list[TrialInfo]) -> optuna.Study:
    """An in-memory Optuna study holding the finished trials, with their parameters' distributions."""
    space = SearchSpace.parse(definition.space)
    study = optuna.create_study(study_name=definition.name, direction=definition.direction)
    for trial in trials:
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            continue
        study.add_trial(optuna.trial.create_trial(
            state=trial.state, value=trial.value if trial.state == TrialState.COMPLETE else None,
            params=trial.params, distributions={n: space.params[n].distribution() for n in trial.params},
            intermediate_values=trial.intermediate, user_attrs=trial.user_attrs))
    return study


def write_plots(definition: StudyDefinition, trials: list[TrialInfo], out: Path) -> dict[str, Path | str]:
    """Writes <out>/<study>-<plot>.png for each plot; a plot that cannot be drawn yet gets the reason."""
    out.mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")  # files only, never a window
    study = rebuild(definition, trials)
    written: dict[str, Path | str] = {}
    for name, draw in PLOTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
            try:
                axes = draw(study)
            except (ValueError, RuntimeError) as exc:  # e.g. importances need two completed trials
                written[name] = f"not drawn: {exc}"
                continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        path = out / f"{definition.name}-{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        written[name] = path
    return written
