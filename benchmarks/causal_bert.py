"""Fine-tuning throughput of the transformer arm: samples per second, bf16 against fp32 on a GPU.

    .venv/bin/python -m benchmarks.causal_bert [--size full|small] [--steps 50] [--batch-size 128]

Times the fine-tuning step of `finetune_bert` (CausalBert: encoder + propensity and outcome heads,
forward, loss, backward, AdamW step) on random code sequences of full length, after warm-up steps.
On a GPU it runs twice side by side, bf16 autocast (what the task uses there) and plain fp32, and prints
the ratio; on a machine without one it measures CPU fp32 only (use --size small there).
"""

from __future__ import annotations

import argparse
import time

from benchmarks.harness import machine, table

SIZES = {
    "small": {"hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128, "max_length": 128},
    "full": {"hidden_size": 256, "layers": 4, "heads": 4, "intermediate_size": 1024, "max_length": 512},
}


def throughput(size: dict[str, int], *, device: str, bf16: bool, steps: int, batch_size: int,
               vocabulary: int = 8000) -> float:
    import torch
    from transformers import BertConfig, BertModel

    from ehrlab.causal.bert import CausalBert, finetune_loss

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocabulary, hidden_size=size["hidden_size"], num_hidden_layers=size["layers"],
                        num_attention_heads=size["heads"], intermediate_size=size["intermediate_size"],
                        max_position_embeddings=size["max_length"], pad_token_id=0, type_vocab_size=1)
    model = CausalBert(BertModel(config, add_pooling_layer=False), n_outcomes=2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(1, vocabulary, (batch_size, size["max_length"]), device=device)
    exposure = torch.randint(0, 2, (batch_size,), device=device)
    outcomes = torch.randint(0, 2, (batch_size, 2), device=device)

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = finetune_loss(model, ids, exposure, outcomes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    import torch

    print(machine())
    size = SIZES[args.size]
    runs = [("cuda", True), ("cuda", False)] if torch.cuda.is_available() else [("cpu", False)]
    rows = []
    for device, bf16 in runs:
        rate = throughput(size, device=device, bf16=bf16, steps=args.steps, batch_size=args.batch_size)
        rows.append({"device": device, "precision": "bf16" if bf16 else "fp32", "samples_per_s": rate,
                     "tokens_per_s": rate * size["max_length"]})
    print(table(rows, title=f"\nfine-tuning, size {args.size} {size}, batch {args.batch_size}"))
    if len(rows) == 2:
        print(f"bf16 / fp32: {rows[0]['samples_per_s'] / rows[1]['samples_per_s']:.2f}")


if __name__ == "__main__":
    main()
