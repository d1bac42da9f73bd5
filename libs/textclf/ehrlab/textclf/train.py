"""The `train_text_classifier` task: fine-tune, evaluate each epoch, report, keep the best epoch.

Per epoch: train on the training split (train, or train+val for a refit), evaluate on val, log the
metrics (ctx.report_metrics), report the monitored metric to the HPO study (ctx.report_intermediate,
which raises TrialPruned when the study prunes this trial), stop early after `early_stopping_patience`
epochs without improvement, and checkpoint (a retried attempt resumes at the next epoch). The best
epoch's weights are evaluated on test. Outputs: metrics.json, history.json, labels.json (and the model
with save_model); one result row with every metric, the best epoch and the split sizes.

Refit (train_on: [train, val]): no validation split remains, so there is no early stopping and no
intermediate report; the model after the last epoch is evaluated on test.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from ehrlab.core.context import TaskContext
from ehrlab.textclf.data import Dataset, Example, encode, exact_match, load_dataset, macro_f1, span_text, token_f1
from ehrlab.textclf.kinds import TextClassifierParams
from ehrlab.textclf.model import TextClassifier, best_spans, classification_loss, span_loss
from ehrlab.textclf.optim import build_optimizer, build_scheduler, parameter_groups
from ehrlab.textclf.registry import resolve_model

log = logging.getLogger("ehrlab.textclf")


def model_cache_dir() -> Path:
    """Where registry models are downloaded once per machine (versions never change)."""
    return Path(os.environ.get("EHRLAB_MODEL_CACHE") or Path(tempfile.gettempdir(), "ehrlab-models"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(p: TextClassifierParams) -> tuple[torch.device, torch.dtype | None]:
    """The device, and the autocast dtype: bf16 on a GPU that supports it (precision auto or bf16)."""
    if p.device == "cuda" or (p.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda")
        bf16 = p.precision == "bf16" or (p.precision == "auto" and torch.cuda.is_bf16_supported())
        return device, torch.bfloat16 if bf16 else None
    return torch.device("cpu"), torch.bfloat16 if p.precision == "bf16" else None


def batches(examples: list[Example], size: int, *, shuffle: bool, seed: int) -> list[list[Example]]:
    order = list(range(len(examples)))
    if shuffle:
        random.Random(seed).shuffle(order)
    return [[examples[i] for i in order[start:start + size]] for start in range(0, len(order), size)]


class Trainer:
    def __init__(self, ctx: TaskContext, p: TextClassifierParams, data: Dataset) -> None:
        self.ctx, self.p, self.data = ctx, p, data
        if p.threads:
            torch.set_num_threads(p.threads)
        self.device, self.autocast = pick_device(p)
        encoder_dir = resolve_model(p.encoder, ctx.store, model_cache_dir())
        self.tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
        seed_everything(p.seed)
        self.model = TextClassifier(encoder_dir, task=p.task, n_labels=len(data.labels), head=p.head,
                                    dropout=p.dropout, encoder_layers=p.encoder_layers).to(self.device)
        if p.freeze_encoder:
            self.model.encoder.requires_grad_(False)
        self.train_examples = [e for split in p.train_on for e in data.splits[split]]
        self.steps_per_epoch = -(-len(self.train_examples) // (p.batch_size * p.grad_accum))
        groups = parameter_groups(self.model, self.model.head_parameters(), lr=p.lr, head_lr=p.head_lr or p.lr,
                                  weight_decay=p.weight_decay)
        self.optimizer = build_optimizer(groups, p.optimizer, p.lr)
        self.scheduler = build_scheduler(self.optimizer, p.scheduler, total_steps=self.steps_per_epoch * p.epochs,
                                         warmup_ratio=p.warmup_ratio)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            return self.model(**inputs)

    def _loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.p.task == "classification":
            return classification_loss(logits, batch["labels"].to(self.device), self.p.loss)
        return span_loss(logits, batch["start_positions"].to(self.device), batch["end_positions"].to(self.device),
                         self.p.loss)

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        total, count = 0.0, 0
        chunks = batches(self.train_examples, self.p.batch_size, shuffle=True, seed=self.p.seed * 100_003 + epoch)
        for index, chunk in enumerate(chunks):
            batch = encode(self.tokenizer, chunk, self.p)
            loss = self._loss(self._forward(batch), batch)
            (loss / self.p.grad_accum).backward()
            total, count = total + loss.item() * len(chunk), count + len(chunk)
            if (index + 1) % self.p.grad_accum == 0 or index + 1 == len(chunks):
                if self.p.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.p.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            self.ctx.progress((epoch - 1) * len(chunks) + index + 1, self.p.epochs * len(chunks),
                              f"epoch {epoch}/{self.p.epochs}")
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        examples = self.data.splits[split]
        if not examples:
            return {}
        self.model.eval()
        losses, predicted, truth, matches, f1s = [], [], [], [], []
        for chunk in batches(examples, self.p.eval_batch_size, shuffle=False, seed=0):
            batch = encode(self.tokenizer, chunk, self.p)
            logits = self._forward(batch)
            losses.append(self._loss(logits, batch).item() * len(chunk))
            if self.p.task == "classification":
                predicted += logits.argmax(dim=-1).tolist()
                truth += batch["labels"].tolist()
                continue
            for row, (start, end) in enumerate(best_spans(logits)):
                guess = span_text(chunk[row].text, batch["offset_mapping"][row].tolist(), start, end)
                matches.append(exact_match(guess, chunk[row].span))
                f1s.append(token_f1(guess, chunk[row].span))
        metrics = {f"{split}_loss": sum(losses) / len(examples)}
        if self.p.task == "classification":
            metrics[f"{split}_macro_f1"] = macro_f1(predicted, truth)
            metrics[f"{split}_accuracy"] = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
        else:
            metrics[f"{split}_exact_match"] = sum(matches) / len(matches)
            metrics[f"{split}_span_f1"] = sum(f1s) / len(f1s)
        return metrics

    def save_model(self, directory: Path) -> None:
        self.model.encoder.save_pretrained(directory / "encoder")
        self.tokenizer.save_pretrained(directory / "encoder")
        torch.save({name: value for name, value in self.model.state_dict().items() if not name.startswith("encoder.")},
                   directory / "head.pt")
        (directory / "head.json").write_text(json.dumps({"task": self.p.task, "labels": self.data.labels,
                                                         "head": self.p.head.model_dump(),
                                                         "max_length": self.p.max_length}, indent=2))

    # a retried attempt resumes after the last finished epoch
    def save_state(self, epoch: int, history: list[dict], best: dict[str, Any]) -> None:
        path = self.ctx.work_dir / "state.pt"
        torch.save({"epoch": epoch, "history": history, "best": best, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "rng": torch.get_rng_state()}, path)
        self.ctx.save_checkpoint(path)

    def load_state(self) -> tuple[int, list[dict], dict[str, Any]]:
        path = self.ctx.load_checkpoint()
        if path is None:
            return 0, [], {}
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        log.info("resuming after epoch %d", state["epoch"])
        return state["epoch"], state["history"], state["best"]


def run(ctx: TaskContext) -> None:
    p: TextClassifierParams = ctx.params  # type: ignore[assignment]
    data = load_dataset(ctx.inputs["data"], p)
    trainer = Trainer(ctx, p, data)
    validate = "val" not in p.train_on and bool(data.splits["val"])
    sign = 1.0 if p.monitor_mode == "max" else -1.0
    done, history, best = trainer.load_state()
    stale = sum(1 for row in history if row["epoch"] > best.get("epoch", 0))
    for epoch in range(done + 1, p.epochs + 1):
        row = {"epoch": epoch, "train_loss": trainer.train_epoch(epoch)}
        if validate:
            row.update(trainer.evaluate("val"))
        history.append(row)
        ctx.report_metrics(epoch, {k: v for k, v in row.items() if k != "epoch"})
        if not validate or not best or sign * row[p.monitor] > sign * best["metrics"][p.monitor]:
            best, stale = {"epoch": epoch, "metrics": row,
                           "weights": {k: v.detach().to("cpu", copy=True)
                                       for k, v in trainer.model.state_dict().items()}}, 0
        else:
            stale += 1
        if validate:
            ctx.report_intermediate(epoch, row[p.monitor])  # raises TrialPruned when the study says stop
        if p.checkpoint and epoch < p.epochs:  # after the report: a resumed attempt never skips one
            trainer.save_state(epoch, history, best)
        if validate and p.early_stopping_patience and stale >= p.early_stopping_patience:
            log.info("early stop after epoch %d: no better %s for %d epochs", epoch, p.monitor, stale)
            break
    trainer.model.load_state_dict(best["weights"])
    final = {**copy.deepcopy(best["metrics"]), **trainer.evaluate("test")}
    final.pop("epoch", None)
    result = {**final, "best_epoch": best["epoch"], "epochs_run": len(history), "seed": p.seed,
              **{f"n_{split}": len(rows) for split, rows in data.splits.items()}}
    (ctx.output_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    (ctx.output_dir / "history.json").write_text(json.dumps(history, indent=2))
    (ctx.output_dir / "labels.json").write_text(json.dumps(data.labels))
    if p.save_model:
        trainer.save_model(ctx.output_dir / "model")
    ctx.add_results([result])
    ctx.clear_checkpoints()
