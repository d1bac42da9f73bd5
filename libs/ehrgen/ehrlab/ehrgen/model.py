"""PromptBart: a BART encoder-decoder over code tokens, conditioned on demographic prompts.

The whole model is in this file. It is transformers' BART (built from a config: no pretrained weights
exist for a code vocabulary) with PromptEHR's conditional prompts: age goes through a small MLP and sex
through an embedding (both via a d_hidden=128 bottleneck) to one vector each, and these two vectors are
prepended to the token embeddings of the encoder and, with separate parameters, of the decoder:

    encoder:  [age_e, sex_e, <s>, <v>, c1, <mask>, </v>, …, </s>]        (a corrupted or partial record)
    decoder:  [age_d, sex_d, <s>, <v>, c1, c2, </v>, …]  -> predicts  <v>, c1, c2, </v>, …, </s>

The language-model head is tied to the token embeddings plus a learned bias. Attention runs through
PyTorch's scaled_dot_product_attention ("sdpa") unless "eager" is asked for. `decode` takes a
transformers KV cache, so generation feeds one token per step (see ehrlab.ehrgen.generate).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BartConfig, BartModel

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.tokenizer import BOS, EOS, IGNORE, PAD

N_PROMPTS = 2            # one prompt vector for age, one for sex

# name -> (d_model, layers per stack, attention heads, feed-forward width); "base" is bart-base.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (32, 1, 2, 64),
    "small": (128, 2, 4, 512),
    "medium": (256, 3, 4, 1024),
    "large": (512, 4, 8, 2048),
    "base": (768, 6, 12, 3072),
}


@dataclass(frozen=True)
class GeneratorConfig:
    vocab_size: int
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 512
    max_positions: int = 512
    dropout: float = 0.1
    prompt_hidden: int = 128
    n_sexes: int = 2
    attention: str = "sdpa"
    tokenizer_fingerprint: str = ""

    @classmethod
    def from_size(cls, size: str, vocab_size: int, **overrides: Any) -> GeneratorConfig:
        if size not in SIZES:
            raise SpecError(f"unknown model size {size!r} (known: {', '.join(SIZES)})", path="size")
        d_model, layers, heads, ffn = SIZES[size]
        return cls(vocab_size=vocab_size, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                   heads=heads, ffn_dim=ffn, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(body) - known
        if unknown:
            raise SpecError(f"unknown model config key {sorted(unknown)[0]!r}", path="config")
        return cls(**body)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))


class DemographicPrompt(nn.Module):
    """(age, sex) -> two prompt vectors: age by a small MLP, sex by an embedding, through d_hidden."""

    def __init__(self, d_model: int, d_hidden: int, n_sexes: int) -> None:
        super().__init__()
        self.age = nn.Sequential(nn.Linear(1, d_hidden), nn.LayerNorm(d_hidden), nn.GELU(),
                                 nn.Linear(d_hidden, d_model))
        self.sex = nn.Sequential(nn.Embedding(n_sexes, d_hidden), nn.Linear(d_hidden, d_model))

    def forward(self, age: torch.Tensor, sex: torch.Tensor) -> torch.Tensor:
        scaled_age = (age.to(self.age[0].weight.dtype) / 50.0 - 1.0).unsqueeze(-1)   # ages 0-100 -> [-1, 1]
        return torch.stack([self.age(scaled_age), self.sex(sex)], dim=1)              # [B, 2, d_model]


class PromptBart(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        bart_config = BartConfig(
            vocab_size=config.vocab_size, d_model=config.d_model,
            encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers,
            encoder_attention_heads=config.heads, decoder_attention_heads=config.heads,
            encoder_ffn_dim=config.ffn_dim, decoder_ffn_dim=config.ffn_dim,
            max_position_embeddings=config.max_positions + N_PROMPTS, dropout=config.dropout,
            attention_dropout=0.0, activation_dropout=0.0, scale_embedding=False,
            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=BOS,
        )
        bart_config._attn_implementation = config.attention
        self.bart = BartModel(bart_config)
        self.encoder_prompt = DemographicPrompt(config.d_model, config.prompt_hidden, config.n_sexes)
        self.decoder_prompt = DemographicPrompt(config.d_model, config.prompt_hidden, config.n_sexes)
        self.logits_bias = nn.Parameter(torch.zeros(config.vocab_size))

    @property
    def embeddings(self) -> nn.Embedding:
        return self.bart.shared

    def num_parameters(self, *, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        if not embeddings:
            total -= self.embeddings.weight.numel()
        return total

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, age: torch.Tensor,
               sex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states of [prompts, tokens] and the attention mask that covers the prompts too."""
        embeds = torch.cat([self.encoder_prompt(age, sex).to(self.embeddings.weight.dtype),
                            self.embeddings(input_ids)], dim=1)
        mask = F.pad(attention_mask, (N_PROMPTS, 0), value=1)
        hidden = self.bart.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return hidden, mask

    def decode(self, input_ids: torch.Tensor, encoder_hidden: torch.Tensor, encoder_mask: torch.Tensor,
               age: torch.Tensor, sex: torch.Tensor, cache: Any = None, *, use_cache: bool = False
               ) -> tuple[torch.Tensor, Any]:
        """Decoder states of the tokens (prompt positions dropped) and the KV cache when one is kept.

        The first call (no cache) prepends the decoder prompts; later calls feed only the new tokens.

        The decoder needs no padding mask: its inputs are right-padded and attention is causal, so real
        tokens never see padding, and padded positions carry label IGNORE.
        """
        embeds = self.embeddings(input_ids)
        first_call = cache is None or cache.get_seq_length() == 0
        if first_call:
            embeds = torch.cat([self.decoder_prompt(age, sex).to(embeds.dtype), embeds], dim=1)
        out = self.bart.decoder(inputs_embeds=embeds, encoder_hidden_states=encoder_hidden,
                                encoder_attention_mask=encoder_mask, past_key_values=cache,
                                use_cache=use_cache or cache is not None)
        hidden = out.last_hidden_state
        return (hidden[:, N_PROMPTS:] if first_call else hidden), out.past_key_values

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.embeddings.weight, self.logits_bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
                labels: torch.Tensor, age: torch.Tensor, sex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over labelled positions, and the logits of those positions only.

        Logits are computed for labelled positions only: on a large vocabulary the LM head over padding
        would cost as much as the rest of the model.
        """
        encoder_hidden, encoder_mask = self.encode(input_ids, attention_mask, age, sex)
        hidden, _ = self.decode(decoder_input_ids, encoder_hidden, encoder_mask, age, sex)
        keep = labels != IGNORE
        logits = self.logits(hidden[keep])
        return F.cross_entropy(logits.float(), labels[keep]), logits
