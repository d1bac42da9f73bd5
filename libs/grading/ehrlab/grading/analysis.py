"""The report of a grading experiment: scores per model pair and per case, agreement, failures, a plot.

- Scores: mean ± SD of the overall score per model pair (over every successful grade), raw and as a
  percentage of the rubric's best possible score (Σ positive weights), since rubrics differ in
  scale; per case and pair, the mean ± SD of that percentage.
- Agreement between grade replications: for each (note, rubric), its grade replications are
  exchangeable repeated measurements, so ICC(1,1) — one-way random effects, absolute agreement,
  single measurement (Shrout & Fleiss 1979) — with its F-based 95% interval. Unequal replication
  counts (failed grades) use the usual k0 correction.
- Agreement between rubric authors: per note, the two authors' rubrics give two percentages (each
  the mean over grade replications). Authors differ from case to case, so again ICC(1,1), plus
  Pearson's r and the mean absolute difference.
- Failures: every recorded failed attempt by type, and the notes and grades still failed.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrlab.grading.model import GradeResult, ModelPair, NoteResult

if TYPE_CHECKING:
    from ehrlab.grading.client import GradingClient


@dataclass(frozen=True)
class Interval:
    value: float
    lower: float
    upper: float
    groups: int


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float


@dataclass
class PairReport:
    pair_id: int
    label: str
    notes: int
    failed_notes: int
    grades: int
    failed_grades: int
    overall: Summary
    percent: Summary
    replication_icc: Interval
    author_icc: Interval
    author_pearson: float
    author_mean_abs_diff: float


@dataclass
class Report:
    experiment: str
    pairs: list[PairReport]
    cases: list[dict[str, Any]]                 # case, pair_id, n, mean %, sd %
    failures: dict[str, int]                    # failed attempts by error type
    still_failed: dict[str, int]                # notes/grades whose last attempt failed, by last error type
    skipped: list[dict[str, str]] = field(default_factory=list)
    percent_by_pair: dict[int, list[float]] = field(default_factory=dict, repr=False)   # what the plot shows

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        del body["percent_by_pair"]
        return _finite(body)


def summary(values: Sequence[float]) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(n, mean, sd)


def icc_oneway(groups: Iterable[Sequence[float]], confidence: float = 0.95) -> Interval:
    """ICC(1,1) of ratings grouped by target (groups with fewer than two ratings are left out)."""
    from scipy.stats import f as f_dist

    groups = [list(g) for g in groups if len(g) >= 2]
    n = len(groups)
    total = sum(len(g) for g in groups)
    if n < 2:
        return Interval(math.nan, math.nan, math.nan, n)
    grand = sum(sum(g) for g in groups) / total
    means = [sum(g) / len(g) for g in groups]
    between = sum(len(g) * (m - grand) ** 2 for g, m in zip(groups, means, strict=True)) / (n - 1)
    within = sum((v - m) ** 2 for g, m in zip(groups, means, strict=True) for v in g) / (total - n)
    k0 = (total - sum(len(g) ** 2 for g in groups) / total) / (n - 1)
    if within == 0:
        value = 1.0 if between > 0 else math.nan
        return Interval(value, value, value, n)
    icc = (between - within) / (between + (k0 - 1) * within)
    ratio = between / within
    tail = (1 + confidence) / 2
    low_f = ratio / f_dist.ppf(tail, n - 1, total - n)
    high_f = ratio * f_dist.ppf(tail, total - n, n - 1)
    return Interval(icc, (low_f - 1) / (low_f + k0 - 1), (high_f - 1) / (high_f + k0 - 1), n)


def pearson(pairs: Sequence[tuple[float, float]]) -> float:
    if len(pairs) < 3:
        return math.nan
    xs, ys = zip(*pairs, strict=True)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in pairs)
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan


def build_report(experiment: str, pairs: Sequence[ModelPair], notes: Sequence[NoteResult],
                 grades: Sequence[GradeResult], max_scores: Mapping[int, float], case_names: Mapping[int, str],
                 skipped: Sequence[dict[str, str]] = ()) -> Report:
    """max_scores: rubric id -> its best possible score; case_names: case id -> name."""
    note_by_id = {n.id: n for n in notes}
    done = [g for g in grades if not g.failed and g.overall is not None]
    percent = {g.id: 100.0 * g.overall / max_scores[g.rubric_id] for g in done if max_scores.get(g.rubric_id)}
    values_by_pair: dict[int, list[float]] = defaultdict(list)
    for g in done:
        if g.id in percent:
            values_by_pair[note_by_id[g.result_id].pair_id].append(percent[g.id])

    reports = []
    for pair in pairs:
        pair_notes = [n for n in notes if n.pair_id == pair.id]
        pair_grades = [g for g in grades if note_by_id[g.result_id].pair_id == pair.id]
        pair_done = [g for g in pair_grades if not g.failed and g.overall is not None]
        replications: dict[tuple[int, int], list[float]] = defaultdict(list)
        for g in pair_done:
            replications[(g.result_id, g.rubric_id)].append(g.overall)
        per_note: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for g in pair_done:
            if g.id in percent:
                per_note[g.result_id][g.rubric_id].append(percent[g.id])
        authors = [[sum(v) / len(v) for v in by_rubric.values()] for by_rubric in per_note.values()]
        two = [(a[0], a[1]) for a in authors if len(a) == 2]
        reports.append(PairReport(
            pair_id=pair.id, label=pair.label, notes=len(pair_notes),
            failed_notes=sum(n.failed for n in pair_notes), grades=len(pair_grades),
            failed_grades=sum(g.failed for g in pair_grades), overall=summary([g.overall for g in pair_done]),
            percent=summary(values_by_pair.get(pair.id, [])),
            replication_icc=icc_oneway(replications.values()), author_icc=icc_oneway(authors),
            author_pearson=pearson(two),
            author_mean_abs_diff=sum(abs(a - b) for a, b in two) / len(two) if two else math.nan))

    by_case: dict[tuple[int, int], list[float]] = defaultdict(list)
    for g in done:
        if g.id in percent:
            note = note_by_id[g.result_id]
            by_case[(note.case_id, note.pair_id)].append(percent[g.id])
    cases = [{"case": case_names.get(case_id, str(case_id)), "pair_id": pair_id, **asdict(summary(values))}
             for (case_id, pair_id), values in sorted(by_case.items())]

    failures: Counter[str] = Counter()
    still: Counter[str] = Counter()
    for what, rows in (("note", notes), ("grade", grades)):
        for row in rows:
            failures.update(f"{what}:{e.type}" for e in row.errors)
            if row.failed:
                still[f"{what}:{row.errors[-1].type if row.errors else 'unknown'}"] += 1
    return Report(experiment=experiment, pairs=reports, cases=cases, failures=dict(failures.most_common()),
                  still_failed=dict(still.most_common()), skipped=list(skipped), percent_by_pair=dict(values_by_pair))


def _finite(value: Any) -> Any:
    """NaN (no data) as null, so the JSON is valid everywhere."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _num(value: float, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(report: Report) -> str:
    lines = [f"# Grading experiment `{report.experiment}`", "",
             "| pair | notes (failed) | grades (failed) | overall mean ± SD | % of max mean ± SD | "
             "ICC replications [95% CI] | ICC authors [95% CI] | r authors |",
             "|---|---|---|---|---|---|---|---|"]
    for p in report.pairs:
        rep, auth = p.replication_icc, p.author_icc
        lines.append(
            f"| {p.pair_id}: {p.label} | {p.notes} ({p.failed_notes}) | {p.grades} ({p.failed_grades}) | "
            f"{_num(p.overall.mean)} ± {_num(p.overall.sd)} | {_num(p.percent.mean, 1)} ± {_num(p.percent.sd, 1)} | "
            f"{_num(rep.value)} [{_num(rep.lower)}, {_num(rep.upper)}] | "
            f"{_num(auth.value)} [{_num(auth.lower)}, {_num(auth.upper)}] | {_num(p.author_pearson)} |")
    lines += ["", "## Failures", ""]
    if report.failures:
        lines += [f"- {kind}: {count} failed attempt(s)" for kind, count in report.failures.items()]
        lines += [f"- still failed, {kind}: {count}" for kind, count in report.still_failed.items()]
    else:
        lines.append("none")
    if report.skipped:
        lines += ["", "## Skipped cases", ""] + [f"- {s['case']}: {s['reason']}" for s in report.skipped]
    lines += ["", "## Per case (% of max score)", "", "| case | pair | n | mean ± SD |", "|---|---|---|---|"]
    lines += [f"| {c['case']} | {c['pair_id']} | {c['n']} | {_num(c['mean'], 1)} ± {_num(c['sd'], 1)} |"
              for c in report.cases]
    return "\n".join(lines) + "\n"


def plot(report: Report, path: Path) -> Path:
    """Box plots of the % of max score per model pair, with mean ± SD beside each box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [p for p in report.pairs if report.percent_by_pair.get(p.pair_id)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.8 * len(pairs) + 2), 4.5))
    if pairs:
        data = [report.percent_by_pair[p.pair_id] for p in pairs]
        ax.boxplot(data, showfliers=False)
        for i, (p, values) in enumerate(zip(pairs, data, strict=True), start=1):
            ax.scatter([i + 0.25] * len(values), values, s=6, alpha=0.3, color="grey")
            ax.errorbar([i + 0.25], [p.percent.mean], yerr=[0 if math.isnan(p.percent.sd) else p.percent.sd],
                        fmt="o", color="tab:red", capsize=4)
        ax.set_xticks(range(1, len(pairs) + 1), [f"{p.pair_id}: {p.label}" for p in pairs], rotation=15,
                      ha="right", fontsize=8)
    ax.set_ylabel("overall score, % of the rubric's maximum")
    ax.set_title(f"{report.experiment}: scores per model pair (red: mean ± SD)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """report.json, report.md and pairs.png in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=1))
    (out / "report.md").write_text(markdown(report))
    return [out / "report.json", out / "report.md", plot(report, out / "pairs.png")]


def report_from_store(client: GradingClient, experiment: str | int) -> Report:
    """The report of an experiment, read through the GradingStore service."""
    from ehrlab.grading import wire

    detail = client.get_experiment(experiment)
    cases = client.get_cases(ids=list(detail.case_ids))
    max_scores = {r.id: r.max_score for c in cases for r in c.rubrics}
    skipped = [{"case": s.case_name, "reason": s.reason} for s in detail.skipped]
    return build_report(detail.experiment.name, [wire.pair_from(p) for p in detail.pairs],
                        list(client.notes(detail.experiment.id)), list(client.grades(detail.experiment.id)),
                        max_scores, {c.id: c.name for c in cases}, skipped)
