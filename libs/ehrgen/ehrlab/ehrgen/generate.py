"""Generation: batched sampling with a KV cache and validity guaranteed by the decoder's constraints.

One decode loop serves every mode. Each request is (age, sex, history); the encoder reads the history
(empty for a fully synthetic record) and the decoder starts from <s>. Tokens of the history are forced
(the decoder writes the history out again, then continues it), every other token is sampled from the
model's distribution restricted to what may come next:

    after <s>          <v>
    after <v>          a code (hierarchical: a category that still has an allowed code)
    after a code       another code, or </v>
    after a category   a code of that category
    after </v>         <v>, or </s>

"A code" is always one the patient may have (ehrlab.cohort.icd9 rules for the record's age and sex)
and not yet in the current visit; length limits close visits and records in time. So every record
is well formed, has no age- or sex-impossible code and no duplicate within a visit, whatever the
weights say. With `sampling.visits: training` a fully synthetic record's number of visits is drawn from
the training records of the same sex and age band: the model decides what every visit holds, the data
how many there are (left to itself, a small model ends records early: 11-14 visits where the data has
19; docs/ehrgen.md says when the option helps and when it hurts). Sampling: temperature, top-k,
top-p, or greedy. The self-attention cache is preallocated for the whole record; finished rows idle
until a quarter of the batch is done and then leave it with their cache rows, so a batch costs about
what its records cost, not its size times its longest record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer, EncoderDecoderCache

from ehrlab.cohort import icd9
from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.artifact import GeneratorBundle, age_band
from ehrlab.ehrgen.data import SEX_INDEX
from ehrlab.ehrgen.kinds import MAX_COUNT, SamplingParams
from ehrlab.ehrgen.model import N_PROMPTS
from ehrlab.ehrgen.records import Patient, Visits, check_demographics, check_visits
from ehrlab.ehrgen.tokenizer import BOS, END_VISIT, EOS, PAD, VISIT, HierarchicalTokenizer

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Request:
    age: float
    sex: str
    history: Visits = ()


def requests_for(demographics: Sequence[tuple[Any, Any]], count: int, history: Any = (),
                 *, path: str = "demographics") -> list[Request]:
    """`count` requests per (age, sex); every field is checked before anything is generated."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpecError(f"count must be a positive number of patients, got {count!r}", path="count")
    if not demographics:
        raise SpecError("at least one (age, sex) is needed", path=path)
    if count * len(demographics) > MAX_COUNT:
        raise SpecError(f"{count * len(demographics):,} patients asked for; at most {MAX_COUNT:,} per request",
                        path="count")
    visits = check_visits(list(history or ()), path="history")
    requests = []
    for i, (age, sex) in enumerate(demographics):
        age, sex = check_demographics(age, sex, path=f"{path}[{i}]")
        requests.extend([Request(age, sex, visits)] * count)
    return requests


class Generator:
    """Samples records from a trained generator under the decoding constraints."""

    def __init__(self, bundle: GeneratorBundle, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None) -> None:
        self.device = torch.device(device)
        self.model = bundle.model.to(self.device).eval()
        self.dtype = torch.bfloat16 if dtype is None and self.device.type == "cuda" else dtype
        self.tokenizer = tokenizer = bundle.tokenizer
        self.rules = icd9.rules_for(tokenizer.codes)
        kinds = torch.from_numpy(tokenizer.token_kinds()).to(self.device)
        self.is_category = kinds == 1
        self.is_code = kinds == 2
        self.code_offset = tokenizer.code_offset
        self.hierarchical = isinstance(tokenizer, HierarchicalTokenizer)
        self.unit_len = 2 if self.hierarchical else 1
        if self.hierarchical:
            categories = tokenizer.category_of_code_tokens() - tokenizer.category_offset
            self.code_category = torch.from_numpy(categories).to(self.device)
            self.n_categories = len(tokenizer.categories)
        counts = np.array([bundle.code_counts.get(code, 0) for code in tokenizer.codes], dtype=np.float64)
        self.code_log_freq = torch.from_numpy(np.log(counts + 0.5)).float().to(self.device)
        self.visit_counts = _visit_count_tables(bundle.visit_counts)

    # -- validation: everything is checked before the first record is generated ----------------------
    def check(self, requests: Sequence[Request], sampling: SamplingParams) -> int:
        """Raises SpecError for any request the decoder could not honour; returns the decoder length limit."""
        max_len = sampling.max_len or self.model.config.max_positions
        if max_len > self.model.config.max_positions:
            raise SpecError(f"max_len {max_len} exceeds the model's {self.model.config.max_positions} positions",
                            path="sampling.max_len")
        minimal = 3 + 2 + self.unit_len   # <s> <v> code </v> </s>
        if max_len < minimal:
            raise SpecError(f"max_len {max_len} is too short for one visit ({minimal} tokens)", path="sampling.max_len")
        if sampling.hierarchical == "frequency" and not self.hierarchical:
            raise SpecError("frequency weights need a model with a hierarchical tokenizer",
                            path="sampling.hierarchical")
        checked: set[tuple[float, str, Visits]] = set()
        for i, request in enumerate(requests):
            key = (request.age, request.sex, request.history)
            if key in checked:
                continue
            checked.add(key)
            path = f"requests[{i}]"
            allowed = self.rules.mask(request.age, request.sex)
            if not allowed.any():
                raise SpecError("no code of the model's vocabulary is possible at this age and sex", path=path)
            self.tokenizer.check_known(request.history)
            for v, visit in enumerate(request.history):
                for c, code in enumerate(visit):
                    problems = icd9.violations(code, request.age, request.sex)
                    if problems:
                        raise SpecError(f"the history has a code impossible for this patient: {problems[0]}",
                                        path=f"history[{v}][{c}]")
            if len(request.history) >= sampling.max_visits:
                raise SpecError(f"the history has {len(request.history)} visits; max_visits is {sampling.max_visits}",
                                path="history")
            if any(len(visit) > sampling.max_codes_per_visit for visit in request.history):
                raise SpecError(f"a history visit has more than {sampling.max_codes_per_visit} codes "
                                "(max_codes_per_visit)", path="history")
            if len(self.tokenizer.encode(request.history)) > max_len:
                raise SpecError(f"the history does not fit in {max_len} decoder tokens", path="history")
        return max_len

    def generate(self, requests: Sequence[Request], *, seed: int, sampling: SamplingParams | None = None,
                 lock: AbstractContextManager[Any] | None = None) -> Iterator[Patient]:
        """Records in request order, batch by batch; nothing is yielded unless every request is valid.

        `lock` is held while a batch is computed (a server shares one model between streams)."""
        sampling = sampling or SamplingParams()
        max_len = self.check(requests, sampling)
        generator = torch.Generator(self.device).manual_seed(seed)
        for start in range(0, len(requests), sampling.batch_size):
            with lock or nullcontext():
                records = self._batch(requests[start:start + sampling.batch_size], generator, sampling, max_len)
            yield from records

    # -- the decode loop -----------------------------------------------------------------------------
    def _batch(self, requests: Sequence[Request], generator: torch.Generator, sampling: SamplingParams,
               max_len: int) -> list[Patient]:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                                                    enabled=self.dtype is not None):
            return self._decode(requests, generator, sampling, max_len)

    def _decode(self, requests: Sequence[Request], generator: torch.Generator, sampling: SamplingParams,
                max_len: int) -> list[Patient]:
        device, tokenizer = self.device, self.tokenizer
        n = len(requests)
        age = torch.tensor([r.age for r in requests], dtype=torch.float32, device=device)
        sex = torch.tensor([SEX_INDEX[r.sex] for r in requests], dtype=torch.long, device=device)
        encoder_ids = _pad([tokenizer.encode(r.history) for r in requests], PAD, device)
        encoder_hidden, encoder_mask = self.model.encode(encoder_ids, (encoder_ids != PAD).long(), age, sex)
        prefixes = [tokenizer.encode(r.history, close=False) for r in requests]
        prefix = _pad(prefixes, PAD, device)
        prefix_len = torch.tensor([len(p) for p in prefixes], device=device)
        common = int(prefix_len.min())

        allowed_codes = torch.from_numpy(self.rules.mask(age.cpu().numpy(), [r.sex for r in requests])).to(device)
        zeros = torch.zeros(n, dtype=torch.long, device=device)
        state = _State(rows=torch.arange(n, device=device), last=zeros, length=zeros, visits=zeros,
                       codes_in_visit=zeros, used=torch.zeros_like(allowed_codes), allowed_codes=allowed_codes,
                       age=age, sex=sex, encoder_hidden=encoder_hidden, encoder_mask=encoder_mask,
                       prefix=prefix, prefix_len=prefix_len,
                       target_visits=self._target_visits(requests, sampling, generator))
        for column in range(common):   # the prefix all rows share is fed at once
            self._advance(state, prefix[:, column])
        out = torch.full((n, max_len), PAD, dtype=torch.long, device=device)
        out[:, :common] = prefix[:, :common]
        layers = [_BufferLayer(max_len + N_PROMPTS) for _ in range(self.model.config.decoder_layers)]
        cache = EncoderDecoderCache(Cache(layers=layers), DynamicCache())
        hidden, cache = self.model.decode(prefix[:, :common], encoder_hidden, encoder_mask, age, sex, cache)
        while True:
            logits = self.model.logits(hidden[:, -1]).float()
            if sampling.hierarchical == "frequency":
                after_category = self.is_category[state.last][:, None]
                logits[:, self.code_offset:] = torch.where(after_category, self.code_log_freq,
                                                           logits[:, self.code_offset:])
            token = _sample(logits.masked_fill(~self._allowed(state, sampling, max_len), NEG_INF), sampling, generator)
            # one host sync per step (the count of finished rows): everything else stays on the device
            position = state.length.clamp(max=state.prefix.shape[1] - 1)
            token = torch.where(state.length < state.prefix_len, state.prefix.gather(1, position[:, None])[:, 0], token)
            slot = state.length.clamp(max=max_len - 1)          # finished rows idle on </s> and write nothing
            out[state.rows, slot] = torch.where(state.last == EOS, out[state.rows, slot], token)
            self._advance(state, token)
            done = state.last == EOS
            finished = int(done.sum())
            if finished == done.numel():
                break
            if finished * 4 >= done.numel():   # once a quarter are done, they leave the batch with their cache rows
                keep = (~done).nonzero()[:, 0]
                cache.reorder_cache(keep)
                state.select(keep)
                token = token[keep]
            hidden, cache = self.model.decode(token[:, None], state.encoder_hidden, state.encoder_mask,
                                              state.age, state.sex, cache)
        records = out.cpu().numpy()
        return [Patient(r.age, r.sex, tuple(tuple(v) for v in tokenizer.decode(records[i])))
                for i, r in enumerate(requests)]

    def _target_visits(self, requests: Sequence[Request], sampling: SamplingParams,
                       generator: torch.Generator) -> torch.Tensor:
        """Per row, the number of visits to write (0: where the model ends the record); greedy decoding
        takes the median, so that it stays deterministic."""
        targets = torch.zeros(len(requests), dtype=torch.long)
        if sampling.visits == "training" and self.visit_counts:
            draws = (np.full(len(requests), 0.5) if sampling.greedy else
                     torch.rand(len(requests), generator=generator, device=generator.device).cpu().numpy())
            for i, request in enumerate(requests):
                table = self.visit_counts.get((request.sex, age_band(request.age)))
                if table is not None and not request.history:
                    values, cdf = table
                    targets[i] = int(values[min(int(np.searchsorted(cdf, draws[i], side="right")), len(values) - 1)])
        return targets.clamp(max=sampling.max_visits).to(self.device)

    def _allowed(self, state: _State, sampling: SamplingParams, max_len: int) -> torch.Tensor:
        last = state.last
        rows = last.shape[0]
        allowed = torch.zeros(rows, self.is_code.shape[0], dtype=torch.bool, device=self.device)
        code_ok = state.allowed_codes & ~state.used
        # room for one more code, then </v> </s>; for one more visit, <v> code </v> </s>
        more_codes = (state.codes_in_visit < sampling.max_codes_per_visit) & (
            state.length + self.unit_len + 2 <= max_len)
        more_visits = (state.visits < sampling.max_visits) & (state.length + self.unit_len + 3 <= max_len)
        after_code = self.is_code[last]
        open_for_codes = (last == VISIT) | (after_code & more_codes)
        untargeted = state.target_visits == 0
        allowed[:, VISIT] = (last == BOS) | (
            (last == END_VISIT) & more_visits & (untargeted | (state.visits < state.target_visits)))
        # a finished row repeats </s>, never written; a target the length limits cannot reach gives way
        allowed[:, EOS] = ((last == END_VISIT) & (untargeted | (state.visits >= state.target_visits) | ~more_visits)
                           ) | (last == EOS)
        allowed[:, END_VISIT] = after_code
        if self.hierarchical:
            available = torch.zeros(rows, self.n_categories, device=self.device)
            available.index_add_(1, self.code_category, code_ok.float())
            allowed[:, self.is_category] = (available > 0) & open_for_codes[:, None]
            after_category = self.is_category[last]
            chosen = (last - self.tokenizer.category_offset).clamp(min=0)
            in_category = self.code_category[None, :] == chosen[:, None]
            allowed[:, self.code_offset:] = code_ok & in_category & after_category[:, None]
        else:
            allowed[:, self.code_offset:] = code_ok & open_for_codes[:, None]
        return allowed

    def _advance(self, state: _State, token: torch.Tensor) -> None:
        is_code = self.is_code[token]
        starts = token == VISIT
        state.codes_in_visit = torch.where(starts, 0, state.codes_in_visit + is_code.long())
        state.used &= ~starts[:, None]
        column = (token - self.code_offset).clamp(min=0)[:, None]
        state.used.scatter_(1, column, state.used.gather(1, column) | is_code[:, None])
        state.visits = state.visits + (token == END_VISIT).long()
        state.last = token
        state.length = state.length + 1


class _BufferLayer(DynamicLayer):
    """A self-attention cache layer that writes each step into buffers sized for the whole record.

    transformers' DynamicLayer concatenates on every step, copying the whole cache each time: quadratic in
    the record length, and half of the decode time on a CPU at a few hundred tokens.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            shape = (*key_states.shape[:2], self.capacity, key_states.shape[-1])
            self.key_buffer, self.value_buffer = key_states.new_empty(shape), value_states.new_empty(shape)
        end = self.length + key_states.shape[-2]
        self.key_buffer[:, :, self.length:end] = key_states
        self.value_buffer[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keeps the rows `beam_idx` (finished records leave the batch); copies only the filled part."""
        for name in ("key_buffer", "value_buffer"):
            old = getattr(self, name)
            new = old.new_empty((len(beam_idx), *old.shape[1:]))
            new[:, :, :self.length] = old[:, :, :self.length].index_select(0, beam_idx)
            setattr(self, name, new)
        self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]


@dataclass
class _State:
    """Per active row: where it is in the record and what it may still write."""

    rows: torch.Tensor            # row in the batch's output
    last: torch.Tensor            # last token
    length: torch.Tensor          # tokens written, <s> included
    visits: torch.Tensor          # visits closed
    codes_in_visit: torch.Tensor
    used: torch.Tensor            # [rows, codes] codes in the open visit
    allowed_codes: torch.Tensor   # [rows, codes] codes possible for the row's age and sex
    age: torch.Tensor
    sex: torch.Tensor
    encoder_hidden: torch.Tensor
    encoder_mask: torch.Tensor
    prefix: torch.Tensor          # forced tokens (the history)
    prefix_len: torch.Tensor
    target_visits: torch.Tensor   # visits the record is to have (0: where the model ends it)

    def select(self, keep: torch.Tensor) -> None:
        for name, value in vars(self).items():
            setattr(self, name, value[keep])


def _visit_count_tables(counts: dict[str, dict[str, dict[str, int]]]
                        ) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(sex, age band) -> (numbers of visits, their cumulative probabilities)."""
    tables = {}
    for sex, bands in counts.items():
        for band, histogram in bands.items():
            values = np.array([int(v) for v in histogram])
            weights = np.array(list(histogram.values()), dtype=np.float64)
            tables[(sex, int(band))] = (values, np.cumsum(weights) / weights.sum())
    return tables


def _pad(rows: Sequence[Sequence[int]], value: int, device: torch.device) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(device)


def _sample(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    """A token per row from masked logits (-inf where not allowed): greedy, or temperature/top-k/top-p sampling."""
    if sampling.greedy:
        return logits.argmax(-1)
    logits = logits / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(logits, min(sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, NEG_INF)
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = ordered.softmax(-1)
        drop = probs.cumsum(-1) - probs > sampling.top_p    # keep the token that crosses p
        logits = logits.scatter(1, order, ordered.masked_fill(drop, NEG_INF))
    # inverse-CDF sampling: one uniform draw per row (torch.multinomial is several times slower on CPUs);
    # the first index whose cumulative mass exceeds u never has probability 0
    cdf = logits.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp(max=cdf.shape[1] - 1)
