"""Training: AdamW with linear warm-up and decay, gradient clipping and accumulation, bf16 autocast and
SDPA attention on a GPU, optional torch.compile, resumable checkpoints, metrics every `log_every` steps.

`train_generator` is the library function; `run_task` adapts it to the `train_generator` task kind
(cohort in, model artifact out, metrics to the result-store, checkpoints to the artifact store).
Resuming is exact in data order: the batches of an epoch are a function of (seed, epoch), so a resumed
attempt skips the batches the checkpoint had already consumed.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ehrlab.core.artifacts.manifest import artifact_prefix
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.artifact import GeneratorBundle, age_band, save_bundle
from ehrlab.ehrgen.data import Corruption, EncodedPatient, encode_patients, epoch_batches, load_patients, split_patients
from ehrlab.ehrgen.kinds import TrainGeneratorParams
from ehrlab.ehrgen.model import GeneratorConfig, PromptBart
from ehrlab.ehrgen.records import Patient
from ehrlab.ehrgen.tokenizer import IGNORE, TOKENIZERS, CodeTokenizer

log = logging.getLogger("ehrlab.ehrgen.train")
CHECKPOINT = "checkpoint.pt"
VALIDATION_EPOCH = 2**31   # the corruption draw validation always uses


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device cuda was asked for but no GPU is visible", path="device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs by default; fp32 on CPUs, where bf16 matmuls are rarely faster."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    pinned = device.type == "cuda"
    out = {}
    for name, array in batch.items():
        tensor = torch.from_numpy(array)
        out[name] = (tensor.pin_memory() if pinned else tensor).to(device, non_blocking=pinned)
    return out


@dataclass
class Tally:
    """Sums over batches: loss (token-weighted), code predictions, tokens and time."""

    loss: float = 0.0
    labels: int = 0
    codes: int = 0
    codes_right: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, batch: dict[str, torch.Tensor], code_offset: int) -> None:
        labels = batch["labels"][batch["labels"] != IGNORE]
        is_code = labels >= code_offset
        self.loss += float(loss) * labels.numel()
        self.labels += labels.numel()
        self.codes += int(is_code.sum())
        self.codes_right += int((logits.argmax(-1)[is_code] == labels[is_code]).sum())
        self.tokens += int(batch["attention_mask"].sum()) + labels.numel()

    def metrics(self, prefix: str = "") -> dict[str, float]:
        loss = self.loss / max(self.labels, 1)
        elapsed = time.perf_counter() - self.started
        values = {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                  "code_accuracy": self.codes_right / max(self.codes, 1)}
        if not prefix:
            values["tokens_per_s"] = self.tokens / max(elapsed, 1e-9)
        return {prefix + k: v for k, v in values.items()}


@torch.no_grad()
def validation_metrics(model: PromptBart, patients: Sequence[EncodedPatient], tokenizer: CodeTokenizer, *,
                       batch_size: int, seed: int, corruption: Corruption, device: torch.device,
                       dtype: torch.dtype | None) -> dict[str, float]:
    """Loss, perplexity and code accuracy on records the model does not train on (a fixed corruption draw)."""
    was_training = model.training
    model.eval()
    tally = Tally()
    batches = epoch_batches(patients, tokenizer, batch_size=batch_size, seed=seed, epoch=VALIDATION_EPOCH,
                            corruption=corruption)
    for batch in batches:
        tensors = to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, logits = model(**tensors)
        tally.add(loss, logits, tensors, tokenizer.code_offset)
    model.train(was_training)
    return tally.metrics("val_")


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def make_optimizer(model: PromptBart, params: TrainGeneratorParams, device: torch.device) -> torch.optim.AdamW:
    """AdamW; biases, norms and embeddings are not decayed."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 and "embed" not in name else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=params.lr, betas=(0.9, 0.98), eps=1e-6, fused=device.type == "cuda")


Reporter = Callable[[int, dict[str, float]], None]


def train_generator(train: Sequence[Patient], validation: Sequence[Patient], params: TrainGeneratorParams, *,
                    report: Reporter = lambda step, values: None,
                    progress: Callable[[float, str], None] = lambda fraction, message: None,
                    checkpoint_dir: Path | None = None,
                    save_checkpoint: Callable[[Path], None] = lambda path: None,
                    resume_from: Path | None = None) -> tuple[GeneratorBundle, dict[str, float]]:
    """Trains a generator on `train`; returns it with its final metrics (validation ones when there is data)."""
    if not train:
        raise SpecError("no training records", path="cohort")
    device = pick_device(params.device)
    dtype = autocast_dtype(params.precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    resumed = torch.load(resume_from, map_location="cpu", weights_only=False) if resume_from else None
    if resumed is not None:
        from ehrlab.ehrgen.tokenizer import tokenizer_from_dict

        tokenizer = tokenizer_from_dict(resumed["tokenizer"])
    else:
        tokenizer = TOKENIZERS[params.tokenizer].from_patients(train, min_count=params.min_code_count)
    config = GeneratorConfig.from_size(params.size, tokenizer.vocab_size, max_positions=params.max_len,
                                       dropout=params.dropout, attention=params.attention,
                                       tokenizer_fingerprint=tokenizer.fingerprint)
    torch.manual_seed(params.seed)
    model = PromptBart(config).to(device)
    optimizer = make_optimizer(model, params, device)
    train_encoded = [p for p in encode_patients(train, tokenizer, params.max_len) if p.visits]
    val_encoded = [p for p in encode_patients(validation, tokenizer, params.max_len) if p.visits]
    corruption = Corruption(**params.corruption.model_dump())
    batches_per_epoch = math.ceil(len(train_encoded) / params.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / params.grad_accum)
    total_steps = params.max_steps or steps_per_epoch * params.epochs
    schedule = linear_schedule(int(params.warmup * total_steps), total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step, start_epoch, skip_batches = 0, 0, 0
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        step, start_epoch, skip_batches = resumed["step"], resumed["epoch"], resumed["batches_done"]
        log.info("resuming at step %d (epoch %d, batch %d)", step, start_epoch, skip_batches)
    forward = model
    if params.compile:
        forward = torch.compile(model, dynamic=True)
    model.train()
    tally = Tally()
    metrics: dict[str, float] = {}
    epoch = start_epoch
    while step < total_steps:
        batches: Iterator[dict[str, np.ndarray]] = epoch_batches(
            train_encoded, tokenizer, batch_size=params.batch_size, seed=params.seed, epoch=epoch,
            corruption=corruption)
        for index, batch in enumerate(batches):
            if index < skip_batches:
                continue
            tensors = to_device(batch, device)
            # dropout masks are a function of (seed, epoch, batch), not of where an attempt resumed
            torch.manual_seed(int(np.random.SeedSequence([params.seed, epoch, index]).generate_state(1)[0]))
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss, logits = forward(**tensors)
            (loss / params.grad_accum).backward()
            tally.add(loss.detach(), logits.detach(), tensors, tokenizer.code_offset)
            if (index + 1) % params.grad_accum and index + 1 < batches_per_epoch:
                continue
            if params.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % params.log_every == 0 or step == total_steps:
                metrics = {**tally.metrics(), "lr": scheduler.get_last_lr()[0], "epoch": epoch}
                report(step, metrics)
                progress(step / total_steps, f"step {step}/{total_steps} loss {metrics['loss']:.3f}")
                tally = Tally()
            if checkpoint_dir is not None and (step % params.checkpoint_every == 0 or step == total_steps):
                path = checkpoint_dir / CHECKPOINT
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch,
                            "batches_done": index + 1, "tokenizer": tokenizer.to_dict()}, path)
                save_checkpoint(path)
            if step >= total_steps:
                break
        skip_batches = 0
        epoch += 1
        if val_encoded:
            started = time.perf_counter()
            values = validation_metrics(model, val_encoded, tokenizer, batch_size=params.batch_size, seed=params.seed,
                                        corruption=corruption, device=device, dtype=dtype)
            tally.started += time.perf_counter() - started   # training throughput leaves validation out
            report(step, values)
            metrics = {**metrics, **values}
    if val_encoded and "val_loss" not in metrics:   # resumed from the last checkpoint: nothing left to train
        metrics = validation_metrics(model, val_encoded, tokenizer, batch_size=params.batch_size, seed=params.seed,
                                     corruption=corruption, device=device, dtype=dtype)
    model.eval()
    code_counts = Counter(code for p in train for visit in p.visits for code in visit)
    training = {"records": {"train": len(train), "validation": len(validation)}, "steps": step, "epochs": epoch,
                "tokens_per_record": float(np.mean([len(tokenizer.tokens(p.visits)) for p in train_encoded])),
                "code_counts": dict(code_counts.most_common()), "visit_counts": visit_counts(train),
                "metrics": metrics,
                "params": params.model_dump(), "device": str(device), "parameters": model.num_parameters()}
    return GeneratorBundle(model, tokenizer, training), metrics


def visit_counts(patients: Sequence[Patient]) -> dict[str, dict[str, dict[str, int]]]:
    """How many records have how many visits, by sex and age band: {sex: {band: {visits: records}}}."""
    counts: dict[str, dict[str, Counter[int]]] = {}
    for p in patients:
        counts.setdefault(p.sex, {}).setdefault(str(age_band(p.age)), Counter())[len(p.visits)] += 1
    return {sex: {band: {str(n): c for n, c in sorted(hist.items())} for band, hist in sorted(bands.items())}
            for sex, bands in sorted(counts.items())}


def run_task(ctx: TaskContext) -> None:
    """train_generator: cohort (MEDS, MIMIC-III CSVs or JSON lines) -> model artifact with its data split."""
    params: TrainGeneratorParams = ctx.params  # type: ignore[assignment]
    patients = load_patients(ctx.inputs["cohort"])
    if params.max_patients:
        patients = patients[: params.max_patients]
    fractions = (1 - params.val_fraction - params.test_fraction, params.val_fraction, params.test_fraction)
    train, validation, test = split_patients(patients, fractions, params.seed)
    ctx.log.info("training on %d records (%d validation, %d held out)", len(train), len(validation), len(test))
    resume = ctx.load_checkpoint()
    bundle, metrics = train_generator(
        train, validation, params, report=lambda step, values: ctx.report_metrics(step, values),
        progress=lambda fraction, message: ctx.progress(fraction, message=message),
        checkpoint_dir=ctx.work_dir, save_checkpoint=ctx.save_checkpoint, resume_from=resume)
    bundle.training["records"]["test"] = len(test)
    bundle.training["artifact"] = artifact_prefix(ctx.dataset, ctx.kind, ctx.key)
    bundle.training["split"] = {"seed": params.seed, "fractions": list(fractions),
                                "train": _ids(train), "test": _ids(test)}
    save_bundle(ctx.output_dir / "model", bundle.model, bundle.tokenizer, bundle.training)
    ctx.add_results([{"metric": name, "value": value} for name, value in metrics.items()])
    ctx.clear_checkpoints()


def _ids(patients: Sequence[Patient]) -> list[int] | None:
    ids = [p.subject_id for p in patients]
    return None if any(i is None for i in ids) else ids  # type: ignore[return-value]
