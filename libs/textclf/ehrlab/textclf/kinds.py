"""The `train_text_classifier` and `publish_model` task kinds (declarations only: nothing heavy here).

train_text_classifier fine-tunes a transformer encoder with a small head on a CSV:
  task=classification: columns text,label (one label per sentence);
  task=span:           columns context,span (the evidence span's text, found in the context; an
                       optional span_start column gives its character offset where it occurs twice).
An optional `split` column (train/val/test) fixes the split; otherwise rows are split at random with
`split_seed`. Each epoch it reports the monitored validation metric to the HPO study
(ctx.report_intermediate, which stops a pruned trial), and at the end one result row with every
metric of the best epoch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ehrlab.core.config import SpecModel
from ehrlab.core.kinds import Resources, TaskKind

CLASSIFICATION_METRICS = ("val_macro_f1", "val_accuracy", "val_loss", "test_macro_f1", "test_accuracy", "test_loss")
SPAN_METRICS = ("val_exact_match", "val_span_f1", "val_loss", "test_exact_match", "test_span_f1", "test_loss")
METRICS = tuple(dict.fromkeys((*CLASSIFICATION_METRICS, *SPAN_METRICS, "train_loss", "best_epoch")))


class HeadSpec(SpecModel):
    """The classifier on top of the encoder: pooling, then `layers` linear layers (the last one to the classes)."""

    pooling: Literal["cls", "mean", "max", "attention"] = "cls"
    layers: int = Field(1, ge=1, le=4)
    hidden: int = Field(256, ge=8, le=4096)
    activation: Literal["gelu", "relu", "silu", "tanh"] = "gelu"


class LossSpec(SpecModel):
    name: Literal["ce", "label_smoothing", "focal"] = "ce"
    smoothing: float = Field(0.1, ge=0, lt=1)
    gamma: float = Field(2.0, ge=0)


class OptimizerSpec(SpecModel):
    name: Literal["adamw", "adamw_8bit", "adafactor", "lion"] = "adamw"
    beta1: float | None = Field(None, ge=0, lt=1)   # None: the optimizer's usual value
    beta2: float | None = Field(None, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)


class SchedulerSpec(SpecModel):
    name: Literal["constant", "linear", "cosine", "cosine_with_restarts", "polynomial", "one_cycle"] = "linear"
    num_cycles: int = Field(2, ge=1)        # cosine_with_restarts
    power: float = Field(1.0, gt=0)         # polynomial
    final_lr_ratio: float = Field(0.0, ge=0, lt=1)  # polynomial: end at lr * this


class TextClassifierParams(SpecModel):
    task: Literal["classification", "span"] = "classification"
    encoder: str = Field(min_length=1, description="a local model directory, or registry:NAME[@VERSION]")
    encoder_layers: int | None = Field(None, ge=1, description="keep only the first N transformer layers")
    max_length: int = Field(128, ge=8, le=4096)
    text_column: str = "text"
    label_column: str = "label"
    context_column: str = "context"
    span_column: str = "span"
    split_column: str = "split"
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    split_seed: int = 0
    max_train_rows: int | None = Field(None, ge=1)
    train_on: list[Literal["train", "val"]] = Field(default_factory=lambda: ["train"])
    epochs: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(16, ge=1, le=4096)
    eval_batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-5, gt=0, le=1)
    head_lr: float | None = Field(None, gt=0, le=1, description="learning rate of the head (default: lr)")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0)
    freeze_encoder: bool = False
    head: HeadSpec = Field(default_factory=HeadSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    early_stopping_patience: int = Field(0, ge=0, description="epochs without improvement before stopping; 0: off")
    monitor: str = Field("", description="the validation metric for early stopping, the best epoch and "
                                         "intermediate reports (default: val_macro_f1 / val_exact_match)")
    checkpoint: bool = Field(True, description="save the training state each epoch so a retried attempt resumes")
    save_model: bool = Field(False, description="write the fine-tuned model (encoder, tokenizer, head) to outputs")
    precision: Literal["auto", "fp32", "bf16"] = "auto"   # auto: bf16 on a GPU that supports it
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's choice); set it "
                                                        "to the task's cpu share when several tasks share a machine")
    seed: int = 0

    @field_validator("train_on")
    @classmethod
    def _train_on(cls, value: list[str]) -> list[str]:
        if "train" not in value:
            raise ValueError("train_on must include train")
        return sorted(set(value), key=value.index)

    @model_validator(mode="after")
    def _monitor(self) -> TextClassifierParams:
        allowed = CLASSIFICATION_METRICS if self.task == "classification" else SPAN_METRICS
        if not self.monitor:
            self.monitor = "val_macro_f1" if self.task == "classification" else "val_exact_match"
        if self.monitor not in allowed or not self.monitor.startswith("val_"):
            raise ValueError(f"monitor must be a validation metric of the {self.task} task "
                             f"({', '.join(m for m in allowed if m.startswith('val_'))}), not {self.monitor!r}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave rows for training")
        return self

    @property
    def monitor_mode(self) -> str:
        return "min" if self.monitor.endswith("loss") else "max"


class PublishModelParams(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field("1", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


KINDS = (
    TaskKind(name="train_text_classifier", service="trainer", params=TextClassifierParams,
             run="ehrlab.textclf.train:run", inputs=("data",),
             code=("ehrlab.textclf.train", "ehrlab.textclf.model", "ehrlab.textclf.data", "ehrlab.textclf.optim",
                   "ehrlab.textclf.registry"),
             resources=Resources(cpu=2, memory="4Gi"), timeout_s=6 * 3600, fresh_process=True, metrics=METRICS,
             description="Fine-tunes a transformer encoder for sentence classification or evidence spans."),
    TaskKind(name="publish_model", service="trainer", params=PublishModelParams,
             run="ehrlab.textclf.registry:publish_task", inputs=("model",),
             resources=Resources(cpu=0.5, memory="512Mi"), timeout_s=3600,
             description="Copies a model directory into the model registry as models/NAME/VERSION."),
)
