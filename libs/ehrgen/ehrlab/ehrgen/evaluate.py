"""Evaluation of synthetic records against held-out real ones: a JSON report and plots.

Sections of the report (docs/ehrgen.md explains each number):
- validity      records with an age- or sex-impossible code (ehrlab.cohort.icd9 rules at the record's age),
                a code twice in one visit, or a malformed structure (no visits, an empty visit);
- coherence     as PromptEHR: Jensen-Shannon divergence of code frequencies (base 2, 0..1), overlap of
                the 100 most frequent codes, co-occurrence score, KS tests on visits per record and
                codes per visit;
- fidelity      as HALO: R² between real and synthetic code probabilities per visit (unigram), pair
                probabilities within a visit (bigram), and P(code in next visit | code in this visit);
                `ceiling` gives the same R² between held-out and training data, the best a perfect
                generator could show at these sample sizes;
- diversity     distinct codes generated against the codes seen at least 5 times in training data;
- privacy       membership inference by the Hamming distance to the nearest synthetic record (members:
                training records; non-members: held-out ones), attribute inference from the nearest record;
- perplexity    on held-out records: next-visit prediction and within-visit infilling.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse, stats
from scipy.spatial.distance import jensenshannon

from ehrlab.cohort import icd9
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.data import Corruption, Example, collate, encode_patients, load_patients, split_patients
from ehrlab.ehrgen.kinds import EvaluateGeneratorParams
from ehrlab.ehrgen.records import Patient, write_jsonl
from ehrlab.ehrgen.tokenizer import IGNORE, MASK_INDEX

if TYPE_CHECKING:
    from ehrlab.ehrgen.artifact import GeneratorBundle

FREQUENT = 5           # a code seen this often in training counts for diversity
TOP = 100
CONDITIONAL_SUPPORT = 20   # conditional probabilities need this many real visits with the conditioning code
KNOWN_CODES = 100      # attribute inference: the attacker knows which of the 100 most common codes a record has
TARGETS = {            # report path -> (bound, "min" | "max")
    "validity.valid_fraction": (1.0, "min"),
    "fidelity.unigram_r2": (0.95, "min"),
    "fidelity.bigram_r2": (0.85, "min"),
    "coherence.js_divergence": (0.05, "max"),
    "coherence.top100_overlap": (0.85, "min"),
    "diversity.coverage_of_frequent": (0.90, "min"),
    "privacy.membership_accuracy": (0.55, "max"),
}


# -- validity ------------------------------------------------------------------------------------------

def validity(patients: Sequence[Patient]) -> dict[str, Any]:
    """Fractions of records breaking each rule; a record counts once per kind of problem."""
    vocabulary = sorted({code for p in patients for visit in p.visits for code in visit})
    index = {code: i for i, code in enumerate(vocabulary)}
    rules = icd9.rules_for(vocabulary)
    age_bad = sex_bad = duplicate = malformed = invalid = 0
    examples: list[str] = []
    for start in range(0, len(patients), 1024):
        chunk = patients[start:start + 1024]
        ages = np.array([p.age for p in chunk], dtype=np.float64)
        age_ok = rules.mask(ages, None)
        sex_ok = rules.mask(np.full(len(chunk), np.nan), [p.sex for p in chunk])
        for row, patient in enumerate(chunk):
            codes = [index[c] for visit in patient.visits for c in visit]
            bad_age = not age_ok[row, codes].all()
            bad_sex = not sex_ok[row, codes].all()
            dup = any(len(set(v)) != len(v) for v in patient.visits)
            bad_shape = not patient.visits or any(not v for v in patient.visits)
            age_bad += bad_age
            sex_bad += bad_sex
            duplicate += dup
            malformed += bad_shape
            invalid += bad_age or bad_sex or dup or bad_shape
            if (bad_age or bad_sex) and len(examples) < 5:
                code = next(c for v in patient.visits for c in v if icd9.violations(c, patient.age, patient.sex))
                examples.append(icd9.violations(code, patient.age, patient.sex)[0])
    n = max(len(patients), 1)
    return {"records": len(patients), "age_violation_rate": age_bad / n, "sex_violation_rate": sex_bad / n,
            "duplicate_rate": duplicate / n, "malformed_rate": malformed / n, "valid_fraction": 1 - invalid / n,
            "examples": examples}


# -- frequencies and matrices ------------------------------------------------------------------------------

def _visit_matrix(patients: Sequence[Patient], index: dict[str, int]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Binary visits x codes matrix, and the record of each visit."""
    rows, cols, owners = [], [], []
    n_visits = 0
    for p, patient in enumerate(patients):
        for visit in patient.visits:
            for code in set(visit):
                rows.append(n_visits)
                cols.append(index[code])
            owners.append(p)
            n_visits += 1
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(n_visits, len(index)))
    return matrix, np.asarray(owners)


def _r2(real: sparse.spmatrix | np.ndarray, synthetic: sparse.spmatrix | np.ndarray, keys: Any = None) -> float:
    """R² of synthetic against real values over the keys either has (or the given keys)."""
    if sparse.issparse(real):
        real, synthetic = sparse.csr_matrix(real), sparse.csr_matrix(synthetic)
        if keys is None:
            keys = (abs(real) + abs(synthetic)).nonzero()
        r = np.asarray(real[keys]).ravel()
        s = np.asarray(synthetic[keys]).ravel()
    else:
        r, s = np.asarray(real).ravel(), np.asarray(synthetic).ravel()
    if r.size < 2 or np.var(r) == 0:
        return float("nan")
    return float(1 - np.sum((r - s) ** 2) / np.sum((r - r.mean()) ** 2))


class _Stats:
    """Per-visit code probabilities, within-visit pair probabilities and consecutive-visit conditionals."""

    def __init__(self, patients: Sequence[Patient], index: dict[str, int]) -> None:
        matrix, owners = _visit_matrix(patients, index)
        n_visits = max(matrix.shape[0], 1)
        self.unigram = np.asarray(matrix.sum(0)).ravel() / n_visits
        pairs = sparse.triu(matrix.T @ matrix, k=1)
        self.bigram = pairs / n_visits
        consecutive = np.flatnonzero(owners[1:] == owners[:-1])
        before, after = matrix[consecutive], matrix[consecutive + 1]
        self.condition_counts = np.asarray(before.sum(0)).ravel()
        joint = sparse.csr_matrix(before.T @ after)
        inverse = np.divide(1.0, self.condition_counts, out=np.zeros_like(self.condition_counts),
                            where=self.condition_counts > 0)
        self.conditional = sparse.diags(inverse) @ joint


def fidelity(real: Sequence[Patient], synthetic: Sequence[Patient]) -> dict[str, float]:
    index = _index(real, synthetic)
    r, s = _Stats(real, index), _Stats(synthetic, index)
    supported = np.flatnonzero(r.condition_counts >= CONDITIONAL_SUPPORT)
    keep = sparse.diags(np.isin(np.arange(len(index)), supported).astype(float))
    real_cond, syn_cond = keep @ r.conditional, keep @ s.conditional
    return {"unigram_r2": _r2(r.unigram, s.unigram), "bigram_r2": _r2(r.bigram, s.bigram),
            "conditional_r2": _r2(real_cond, syn_cond, real_cond.nonzero()),
            "conditional_codes": len(supported)}


def _index(*groups: Sequence[Patient]) -> dict[str, int]:
    codes = sorted({code for group in groups for p in group for visit in p.visits for code in visit})
    return {code: i for i, code in enumerate(codes)}


# -- coherence and diversity ---------------------------------------------------------------------------

def _pairs(patients: Sequence[Patient]) -> set[tuple[str, str]]:
    return {(a, b) for p in patients for visit in p.visits for a in visit for b in visit if a < b}


def coherence(real: Sequence[Patient], synthetic: Sequence[Patient]) -> dict[str, float]:
    real_counts = Counter(c for p in real for v in p.visits for c in v)
    syn_counts = Counter(c for p in synthetic for v in p.visits for c in v)
    codes = sorted(set(real_counts) | set(syn_counts))
    p = np.array([real_counts[c] for c in codes], dtype=float)
    q = np.array([syn_counts[c] for c in codes], dtype=float)
    js = float(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2) if p.sum() and q.sum() else float("nan")
    top_real = {c for c, _ in real_counts.most_common(TOP)}
    top_syn = {c for c, _ in syn_counts.most_common(TOP)}
    real_pairs, syn_pairs = _pairs(real), _pairs(synthetic)
    observed = syn_pairs & real_pairs
    visits = stats.ks_2samp([len(x.visits) for x in real], [len(x.visits) for x in synthetic])
    lengths = stats.ks_2samp([len(v) for x in real for v in x.visits], [len(v) for x in synthetic for v in x.visits])
    return {
        "js_divergence": js,
        "top100_overlap": len(top_real & top_syn) / max(1, min(TOP, len(top_real))),
        # PromptEHR's co-occurrence score: distinct synthetic pairs also seen in real data, per distinct code
        "cooccurrence_score": len(observed) / max(1, len(syn_counts)),
        "cooccurrence_score_real": len(real_pairs) / max(1, len(real_counts)),
        "pair_precision": len(observed) / max(1, len(syn_pairs)),
        "ks_visits_per_record": float(visits.statistic), "ks_visits_per_record_p": float(visits.pvalue),
        "ks_codes_per_visit": float(lengths.statistic), "ks_codes_per_visit_p": float(lengths.pvalue),
        "mean_visits_real": float(np.mean([len(x.visits) for x in real])) if real else float("nan"),
        "mean_visits_synthetic": float(np.mean([len(x.visits) for x in synthetic])) if synthetic else float("nan"),
    }


def diversity(train: Sequence[Patient], real: Sequence[Patient], synthetic: Sequence[Patient]) -> dict[str, float]:
    train_counts = Counter(c for p in train for v in p.visits for c in v)
    frequent = {c for c, n in train_counts.items() if n >= FREQUENT}
    generated = {c for p in synthetic for v in p.visits for c in v}
    return {"distinct_synthetic": len(generated), "distinct_real": len({c for p in real for v in p.visits for c in v}),
            "distinct_train": len(train_counts), "frequent_train": len(frequent),
            "coverage_of_frequent": len(generated & frequent) / max(1, len(frequent))}


# -- privacy -------------------------------------------------------------------------------------------

def _record_matrix(patients: Sequence[Patient], index: dict[str, int]) -> sparse.csr_matrix:
    rows, cols = [], []
    for p, patient in enumerate(patients):
        for code in {c for v in patient.visits for c in v if c in index}:
            rows.append(p)
            cols.append(index[code])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(patients), len(index)))


def _nearest(targets: sparse.csr_matrix, synthetic: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distance to, and index of, the nearest synthetic record (|a| + |b| - 2 a.b)."""
    target_sizes = np.asarray(targets.sum(1)).ravel()
    synthetic_sizes = np.asarray(synthetic.sum(1)).ravel()
    distances, nearest = np.empty(targets.shape[0]), np.empty(targets.shape[0], dtype=np.int64)
    for start in range(0, targets.shape[0], 512):
        overlap = (targets[start:start + 512] @ synthetic.T).toarray()
        hamming = target_sizes[start:start + 512, None] + synthetic_sizes[None, :] - 2 * overlap
        nearest[start:start + 512] = hamming.argmin(1)
        distances[start:start + 512] = hamming.min(1)
    return distances, nearest


def privacy(members: Sequence[Patient], non_members: Sequence[Patient], synthetic: Sequence[Patient],
            train: Sequence[Patient], rng: np.random.Generator, *, known_codes: int = KNOWN_CODES
            ) -> dict[str, float]:
    """Membership inference (a nearest-record distance at most the median says 'member') and attribute inference."""
    n = min(len(members), len(non_members))
    if n == 0 or not synthetic:
        return {}
    members = [members[i] for i in rng.choice(len(members), n, replace=False)]
    non_members = [non_members[i] for i in rng.choice(len(non_members), n, replace=False)]
    index = _index(members, non_members, synthetic)
    syn = _record_matrix(synthetic, index)
    member_d, _ = _nearest(_record_matrix(members, index), syn)
    other_d, _ = _nearest(_record_matrix(non_members, index), syn)
    threshold = np.median(np.r_[member_d, other_d])
    accuracy = (np.sum(member_d <= threshold) + np.sum(other_d > threshold)) / (2 * n)
    auc = stats.mannwhitneyu(other_d, member_d).statistic / (n * n)   # P(member closer than non-member)
    known = [c for c, _ in Counter(c for p in train for v in p.visits for c in set(v)).most_common(known_codes)]
    return {"membership_accuracy": float(accuracy), "membership_auc": float(auc), "attack_records": 2 * n,
            "mean_distance_members": float(member_d.mean()), "mean_distance_non_members": float(other_d.mean()),
            **_attribute_inference(members, non_members, synthetic, known)}


def _attribute_inference(members: Sequence[Patient], non_members: Sequence[Patient], synthetic: Sequence[Patient],
                         known: list[str]) -> dict[str, float]:
    """The attacker knows which common codes a record has and guesses its other codes from the synthetic
    record nearest on the known ones; F1 for members against non-members shows what training leaks."""
    known_index = {c: i for i, c in enumerate(known)}
    syn_known = _record_matrix(synthetic, known_index)
    known_set = set(known)

    def f1(group: Sequence[Patient]) -> float:
        _, nearest = _nearest(_record_matrix(group, known_index), syn_known)
        scores = []
        for patient, k in zip(group, nearest, strict=True):
            truth = {c for v in patient.visits for c in v} - known_set
            guess = {c for v in synthetic[k].visits for c in v} - known_set
            if truth or guess:
                hits = len(truth & guess)
                scores.append(2 * hits / (len(truth) + len(guess)))
        return float(np.mean(scores)) if scores else float("nan")

    member_f1, other_f1 = f1(members), f1(non_members)
    return {"attribute_f1_members": member_f1, "attribute_f1_non_members": other_f1,
            "attribute_advantage": member_f1 - other_f1}


# -- the report -----------------------------------------------------------------------------------------

def evaluate_records(real: Sequence[Patient], synthetic: Sequence[Patient], *, train: Sequence[Patient] = (),
                     seed: int = 0, max_members: int = 2000) -> dict[str, Any]:
    """The report of synthetic records against held-out real ones (and training ones, for diversity,
    privacy and the fidelity ceiling). Needs no model."""
    if not real:
        raise SpecError("no held-out records to compare with", path="heldout")
    if not synthetic:
        raise SpecError("no synthetic records to evaluate", path="synthetic")
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {
        "records": {"real": len(real), "synthetic": len(synthetic), "train": len(train)},
        "validity": {**validity(synthetic), "real": validity(real)},
        "coherence": coherence(real, synthetic),
        "fidelity": fidelity(real, synthetic),
        "diversity": diversity(train or real, real, synthetic),
    }
    if train:
        sample = [train[i] for i in rng.choice(len(train), min(len(train), len(real)), replace=False)]
        report["fidelity"]["ceiling"] = fidelity(real, sample)
        report["privacy"] = privacy(train[:max_members] if len(train) <= max_members else
                                    [train[i] for i in rng.choice(len(train), max_members, replace=False)],
                                    real, synthetic, train, rng)
    return report


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The benchmark targets of the issue, each with its value and whether it is met."""
    out = {}
    for path, (bound, kind) in TARGETS.items():
        value = lookup(report, path)
        met = value is not None and not math.isnan(value) and (value >= bound if kind == "min" else value <= bound)
        out[path] = {"value": value, "target": f"{'>=' if kind == 'min' else '<='} {bound}", "met": bool(met)}
    return out


def lookup(report: dict[str, Any], path: str) -> float | None:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def write_plots(real: Sequence[Patient], synthetic: Sequence[Patient], directory: Path) -> list[Path]:
    """code_frequency.png (real vs synthetic code probabilities, log-log) and visit_lengths.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = _index(real, synthetic)
    r, s = _Stats(real, index).unigram, _Stats(synthetic, index).unigram
    floor = 0.5 / max(len(synthetic), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(np.maximum(r, floor), np.maximum(s, floor), s=6, alpha=0.5)
    low, high = floor, max(r.max(initial=floor), s.max(initial=floor)) * 1.5
    ax.plot([low, high], [low, high], color="grey", linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="real: P(code in a visit)", ylabel="synthetic: P(code in a visit)",
           title=f"Code frequencies (R² {_r2(r, s):.3f})")
    fig.tight_layout()
    paths = [directory / "code_frequency.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, title, measure in ((axes[0], "visits per record", lambda ps: [len(p.visits) for p in ps]),
                               (axes[1], "codes per visit", lambda ps: [len(v) for p in ps for v in p.visits])):
        real_values, syn_values = measure(real), measure(synthetic)
        bins = np.arange(0, max(max(real_values), max(syn_values)) + 2) - 0.5
        ax.hist(real_values, bins=bins, density=True, alpha=0.5, label="real")
        ax.hist(syn_values, bins=bins, density=True, alpha=0.5, label="synthetic")
        ax.set(title=title, ylabel="fraction")
        ax.legend()
    fig.tight_layout()
    paths.append(directory / "visit_lengths.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


# -- perplexity ------------------------------------------------------------------------------------------

def perplexity(bundle: GeneratorBundle, patients: Sequence[Patient], *, seed: int = 0, batch_size: int = 64,
               corruption: Corruption | None = None) -> dict[str, float]:
    """Held-out perplexity of the last visit given the earlier ones (next-visit), and of a masked span of
    codes given the rest of the record (within-visit infilling, span length Poisson(λ) at least 1)."""
    import torch

    tokenizer, model = bundle.tokenizer, bundle.model
    span_lambda = (corruption or Corruption()).span_lambda
    unit = len(tokenizer.unit(0)) if tokenizer.codes else 1
    rng = np.random.default_rng(seed)
    tasks: dict[str, list[tuple[Example, list[int]]]] = {"next_visit": [], "infilling": []}
    for patient in encode_patients(patients, tokenizer, model.config.max_positions):
        target = tokenizer.tokens(patient.visits)
        if len(patient.visits) >= 2:
            start = len(tokenizer.tokens(patient.visits[:-1], close=False))   # the last visit's <v>
            encoder = tokenizer.tokens(patient.visits[:-1])
            tasks["next_visit"].append((Example(encoder, target, patient.age, patient.sex),
                                        list(range(start, len(target)))))
        if patient.visits:
            k = int(rng.integers(0, len(patient.visits)))
            visit = patient.visits[k]
            length = int(np.clip(rng.poisson(span_lambda), 1, len(visit)))
            begin = int(rng.integers(0, len(visit) - length + 1))
            masked = [*visit[:begin], MASK_INDEX, *visit[begin + length:]]
            first_code = len(tokenizer.tokens(patient.visits[:k], close=False)) + 1
            positions = list(range(first_code + unit * begin, first_code + unit * (begin + length)))
            encoder = tokenizer.tokens([*patient.visits[:k], masked, *patient.visits[k + 1:]])
            tasks["infilling"].append((Example(encoder, target, patient.age, patient.sex), positions))
    device = next(model.parameters()).device
    out: dict[str, float] = {}
    with torch.inference_mode():
        for name, items in tasks.items():
            total, count = 0.0, 0
            for start in range(0, len(items), batch_size):
                chunk = items[start:start + batch_size]
                batch = collate([example for example, _ in chunk])
                labels = np.full_like(batch["labels"], IGNORE)
                for row, (_, positions) in enumerate(chunk):
                    label_index = np.asarray(positions) - 1      # label j is the token at position j + 1
                    labels[row, label_index] = batch["labels"][row, label_index]
                batch["labels"] = labels
                tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
                loss, _ = model(**tensors)
                n = int((labels != IGNORE).sum())
                total += float(loss) * n
                count += n
            out[f"{name}_perplexity"] = math.exp(total / count) if count else float("nan")
            out[f"{name}_records"] = len(items)
    return out


# -- the task --------------------------------------------------------------------------------------------

def evaluate_generator(bundle: GeneratorBundle, heldout: Sequence[Patient], train: Sequence[Patient],
                       params: EvaluateGeneratorParams, *, plots_dir: Path | None = None,
                       progress: Callable[[float, str], None] = lambda fraction, message: None
                       ) -> tuple[dict[str, Any], list[Patient]]:
    """Generates records for the held-out demographics, then the full report (with perplexity and targets)
    and, given a directory, the plots."""
    from ehrlab.ehrgen.generate import Generator, Request
    from ehrlab.ehrgen.train import pick_device

    rng = np.random.default_rng(params.seed)
    if params.max_heldout and len(heldout) > params.max_heldout:
        heldout = [heldout[i] for i in np.sort(rng.choice(len(heldout), params.max_heldout, replace=False))]
    if not heldout:
        raise SpecError("no held-out records to compare with", path="heldout")
    n = params.n_synthetic or len(heldout)
    sources = np.arange(n) % len(heldout) if n <= len(heldout) else rng.integers(0, len(heldout), n)
    requests = [Request(heldout[i].age, heldout[i].sex) for i in sources]
    generator = Generator(bundle, device=pick_device(params.device))
    synthetic = []
    for record in generator.generate(requests, seed=params.seed, sampling=params.sampling):
        synthetic.append(record)
        if len(synthetic) % params.sampling.batch_size == 0:
            progress(0.9 * len(synthetic) / n, f"generated {len(synthetic)} of {n} records")
    progress(0.9, "comparing")
    report = evaluate_records(heldout, synthetic, train=train, seed=params.seed, max_members=params.max_members)
    if params.perplexity_records:
        report["perplexity"] = perplexity(bundle, heldout[: params.perplexity_records], seed=params.seed)
    report["targets"] = check_targets(report)
    report["model"] = {"parameters": bundle.model.num_parameters(), "tokenizer": bundle.tokenizer.kind,
                       "vocab_size": bundle.tokenizer.vocab_size, "codes": len(bundle.tokenizer.codes)}
    report["sampling"] = params.sampling.model_dump()
    if plots_dir is not None:
        write_plots(heldout, synthetic, plots_dir)
    return report, synthetic


def cohort_splits(bundle: GeneratorBundle, patients: Sequence[Patient]) -> tuple[list[Patient], list[Patient]]:
    """(train, held-out) records of the cohort as the model's training split them."""
    split = bundle.training.get("split")
    params = bundle.training.get("params", {})
    if not split:
        raise SpecError("the model records no data split; give a 'heldout' input", path="inputs.heldout")
    if params.get("max_patients"):
        patients = patients[: params["max_patients"]]
    train, _, test = split_patients(patients, split["fractions"], split["seed"])
    for name, part in (("train", train), ("test", test)):
        ids = split.get(name)
        if ids is not None and [p.subject_id for p in part] != ids:
            raise SpecError(f"the cohort is not the one the model was trained on ({name} records differ)",
                            path="inputs.cohort")
    return train, test


def run_task(ctx: TaskContext) -> None:
    """evaluate_generator: model + cohort (+ optional held-out data) -> report.json, plots, synthetic.jsonl."""
    from ehrlab.ehrgen.artifact import load_bundle

    params: EvaluateGeneratorParams = ctx.params  # type: ignore[assignment]
    bundle = load_bundle(ctx.inputs["model"])
    cohort = load_patients(ctx.inputs["cohort"])
    train, heldout = cohort_splits(bundle, cohort)
    if "heldout" in ctx.inputs:
        heldout = load_patients(ctx.inputs["heldout"])
    report, synthetic = evaluate_generator(bundle, heldout, train, params, plots_dir=ctx.output_dir,
                                           progress=lambda fraction, message: ctx.progress(fraction, message=message))
    write_jsonl(synthetic, ctx.output_dir / "synthetic.jsonl")
    (ctx.output_dir / "report.json").write_text(json.dumps(report, indent=1, allow_nan=True))
    ctx.add_results(flatten(report))


def flatten(report: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Numeric report values as result rows {metric: 'fidelity.unigram_r2', value: 0.97}."""
    rows = []
    for key, value in report.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(flatten(value, path + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append({"metric": path, "value": float(value)})
    return rows
