"""Optimizers (AdamW, 8-bit AdamW, Adafactor, Lion) and learning-rate schedules.

Weight decay applies to weight matrices only (not to biases or normalisation weights). The head may
have its own learning rate. Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")
is implemented here: no package providing it is a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from ehrlab.core.errors import SpecError
from ehrlab.textclf.kinds import OptimizerSpec, SchedulerSpec


class Lion(torch.optim.Optimizer):
    """update = sign(beta1 * m + (1 - beta1) * g); m <- beta2 * m + (1 - beta2) * g; decoupled decay.

    Lion's updates have unit magnitude per coordinate, so it wants a learning rate 3-10x smaller
    and a weight decay 3-10x larger than AdamW's.
    """

    def __init__(self, params: Iterable[nn.Parameter] | Iterable[dict], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, not {lr}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                momentum = state["exp_avg"]
                param.mul_(1 - group["lr"] * group["weight_decay"])
                update = momentum.mul(beta1).add_(param.grad, alpha=1 - beta1).sign_()
                param.add_(update, alpha=-group["lr"])
                momentum.mul_(beta2).add_(param.grad, alpha=1 - beta2)
        return loss


def parameter_groups(model: nn.Module, head: list[nn.Parameter], *, lr: float, head_lr: float,
                     weight_decay: float) -> list[dict]:
    head_ids = {id(p) for p in head}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        decays = param.ndim >= 2  # matrices decay; biases and LayerNorm weights do not
        groups.setdefault((id(param) in head_ids, decays), []).append(param)
    return [{"params": params, "lr": head_lr if is_head else lr, "weight_decay": weight_decay if decays else 0.0}
            for (is_head, decays), params in groups.items()]


def build_optimizer(groups: list[dict], spec: OptimizerSpec, lr: float) -> torch.optim.Optimizer:
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(spec.beta1 or 0.9, spec.beta2 or 0.999), eps=spec.eps)
    if spec.name == "lion":
        return Lion(groups, lr=lr, betas=(spec.beta1 or 0.9, spec.beta2 or 0.99))
    if spec.name == "adafactor":
        from transformers.optimization import Adafactor

        # a fixed learning rate (the schedule below applies), as the T5 fine-tuning recipes do
        return Adafactor(groups, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False,
                         beta1=spec.beta1)
    try:
        import bitsandbytes
    except ImportError:
        raise SpecError("adamw_8bit needs the bitsandbytes package (with a CUDA GPU); it is not installed here",
                        path="params.optimizer.name") from None
    return bitsandbytes.optim.AdamW8bit(groups, lr=lr, betas=(spec.beta1 or 0.9, spec.beta2 or 0.999), eps=spec.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, spec: SchedulerSpec, *, total_steps: int,
                    warmup_ratio: float) -> LRScheduler:
    """Schedules over `total_steps` optimizer steps, after a linear warmup of warmup_ratio x total_steps."""
    warmup = int(total_steps * warmup_ratio)
    if spec.name == "one_cycle":  # its own warmup: up to each group's lr, then cosine annealing down
        cycles_momentum = "betas" in optimizer.defaults or "momentum" in optimizer.defaults  # not Adafactor
        return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=max(total_steps, 2),
                          pct_start=warmup_ratio or 0.3, anneal_strategy="cos", cycle_momentum=cycles_momentum)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if spec.name == "constant":
            return 1.0
        if spec.name == "linear":
            return 1.0 - progress
        if spec.name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if spec.name == "cosine_with_restarts":
            if progress >= 1.0:
                return 0.0
            return 0.5 * (1.0 + math.cos(math.pi * ((spec.num_cycles * progress) % 1.0)))
        # polynomial decay from 1 to final_lr_ratio
        return (1 - spec.final_lr_ratio) * (1 - progress) ** spec.power + spec.final_lr_ratio

    return LambdaLR(optimizer, factor)
