"""Training and generation speed of the generator against a reference written the way PromptEHR does it.

    .venv/bin/python -m benchmarks.ehrgen_speed [--size small] [--model DIR]          # CPU (2 cores here)
    python -m benchmarks.ehrgen_speed --size base --patients 30000 --min-code-count 2 \
        --batch-size 128 --gen-batch 512 --gen-records 4096 [--compile]                 # on a GPU

The GPU settings are the issue's: a bart-base-sized model, a vocabulary of about 7,000 codes (30,000
simulated patients, codes seen at least twice), records of up to 256 tokens, training batches of 128,
generation batches of 512 (--gen-records several batches' worth, so that one batch is not all it times).

Both sides use the same model (same sizes, and for generation the same trained weights) and the same
records (a simulated cohort, corrupted the same way); they are measured side by side in one run,
alternating rounds so that a busy machine slows both alike.

- reference: `BartForConditionalGeneration` whose forward prepends the demographic prompts (PromptEHR's
  PromptBartModel), fp32, eager attention, records in random batches padded to the longest, the LM
  head over every position; generation with `model.generate` (sampling, no constraints).
- ehrlab: `PromptBart` with SDPA attention, length-bucketed batches, the LM head over labelled positions
  only, bf16 autocast, fused AdamW and optionally torch.compile on a GPU; generation with the
  constrained KV-cache decode loop (finished rows leave the batch).

Training speed is real (non-padding) encoder + decoder tokens per second; on a GPU also model FLOPs
utilisation (MFU) against the GPU's dense bf16 peak. Generation speed is records per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BartConfig, BartForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from ehrlab.cohort import icd9
from ehrlab.ehrgen.artifact import GeneratorBundle, load_bundle
from ehrlab.ehrgen.data import Corruption, collate, encode_patients, load_patients, make_examples
from ehrlab.ehrgen.generate import Generator, Request
from ehrlab.ehrgen.kinds import SamplingParams, TrainGeneratorParams
from ehrlab.ehrgen.model import N_PROMPTS, DemographicPrompt, GeneratorConfig, PromptBart
from ehrlab.ehrgen.tokenizer import BOS, END_VISIT, EOS, IGNORE, PAD, VISIT, CodeTokenizer
from ehrlab.ehrgen.train import autocast_dtype, make_optimizer, to_device

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}   # dense tensor-core FLOP/s


class ReferencePromptBart(BartForConditionalGeneration):
    """PromptEHR's model as the original writes it: stock BART for generation, prompts prepended in forward."""

    def __init__(self, config: BartConfig, d_hidden: int = 128) -> None:
        super().__init__(config)
        self.encoder_prompt = DemographicPrompt(config.d_model, d_hidden, 2)
        self.decoder_prompt = DemographicPrompt(config.d_model, d_hidden, 2)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, encoder_outputs: Any = None,
                past_key_values: Any = None, labels: torch.Tensor | None = None, age: torch.Tensor | None = None,
                sex: torch.Tensor | None = None, use_cache: bool | None = None, **_: Any) -> Seq2SeqLMOutput:
        mask = F.pad(attention_mask, (N_PROMPTS, 0), value=1)
        if encoder_outputs is None:
            embeds = torch.cat([self.encoder_prompt(age, sex), self.model.shared(input_ids)], 1)
            encoder_outputs = self.model.encoder(inputs_embeds=embeds, attention_mask=mask)
        first = past_key_values is None or past_key_values.get_seq_length() == 0
        embeds = self.model.shared(decoder_input_ids)
        if first:
            embeds = torch.cat([self.decoder_prompt(age, sex), embeds], 1)
        out = self.model.decoder(inputs_embeds=embeds, encoder_hidden_states=encoder_outputs[0],
                                 encoder_attention_mask=mask, past_key_values=past_key_values, use_cache=use_cache)
        hidden = out.last_hidden_state[:, N_PROMPTS:] if first else out.last_hidden_state
        logits = self.lm_head(hidden) + self.final_logits_bias
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
        return Seq2SeqLMOutput(loss=loss, logits=logits, past_key_values=out.past_key_values,
                               encoder_last_hidden_state=encoder_outputs[0])


def reference_from(model: PromptBart) -> ReferencePromptBart:
    """The reference model with the same weights, fp32 and eager attention."""
    c = model.config
    config = BartConfig(vocab_size=c.vocab_size, d_model=c.d_model, encoder_layers=c.encoder_layers,
                        decoder_layers=c.decoder_layers, encoder_attention_heads=c.heads,
                        decoder_attention_heads=c.heads, encoder_ffn_dim=c.ffn_dim, decoder_ffn_dim=c.ffn_dim,
                        max_position_embeddings=c.max_positions + N_PROMPTS, dropout=c.dropout,
                        attention_dropout=0.0, activation_dropout=0.0, scale_embedding=False, pad_token_id=PAD,
                        bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=BOS, forced_eos_token_id=None)
    config._attn_implementation = "eager"
    reference = ReferencePromptBart(config, c.prompt_hidden)
    state = {name.replace("bart.", "model.", 1): value for name, value in model.state_dict().items()
             if name != "logits_bias"}
    state["final_logits_bias"] = model.logits_bias.detach()[None, :].clone()
    state["lm_head.weight"] = state["model.shared.weight"]
    missing, unexpected = reference.load_state_dict(state, strict=False)
    assert not unexpected and all("embed_tokens" in name for name in missing), (missing, unexpected)
    return reference


# -- training --------------------------------------------------------------------------------------------

def batches(examples: list, batch_size: int, *, bucketed: bool, rng: np.random.Generator) -> Iterator[dict]:
    from ehrlab.ehrgen.data import bucketed_batches

    if bucketed:
        order = bucketed_batches([len(e.encoder) + len(e.target) for e in examples], batch_size, rng)
    else:
        permutation = rng.permutation(len(examples))
        order = [permutation[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    while True:
        for index in order:
            yield collate([examples[i] for i in index])


def train_step_ours(model: PromptBart, optimizer: torch.optim.Optimizer, batch: dict, device: torch.device,
                    dtype: torch.dtype | None, forward: Callable) -> int:
    tensors = to_device(batch, device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss, _ = forward(**tensors)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return int((batch["attention_mask"]).sum() + (batch["labels"] != IGNORE).sum())


def train_step_reference(model: ReferencePromptBart, optimizer: torch.optim.Optimizer, batch: dict,
                         device: torch.device) -> int:
    tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    model(**tensors).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return int((batch["attention_mask"]).sum() + (batch["labels"] != IGNORE).sum())


def timed(step: Callable[[], int], steps: int, device: torch.device) -> float:
    """Tokens per second over `steps` calls (after the caller's warm-up)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - started)


def training_flops_per_token(config: GeneratorConfig, encoder_share: float) -> float:
    """6 x parameters touched per token (encoder tokens: the encoder; decoder tokens: decoder and LM head)."""
    d, f = config.d_model, config.ffn_dim
    encoder = config.encoder_layers * (4 * d * d + 2 * d * f)
    decoder = config.decoder_layers * (8 * d * d + 2 * d * f) + d * config.vocab_size
    return 6.0 * (encoder_share * encoder + (1 - encoder_share) * decoder)


# -- generation ------------------------------------------------------------------------------------------

def generate_reference(model: ReferencePromptBart, requests: list[Request], batch_size: int, max_len: int,
                       device: torch.device) -> list[list[int]]:
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            ids = torch.tensor([[BOS, EOS]] * len(chunk), device=device)
            mask = torch.ones_like(ids)
            age = torch.tensor([r.age for r in chunk], device=device)
            sex = torch.tensor([0 if r.sex == "F" else 1 for r in chunk], device=device)
            embeds = torch.cat([model.encoder_prompt(age, sex), model.model.shared(ids)], 1)
            encoded = model.model.encoder(inputs_embeds=embeds, attention_mask=F.pad(mask, (N_PROMPTS, 0), value=1))
            out = model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=encoded.last_hidden_state),
                                 attention_mask=mask, age=age, sex=sex, do_sample=True, top_k=0, max_length=max_len,
                                 decoder_start_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
            outputs.extend(out.tolist())
    return outputs


def validity_of(tokenizer: CodeTokenizer, sequences: list[list[int]], requests: list[Request]) -> float:
    """Share of reference outputs that are well formed, duplicate-free and possible for the patient."""
    good = 0
    for ids, request in zip(sequences, requests, strict=True):
        ids = [i for i in ids[1:] if i != PAD]
        visits = tokenizer.decode(ids)
        closed = bool(ids) and ids[-1] == EOS and ids.count(VISIT) == ids.count(END_VISIT) == len(visits) > 0
        fine = closed and all(v and len(set(v)) == len(v) for v in visits) and not any(
            icd9.violations(c, request.age, request.sex) for v in visits for c in v)
        good += fine
    return good / max(len(sequences), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="", help="MEDS cohort (default: simulate --patients)")
    parser.add_argument("--patients", type=int, default=4000)
    parser.add_argument("--model", default="", help="a trained model dir (else a model is trained --warm-steps)")
    parser.add_argument("--size", default="small")
    parser.add_argument("--min-code-count", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-steps", type=int, default=150, help="training steps before timing generation")
    parser.add_argument("--gen-records", type=int, default=256)
    parser.add_argument("--gen-batch", type=int, default=64)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="GPU dense bf16 peak (default: by name)")
    parser.add_argument("--work", default="/tmp/ehrgen-speed")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = autocast_dtype("auto", device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False      # the reference is plain fp32
    work = Path(args.work)
    cohort = Path(args.cohort) if args.cohort else work / f"cohort-{args.patients}"
    if not cohort.exists():
        from ehrlab.cohort.simulator import SimulationConfig, simulate

        simulate(SimulationConfig(n_patients=args.patients, seed=7), cohort)
    patients = load_patients(cohort)
    if args.model:
        bundle = load_bundle(args.model, device=device)
        tokenizer = bundle.tokenizer
    else:
        tokenizer = CodeTokenizer.from_patients(patients, min_count=args.min_code_count)
        config = GeneratorConfig.from_size(args.size, tokenizer.vocab_size, max_positions=args.max_len,
                                           tokenizer_fingerprint=tokenizer.fingerprint)
        torch.manual_seed(0)
        bundle = GeneratorBundle(PromptBart(config).to(device), tokenizer, {"code_counts": {}})
    model = bundle.model
    config = model.config
    encoded = [p for p in encode_patients(patients, tokenizer, config.max_positions) if p.visits]
    rng = np.random.default_rng(0)
    examples = make_examples(encoded, tokenizer, rng, Corruption())
    result: dict[str, Any] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                              "threads": args.threads, "size": args.size, "vocab": tokenizer.vocab_size,
                              "parameters": model.num_parameters(), "records": len(encoded),
                              "mean_tokens_per_record": float(np.mean([len(e.target) for e in examples]))}
    print(json.dumps(result))
    params = TrainGeneratorParams(lr=5e-4)
    ours_optimizer = make_optimizer(model, params, device)
    ours_batches = batches(examples, args.batch_size, bucketed=True, rng=np.random.default_rng(1))
    forward = torch.compile(model, dynamic=True) if args.compile else model
    model.train()

    def ours() -> int:
        return train_step_ours(model, ours_optimizer, next(ours_batches), device, dtype, forward)

    for _ in range(args.warm_steps if not args.model else 3):
        ours()
    if not args.skip_training:
        reference = reference_from(model).to(device).train()
        reference_optimizer = torch.optim.AdamW(reference.parameters(), lr=5e-4, weight_decay=1e-4)
        reference_batches = batches(examples, args.batch_size, bucketed=False, rng=np.random.default_rng(1))

        def plain() -> int:
            return train_step_reference(reference, reference_optimizer, next(reference_batches), device)

        for _ in range(3):
            plain()
        ours_rates, plain_rates = [], []
        for _ in range(args.rounds):
            plain_rates.append(timed(plain, args.steps, device))
            ours_rates.append(timed(ours, args.steps, device))
        ours_rate, plain_rate = statistics.median(ours_rates), statistics.median(plain_rates)
        result["train_tokens_per_s"] = {"reference": plain_rate, "ehrlab": ours_rate, "ratio": ours_rate / plain_rate}
        if device.type == "cuda":
            name = torch.cuda.get_device_name()
            peak = args.peak_tflops * 1e12 or next((v for k, v in PEAK_BF16.items() if k in name), 0.0)
            share = float(np.mean([len(e.encoder) / (len(e.encoder) + len(e.target)) for e in examples]))
            flops = training_flops_per_token(config, share)
            if peak:
                result["mfu"] = {"reference": plain_rate * flops / peak, "ehrlab": ours_rate * flops / peak,
                                 "peak_flops": peak}
        print(json.dumps(result["train_tokens_per_s"]), json.dumps(result.get("mfu", {})))
        del reference, reference_optimizer

    model.eval()
    picks = np.random.default_rng(2).integers(0, len(encoded), args.gen_records)
    requests = [Request(float(encoded[i].age), "FM"[encoded[i].sex]) for i in picks]
    reference = reference_from(model).to(device).eval()
    generator = Generator(bundle, device=device)
    sampling = SamplingParams(batch_size=args.gen_batch, max_visits=1000, max_codes_per_visit=1000,
                              max_len=config.max_positions)
    ours_rates, plain_rates, plain_validity, ours_validity, ours_tokens, plain_tokens = [], [], [], [], [], []
    for round_index in range(args.rounds):
        started = time.perf_counter()
        sequences = generate_reference(reference, requests, args.gen_batch, config.max_positions, device)
        plain_rates.append(len(requests) / (time.perf_counter() - started))
        plain_validity.append(validity_of(tokenizer, sequences, requests))
        plain_tokens.append(float(np.mean([sum(t != PAD for t in s) for s in sequences])))
        started = time.perf_counter()
        records = list(generator.generate(requests, seed=round_index, sampling=sampling))
        ours_rates.append(len(requests) / (time.perf_counter() - started))
        written = [tokenizer.encode(r.visits) for r in records]
        ours_validity.append(validity_of(tokenizer, written, requests))
        ours_tokens.append(float(np.mean([len(w) for w in written])))
    result["generate_records_per_s"] = {
        "reference": statistics.median(plain_rates), "ehrlab": statistics.median(ours_rates),
        "ratio": statistics.median(ours_rates) / statistics.median(plain_rates),
        "reference_valid_share": statistics.mean(plain_validity),
        "ehrlab_valid_share": statistics.mean(ours_validity),
        "reference_mean_tokens": statistics.mean(plain_tokens), "ehrlab_mean_tokens": statistics.mean(ours_tokens)}
    print(json.dumps(result["generate_records_per_s"]))
    work.mkdir(parents=True, exist_ok=True)
    (work / f"speed-{device.type}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
