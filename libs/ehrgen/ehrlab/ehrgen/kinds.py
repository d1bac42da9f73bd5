"""Task kinds of the generator: train_generator, evaluate_generator, publish_generator.

Parameter models only: this module imports nothing heavy (the controller imports it to plan and hash).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.kinds import Resources, TaskKind

MAX_COUNT = 1_000_000   # patients one request or task may ask for


class CorruptionParams(SpecModel):
    """PromptEHR's denoising corruption (see ehrlab.ehrgen.data)."""

    probability: float = Field(0.5, ge=0, le=1, description="P(denoising example); else next-visit prediction")
    span_lambda: float = Field(3.0, gt=0, description="Poisson mean of masked span lengths")
    delete_prob: float = Field(0.15, ge=0, le=1)
    replace_prob: float = Field(0.15, ge=0, le=1)


class TrainGeneratorParams(SpecModel):
    seed: int = 42
    size: Literal["tiny", "small", "medium", "large", "base"] = "small"
    tokenizer: Literal["flat", "hierarchical"] = "flat"
    min_code_count: int = Field(1, ge=1, description="codes seen fewer times in training map to <unk>")
    max_len: int = Field(512, ge=8, le=4096, description="tokens per record; longer records lose their last visits")
    epochs: int = Field(10, ge=1)
    max_steps: int = Field(0, ge=0, description="stop after this many optimizer steps (0: epochs decide)")
    batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(5e-4, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup: float = Field(0.06, ge=0, lt=1, description="fraction of steps with linear warm-up")
    grad_clip: float = Field(0.5, ge=0, description="max gradient norm (0: no clipping)")
    dropout: float = Field(0.1, ge=0, lt=1)
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    attention: Literal["sdpa", "eager"] = "sdpa"
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    val_fraction: float = Field(0.05, ge=0, lt=0.5)
    test_fraction: float = Field(0.1, ge=0, lt=0.5, description="held out for evaluate_generator")
    max_patients: int = Field(0, ge=0, description="use only this many records (0: all)")
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1, description="optimizer steps between checkpoints")
    corruption: CorruptionParams = Field(default_factory=CorruptionParams)


class SamplingParams(SpecModel):
    temperature: float = Field(1.0, gt=0, le=10)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0: no top-k cut")
    greedy: bool = False
    max_visits: int = Field(32, ge=1, le=1000)
    max_codes_per_visit: int = Field(40, ge=1, le=1000)
    max_len: int = Field(0, ge=0, description="decoder tokens per record (0: the model's maximum)")
    hierarchical: Literal["learned", "frequency"] = Field(
        "learned", description="hierarchical tokenizers: the code within a category from the model or by frequency")
    visits: Literal["model", "training"] = Field(
        "model", description="how many visits a fully synthetic record has: where the model ends it, or drawn "
                             "from the training records of the same sex and age band (the model still writes "
                             "every visit; greedy decoding takes the median number; a completion always ends "
                             "where the model ends it)")
    batch_size: int = Field(256, ge=1, le=65536)


class EvaluateGeneratorParams(SpecModel):
    seed: int = 42
    n_synthetic: int = Field(0, ge=0, le=MAX_COUNT, description="synthetic records (0: as many as held-out ones)")
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    max_heldout: int = Field(0, ge=0, description="evaluate on at most this many held-out records (0: all)")
    max_members: int = Field(2000, ge=10, description="training records used by the privacy attacks")
    perplexity_records: int = Field(2000, ge=0, description="held-out records scored for perplexity (0: skip)")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class PublishGeneratorParams(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=200)
    at_least: dict[str, float] = Field(default_factory=dict,
                                       description="dotted report path -> the least value the model must reach")
    at_most: dict[str, float] = Field(default_factory=dict,
                                      description="dotted report path -> the largest value the model may have")


_TRAIN_CODE = ("ehrlab.ehrgen.train", "ehrlab.ehrgen.model", "ehrlab.ehrgen.data", "ehrlab.ehrgen.tokenizer",
               "ehrlab.ehrgen.artifact", "ehrlab.ehrgen.records")
_EVAL_CODE = ("ehrlab.ehrgen.evaluate", "ehrlab.ehrgen.generate", "ehrlab.ehrgen.model", "ehrlab.ehrgen.data",
              "ehrlab.ehrgen.tokenizer", "ehrlab.ehrgen.artifact", "ehrlab.ehrgen.records")

KINDS = (
    TaskKind(name="train_generator", service="ehr-generator", params=TrainGeneratorParams,
             run="ehrlab.ehrgen.train:run_task", inputs=("cohort",), code=_TRAIN_CODE,
             resources=Resources(cpu=4, memory="16Gi", gpu=1, node_pool="gpu"), timeout_s=24 * 3600,
             fresh_process=True,
             metrics=("loss", "perplexity", "code_accuracy", "tokens_per_s", "val_loss", "val_perplexity",
                      "val_code_accuracy"),
             description="Trains a PromptEHR-style generator (BART with demographic prompts) on a cohort."),
    TaskKind(name="evaluate_generator", service="ehr-generator", params=EvaluateGeneratorParams,
             run="ehrlab.ehrgen.evaluate:run_task", inputs=("model", "cohort"), optional_inputs=("heldout",),
             code=_EVAL_CODE, resources=Resources(cpu=2, memory="8Gi", gpu=1, node_pool="gpu"), timeout_s=6 * 3600,
             fresh_process=True,
             description="Validity, coherence, fidelity, diversity, privacy and perplexity of a generator."),
    TaskKind(name="publish_generator", service="ehr-generator", params=PublishGeneratorParams,
             run="ehrlab.ehrgen.publish:run_task", inputs=("model", "report"),
             code=("ehrlab.ehrgen.publish",),
             resources=Resources(cpu=0.5, memory="512Mi"), timeout_s=600,
             description="Registers a generator under a name once its evaluation meets the gates."),
)
