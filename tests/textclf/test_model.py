"""The model's pieces: pooling, head, losses, optimizers and schedules (small tensors, no encoder)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ehrlab.core.errors import SpecError
from ehrlab.textclf.kinds import HeadSpec, LossSpec, OptimizerSpec, SchedulerSpec
from ehrlab.textclf.model import AttentionPooling, best_spans, classification_loss, mlp, pool
from ehrlab.textclf.optim import Lion, build_optimizer, build_scheduler, parameter_groups


def test_pooling_ignores_padding() -> None:
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(states, mask, "cls", None).tolist() == [[1.0, 2.0]]
    assert pool(states, mask, "mean", None).tolist() == [[2.0, 3.0]]
    assert pool(states, mask, "max", None).tolist() == [[3.0, 4.0]]
    attention = AttentionPooling(2)
    pooled = pool(states, mask, "attention", attention)
    assert 1.0 <= pooled[0, 0] <= 3.0 and 2.0 <= pooled[0, 1] <= 4.0  # a weighted mean of the real tokens


def test_head_depth_width_and_activation() -> None:
    head = mlp(384, 3, HeadSpec(layers=3, hidden=64, activation="silu"), dropout=0.1)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(384, 64), (64, 64), (64, 3)]
    assert sum(isinstance(m, nn.SiLU) for m in head) == 2
    assert len([m for m in mlp(384, 2, HeadSpec(layers=1), 0.0) if isinstance(m, nn.Linear)]) == 1


def test_losses() -> None:
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    ce = F.cross_entropy(logits, targets)
    assert classification_loss(logits, targets, LossSpec(name="ce")) == pytest.approx(ce.item())
    assert classification_loss(logits, targets, LossSpec(name="focal", gamma=0.0)) == pytest.approx(ce.item())
    assert classification_loss(logits, targets, LossSpec(name="focal", gamma=2.0)) < ce
    smoothed = classification_loss(logits, targets, LossSpec(name="label_smoothing", smoothing=0.2))
    assert smoothed == pytest.approx(F.cross_entropy(logits, targets, label_smoothing=0.2).item())


def test_best_span_respects_order_and_length() -> None:
    logits = torch.full((1, 6, 2), -5.0)
    logits[0, 4, 0], logits[0, 1, 1] = 9.0, 9.0   # the best start comes after the best end
    logits[0, 2, 0], logits[0, 3, 1] = 5.0, 5.0
    assert best_spans(logits) == [(2, 3)]


def test_lion_takes_sign_steps_with_decoupled_decay() -> None:
    weight = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = Lion([weight], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    weight.grad = torch.tensor([0.3, -0.1, 0.0])
    optimizer.step()
    expected = torch.tensor([1.0, -2.0, 0.5]) * (1 - 0.1 * 0.5) - 0.1 * torch.tensor([1.0, -1.0, 0.0])
    assert torch.allclose(weight.detach(), expected)
    quadratic = nn.Parameter(torch.tensor([3.0]))
    lion = Lion([quadratic], lr=0.02)
    for _ in range(1000):  # overshoots while the slow momentum turns, then settles within one step of 0
        lion.zero_grad()
        (quadratic ** 2).sum().backward()
        lion.step()
    assert abs(quadratic.item()) <= 0.0201


def test_weight_decay_spares_biases_and_the_head_gets_its_lr() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    head = list(model[2].parameters())
    groups = parameter_groups(model, head, lr=1e-5, head_lr=1e-3, weight_decay=0.1)
    by_lr_decay = {(g["lr"], g["weight_decay"]): sum(p.numel() for p in g["params"]) for g in groups}
    assert by_lr_decay == {(1e-5, 0.1): 16, (1e-5, 0.0): 4 + 8, (1e-3, 0.1): 8, (1e-3, 0.0): 2}


def test_eight_bit_adamw_needs_bitsandbytes() -> None:
    pytest.importorskip("transformers")
    try:
        import bitsandbytes  # noqa: F401
        pytest.skip("bitsandbytes is installed here")
    except ImportError:
        pass
    with pytest.raises(SpecError, match="bitsandbytes") as caught:
        build_optimizer([{"params": [nn.Parameter(torch.zeros(1))]}], OptimizerSpec(name="adamw_8bit"), 1e-3)
    assert caught.value.path == "params.optimizer.name"


@pytest.mark.parametrize(("name", "extra", "expected"), [
    ("constant", {}, [1.0, 1.0, 1.0]),
    ("linear", {}, [1.0, 0.5, 0.05]),
    ("cosine", {}, [1.0, 0.5, 0.00616]),
    ("cosine_with_restarts", {"num_cycles": 2}, [1.0, 1.0, 0.02447]),
    ("polynomial", {"power": 2.0, "final_lr_ratio": 0.1}, [1.0, 0.325, 0.10225]),
])
def test_schedules_after_warmup(name: str, extra: dict, expected: list[float]) -> None:
    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = build_scheduler(optimizer, SchedulerSpec(name=name, **extra), total_steps=30, warmup_ratio=1 / 3)
    rates = []
    for _ in range(30):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1 / 11) and rates[5] == pytest.approx(6 / 11)  # linear warmup over 10 steps
    assert [rates[10], rates[20], rates[29]] == pytest.approx(expected, abs=2e-3)


def test_one_cycle_peaks_at_the_end_of_warmup() -> None:
    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    scheduler = build_scheduler(optimizer, SchedulerSpec(name="one_cycle"), total_steps=20, warmup_ratio=0.25)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.5, rel=0.05) and rates.index(max(rates)) in (4, 5)
    assert rates[0] < 0.05 and rates[-1] < 0.01
