"""Tasks `pretrain_bert` and `finetune_bert`: a small transformer over diagnosis-code sequences.

A patient is the token sequence [CLS], an age token (5-year band at the index date), then their most
recent codes before the index date, oldest first. The encoder is transformers' BertModel built from a
config: random initialisation, nothing downloaded.

- Pretraining (once per dataset): masked-code modelling on every patient with history; 15% of code
  tokens are chosen, of those 80% become [MASK], 10% a random code, 10% stay.
- Fine-tuning (per fold, from the pretrained encoder): a propensity head on the [CLS] state and an
  outcome head on [CLS] ⊕ exposure with one logit per outcome; loss = BCE(exposure) + mean BCE(outcomes).
  The counterfactual prediction feeds the flipped exposure to the outcome head. Early stopping on a
  stratified validation share of the training folds.

Runs on CPU at small sizes (tests) and on a GPU with bf16 autocast when one is present.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertForMaskedLM, BertModel
from transformers.utils import logging as transformers_logging

from ehrlab.causal import files
from ehrlab.causal.folds import require_both_classes, stratified_holdout
from ehrlab.causal.history import read_history
from ehrlab.causal.kinds import FinetuneBertParams, PretrainBertParams, TrainingLoop
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError

PAD, CLS, MASK, UNK = "[PAD]", "[CLS]", "[MASK]", "[UNK]"
SPECIAL = (PAD, CLS, MASK, UNK)
AGE_BAND = 5
MAX_AGE = 110
VOCAB_FILE = "vocab.json"
MODEL_DIR = "model"


# ---- tokens ----------------------------------------------------------------------------------------

@dataclass
class Vocabulary:
    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, sequences: Sequence[Sequence[str]], min_count: int) -> Vocabulary:
        counts = Counter(code for sequence in sequences for code in set(sequence))
        codes = sorted(code for code, count in counts.items() if count >= min_count)
        ages = [age_token(age) for age in range(0, MAX_AGE + 1, AGE_BAND)]
        return cls([*SPECIAL, *ages, *codes])

    @property
    def first_code(self) -> int:
        """Codes follow the special and age tokens: random replacements are drawn from here on."""
        return len(SPECIAL) + MAX_AGE // AGE_BAND + 1

    def encode(self, sequences: Sequence[Sequence[str]], ages: np.ndarray, max_length: int) -> torch.Tensor:
        """(patients, length) token ids, left-aligned and padded; the most recent codes are kept."""
        unk = self.index[UNK]
        rows = [[self.index[CLS], self.index[age_token(age)],
                 *(self.index.get(code, unk) for code in list(sequence)[-(max_length - 2):])]
                for sequence, age in zip(sequences, ages, strict=True)]
        ids = torch.full((len(rows), max(len(r) for r in rows)), self.index[PAD], dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ids


def age_token(age: float) -> str:
    return f"AGE:{min(MAX_AGE, max(0, int(age // AGE_BAND) * AGE_BAND))}"


def bert_config(vocab: Vocabulary, model: Any) -> BertConfig:
    return BertConfig(vocab_size=len(vocab.tokens), hidden_size=model.hidden_size,
                      num_hidden_layers=model.layers, num_attention_heads=model.heads,
                      intermediate_size=model.intermediate_size, max_position_embeddings=model.max_length,
                      pad_token_id=vocab.index[PAD], type_vocab_size=1)


# ---- the fine-tuning model ---------------------------------------------------------------------------

class CausalBert(nn.Module):
    """Encoder + propensity head on [CLS] + outcome head on [CLS] ⊕ exposure (one logit per outcome)."""

    def __init__(self, encoder: BertModel, n_outcomes: int) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.propensity = nn.Linear(hidden, 1)
        self.outcome = nn.Sequential(nn.Linear(hidden + 1, hidden), nn.GELU(), nn.Linear(hidden, n_outcomes))

    def represent(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=ids, attention_mask=(ids != self.encoder.config.pad_token_id).long()
                            ).last_hidden_state[:, 0]

    def outcome_logits(self, state: torch.Tensor, exposure: torch.Tensor) -> torch.Tensor:
        return self.outcome(torch.cat([state, exposure.unsqueeze(1).to(state.dtype)], dim=1))

    def forward(self, ids: torch.Tensor, exposure: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.represent(ids)
        return self.propensity(state).squeeze(1), self.outcome_logits(state, exposure)


# ---- training plumbing -----------------------------------------------------------------------------

def pick_device(loop: TrainingLoop) -> torch.device:
    if loop.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device: cuda was asked for but no GPU is visible", path="params.device")
    return torch.device("cuda" if loop.device != "cpu" and torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> torch.autocast:
    """bf16 on a GPU; plain fp32 on CPU (enabled=False keeps the context manager uniform)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def setup(loop: TrainingLoop, seed: int, threads: int) -> torch.device:
    transformers_logging.disable_progress_bar()
    torch.manual_seed(seed)
    torch.set_num_threads(loop.threads or threads)
    return pick_device(loop)


def trim(ids: torch.Tensor, pad: int) -> torch.Tensor:
    """Drops the columns that are padding for every row of the batch."""
    length = int((ids != pad).sum(1).max())
    return ids[:, :length]


def batches(n: int, size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(size))


def mask_tokens(ids: torch.Tensor, vocab: Vocabulary, probability: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking over code tokens only; labels are -100 where nothing is predicted."""
    is_code = ids >= vocab.first_code
    is_code |= ids == vocab.index[UNK]
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & is_code
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    masked = ids.clone()
    masked[chosen & (draw < 0.8)] = vocab.index[MASK]
    replace = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[replace] = torch.randint(vocab.first_code, len(vocab.tokens), (int(replace.sum()),), generator=generator)
    return masked, labels


# ---- pretrain_bert ---------------------------------------------------------------------------------

def pretrain_bert(ctx: TaskContext) -> None:
    p: PretrainBertParams = ctx.params  # type: ignore[assignment]
    device = setup(p, p.seed, ctx.threads)
    history = read_history(ctx.inputs["cohort"], index_date=p.index_date, code_prefixes=p.code_prefixes, min_codes=1)
    if len(history) == 0:
        raise SpecError(f"no patient of {history.screened} has codes before {p.index_date}", path="inputs.cohort")
    chosen = np.arange(len(history))
    if p.max_patients and len(chosen) > p.max_patients:
        chosen = np.sort(np.random.default_rng(p.seed).choice(chosen, p.max_patients, replace=False))
    sequences = [history.sequences[i] for i in chosen]
    vocab = Vocabulary.build(sequences, p.min_code_count)
    ids = vocab.encode(sequences, history.age[chosen], p.model.max_length)
    model = BertForMaskedLM(bert_config(vocab, p.model)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    generator = torch.Generator().manual_seed(p.seed)
    first_epoch = 0
    checkpoint = ctx.load_checkpoint()
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        first_epoch = state["epoch"] + 1
    pad = vocab.index[PAD]
    losses: list[float] = []
    for epoch in range(first_epoch, p.epochs):
        model.train()
        total, count = 0.0, 0
        for batch in batches(len(ids), p.batch_size, generator):
            inputs, labels = mask_tokens(trim(ids[batch], pad), vocab, p.mask_probability, generator)
            if not (labels != -100).any():
                continue
            inputs, labels = inputs.to(device), labels.to(device)
            with autocast(device):
                loss = model(input_ids=inputs, attention_mask=(inputs != pad).long(), labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()), count + 1
        losses.append(total / max(count, 1))
        ctx.report_metrics(epoch, {"mlm_loss": losses[-1]})
        ctx.progress(epoch + 1, p.epochs, message=f"epoch {epoch + 1}/{p.epochs}: loss {losses[-1]:.4f}")
        state_path = ctx.work_dir / "checkpoint.pt"
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(), "epoch": epoch}, state_path)
        ctx.save_checkpoint(state_path)
    model.bert.save_pretrained(ctx.output_dir / MODEL_DIR)  # the encoder; fine-tuning replaces the MLM head
    files.write_json(ctx.output_dir / VOCAB_FILE, {"tokens": vocab.tokens})
    files.write_json(ctx.output_dir / files.META, {"patients": len(chosen), "vocabulary": len(vocab.tokens),
                                             "mlm_loss": losses, "seed": p.seed, "device": device.type})
    ctx.clear_checkpoints()


# ---- finetune_bert ---------------------------------------------------------------------------------

def finetune_loss(model: CausalBert, ids: torch.Tensor, exposure: torch.Tensor, outcomes: torch.Tensor) -> torch.Tensor:
    ps_logit, outcome_logits = model(ids, exposure)
    return (F.binary_cross_entropy_with_logits(ps_logit.float(), exposure.float())
            + F.binary_cross_entropy_with_logits(outcome_logits.float(), outcomes.float()))


@torch.no_grad()
def _evaluate(model: CausalBert, ids: torch.Tensor, exposure: torch.Tensor, outcomes: torch.Tensor,
              batch_size: int, device: torch.device, pad: int) -> float:
    model.eval()
    total = 0.0
    for batch in batches(len(ids), batch_size, None):
        with autocast(device):
            loss = finetune_loss(model, trim(ids[batch], pad).to(device), exposure[batch].to(device),
                         outcomes[batch].to(device))
        total += float(loss) * len(batch)
    return total / len(ids)


@torch.no_grad()
def _predict(model: CausalBert, ids: torch.Tensor, batch_size: int, device: torch.device,
             pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Propensity, and each outcome's probability under exposure 1 and 0: (n,), (n, K), (n, K)."""
    model.eval()
    ps, treated, untreated = [], [], []
    for batch in batches(len(ids), batch_size, None):
        with autocast(device):
            state = model.represent(trim(ids[batch], pad).to(device))
            ones = torch.ones(len(batch), device=device)
            ps.append(torch.sigmoid(model.propensity(state).squeeze(1).float()))
            treated.append(torch.sigmoid(model.outcome_logits(state, ones).float()))
            untreated.append(torch.sigmoid(model.outcome_logits(state, ones * 0).float()))
    return tuple(torch.cat(part).cpu().numpy().astype(np.float64) for part in (ps, treated, untreated))  # type: ignore[return-value]


def finetune_bert(ctx: TaskContext) -> None:
    p: FinetuneBertParams = ctx.params  # type: ignore[assignment]
    device = setup(p, p.seed, ctx.threads)
    data_dir, pretrained = ctx.inputs["data"], Path(ctx.inputs["pretrained"])
    vocab = Vocabulary(files.read_json(files.require_file(pretrained, VOCAB_FILE, "pretrained model"))["tokens"])
    frame = files.read_outcomes(data_dir)
    outcome_names = files.outcome_names(data_dir)
    cohort = files.read_data(data_dir, files.COHORT).set_index("subject_id")
    sequences = files.read_data(data_dir, files.SEQUENCES).set_index("subject_id")
    subject_id = frame["subject_id"].to_numpy()
    folds, folds_meta = files.read_folds(ctx.inputs["folds"], subject_id)
    encoder_config = BertConfig.from_pretrained(pretrained / MODEL_DIR)
    ids = vocab.encode(sequences["codes"].reindex(subject_id).tolist(), cohort["age"].reindex(subject_id).to_numpy(),
                       encoder_config.max_position_embeddings)
    exposure = torch.tensor(frame["exposure"].to_numpy(), dtype=torch.long)
    outcomes = torch.tensor(np.ascontiguousarray(frame[outcome_names].to_numpy()), dtype=torch.long)
    pad = vocab.index[PAD]

    ps = np.empty(len(frame))
    q1, q0 = np.empty((len(frame), len(outcome_names))), np.empty((len(frame), len(outcome_names)))
    history: dict[str, list[dict[str, float]]] = {}
    generator = torch.Generator().manual_seed(p.seed)
    n_folds = int(folds.max()) + 1
    for fold in range(n_folds):
        train_all, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        for k, name in enumerate(["exposure", *outcome_names]):
            labels = exposure.numpy() if k == 0 else outcomes[:, k - 1].numpy()
            require_both_classes(labels[train_all], name, f"the training folds of fold {fold}")
        validation = stratified_holdout(exposure.numpy()[train_all], p.validation_fraction,
                                        np.random.default_rng([p.seed, fold]))
        train, val = train_all[~validation], train_all[validation]
        model = CausalBert(BertModel.from_pretrained(pretrained / MODEL_DIR, add_pooling_layer=False),
                           len(outcome_names)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        best, best_state, stale, curve = math.inf, copy.deepcopy(model.state_dict()), 0, []
        for epoch in range(p.epochs):
            model.train()
            total = 0.0
            for batch in batches(len(train), p.batch_size, generator):
                rows = train[batch.numpy()]
                with autocast(device):
                    loss = finetune_loss(model, trim(ids[rows], pad).to(device), exposure[rows].to(device),
                                 outcomes[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
            val_loss = _evaluate(model, ids[val], exposure[val], outcomes[val], p.batch_size, device, pad)
            curve.append({"loss": total / len(train), "val_loss": val_loss})
            ctx.report_metrics(epoch, curve[-1], fold=str(fold))
            if val_loss < best - 1e-6:
                best, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= p.patience:
                    break
        model.load_state_dict(best_state)
        ps[test], q1[test], q0[test] = _predict(model, ids[test], p.batch_size, device, pad)
        history[f"fold{fold}"] = curve
        ctx.progress(fold + 1, n_folds, message=f"fold {fold + 1}/{n_folds}")

    observed = frame["exposure"].to_numpy() == 1
    per_outcome = {name: (frame[name].to_numpy(), np.where(observed, q1[:, k], q0[:, k]),
                          np.where(observed, q0[:, k], q1[:, k])) for k, name in enumerate(outcome_names)}
    predictions = files.long_predictions(subject_id, folds, frame["exposure"].to_numpy(), ps, per_outcome)
    files.write_predictions(ctx.output_dir, predictions, {
        "arm": "bert", "model": "bert", "fold_seed": folds_meta["seed"], "n_folds": n_folds, "seed": p.seed,
        "device": device.type, "bf16": device.type == "cuda", "curves": history})
