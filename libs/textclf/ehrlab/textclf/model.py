"""The text classifier: a pretrained transformer encoder with a small head, and its losses.

    encoder (AutoModel) -> token states (B, T, H)
      classification: pooling (cls | mean | max | attention) -> (B, H) -> MLP -> (B, n_labels)
      span:           MLP on every token -> (B, T, 2): start and end logits

The MLP has `layers` linear layers: layers-1 hidden ones of width `hidden` with the activation and
dropout between, then the output layer (layers=1 is a plain linear probe on the pooled state).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel

from ehrlab.core.errors import SpecError
from ehrlab.textclf.kinds import HeadSpec, LossSpec

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


class AttentionPooling(nn.Module):
    """A learned query scores each token; the pooled state is the softmax-weighted sum of tokens."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(states).squeeze(-1).masked_fill(mask == 0, torch.finfo(states.dtype).min)
        weights = torch.softmax(scores, dim=-1).unsqueeze(-1)
        return (weights * states).sum(dim=1)


def pool(states: torch.Tensor, mask: torch.Tensor, how: str, attention: AttentionPooling | None) -> torch.Tensor:
    if how == "cls":
        return states[:, 0]
    keep = mask.unsqueeze(-1).to(states.dtype)
    if how == "mean":
        return (states * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
    if how == "max":
        return states.masked_fill(keep == 0, torch.finfo(states.dtype).min).max(dim=1).values
    assert attention is not None
    return attention(states, mask)


def mlp(width: int, out: int, head: HeadSpec, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for _ in range(head.layers - 1):
        layers += [nn.Linear(width, head.hidden), ACTIVATIONS[head.activation](), nn.Dropout(dropout)]
        width = head.hidden
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def truncate_layers(encoder: nn.Module, keep: int) -> None:
    """Keeps the first `keep` transformer layers (a smaller, faster model from the same weights)."""
    for owner in ("encoder", "transformer"):
        stack = getattr(getattr(encoder, owner, None), "layer", None)
        if isinstance(stack, nn.ModuleList):
            if keep > len(stack):
                raise SpecError(f"the encoder has only {len(stack)} layers", path="params.encoder_layers")
            getattr(encoder, owner).layer = stack[:keep]
            encoder.config.num_hidden_layers = keep
            return
    raise SpecError(f"cannot truncate a {type(encoder).__name__}: no encoder.layer list", path="params.encoder_layers")


class TextClassifier(nn.Module):
    def __init__(self, encoder_dir: Path, *, task: str, n_labels: int, head: HeadSpec, dropout: float,
                 encoder_layers: int | None = None) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(encoder_dir))
        if encoder_layers:
            truncate_layers(self.encoder, encoder_layers)
        width = self.encoder.config.hidden_size
        self.task = task
        self.pooling = head.pooling
        self.attention = AttentionPooling(width) if task == "classification" and head.pooling == "attention" else None
        self.head = mlp(width, n_labels if task == "classification" else 2, head, dropout)

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.")]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        if self.task == "classification":
            return self.head(pool(states, attention_mask, self.pooling, self.attention))
        logits = self.head(states)                                    # (B, T, 2)
        return logits.masked_fill((attention_mask == 0).unsqueeze(-1), torch.finfo(logits.dtype).min)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, loss: LossSpec) -> torch.Tensor:
    """Cross-entropy, label-smoothed cross-entropy, or focal loss (Lin et al. 2017, no class weights)."""
    logits = logits.float()
    if loss.name == "ce":
        return F.cross_entropy(logits, targets)
    if loss.name == "label_smoothing":
        return F.cross_entropy(logits, targets, label_smoothing=loss.smoothing)
    log_p = F.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
    return (-(1 - log_p.exp()) ** loss.gamma * log_p).mean()


def span_loss(logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, loss: LossSpec) -> torch.Tensor:
    """The classification loss over token positions, for the start and for the end, averaged."""
    keep = starts >= 0  # spans cut off by max_length do not train
    if not keep.any():
        return logits.sum() * 0.0
    start_logits, end_logits = logits[keep].unbind(dim=-1)
    start_loss = classification_loss(start_logits, starts[keep], loss)
    return (start_loss + classification_loss(end_logits, ends[keep], loss)) / 2


def best_spans(logits: torch.Tensor, max_tokens: int = 64) -> list[tuple[int, int]]:
    """(start, end) maximising start + end logit with start <= end < start + max_tokens, per row."""
    start_logits, end_logits = logits.float().unbind(dim=-1)         # (B, T) each
    scores = start_logits.unsqueeze(2) + end_logits.unsqueeze(1)     # (B, T, T): [start, end]
    length = scores.shape[-1]
    allowed = torch.ones(length, length, dtype=torch.bool, device=scores.device).triu().tril(max_tokens - 1)
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = scores.flatten(1).argmax(dim=1)
    return [(int(i) // length, int(i) % length) for i in flat]
