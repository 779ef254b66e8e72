"""gpt.py: the pretrained language model that every step of InstructGPT starts from.

Paper: Ouyang et al. 2022, section 3.5 ("we start with the GPT-3 pretrained language models")
and Figure 2. This file is GPT-2's
architecture (Radford et al. 2019) written out by hand, in miniature:

    x_0 = wte[tokens] + wpe[positions]
    x_l = x_{l-1} + attn(ln_1(x_{l-1}));  x_l = x_l + mlp(ln_2(x_l))        (pre-LayerNorm blocks)
    attn(x) = softmax(q k^T / sqrt(hs) + causal mask) v, per head           (Vaswani et al. 2017)
    logits = ln_f(x_L) @ wte^T                                             (tied unembedding)

and what later stages need from it, written once: log-probs of a response given a prompt
(SFT, RM and PPO) and batched generation with a KV cache (PPO's roll-outs). pretrain.py trains
this model from scratch (step 0); gpt2.py loads GPT-2's weights into it instead; checkpoints,
corpus windows, the optimizer and the CLI that every stage shares are in stage.py.

Deviations from the paper:
1. Size: 1-10M parameters and a 2048-token BPE trained on our corpus (tokenizer.py) instead of
   GPT-3 175B, so the recipe runs on a laptop CPU. The `gpt2` preset loads GPT-2 124M (gpt2.py).
2. Dense attention only (GPT-3 alternates dense and locally banded sparse layers).
3. Attention goes through `scaled_dot_product_attention` by default, for speed only; the
   explicit form below computes the same numbers (tests/test_gpt.py checks it).

Speed only, the same numbers (tests/test_gpt.py checks each against the plain form):
- the language-model loss never builds the (B, T, V) logits: `cross_entropy` works through
  the rows in chunks and makes its gradients on the way (about 1.7x faster on a CPU);
- log-probs are computed at the positions that are asked for (`response_logprobs`): PPO needs
  the response's tokens only, a sixth of a padded roll-out batch;
- under bf16 autocast on a CPU, attention stays fp32: PyTorch's bf16 attention backward is
  slower there than fp32's; and one new token's attention (sampling with the KV cache) is
  written out, which is faster than the fused kernel with a mask (docs/EXPERIMENTS.md, speed).

Faster, but another model: GELU is GPT-2's tanh approximation; `gelu="exact"` (x Phi(x), within
5e-4 of it) is 2.6-3.6x faster forward and backward on a CPU and makes a pretraining step about
8% shorter, yet over 3 seeds of the cpu preset its PPO-ptx won 57.5% [57.3, 57.8] against SFT
and tanh's 59.1% [57.3, 60.3], so the default stays GPT-2's (docs/EXPERIMENTS.md, speed).
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import tokenizer as tok


@dataclass
class GPTConfig:
    vocab_size: int = 2048
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # GPT-2 has biases in Linear and LayerNorm
    layer_norm_eps: float = 1e-5
    fused_attn: bool = True  # scaled_dot_product_attention instead of the explicit form
    gelu: str = "tanh"  # GPT-2's approximation | "exact" (x Phi(x), faster on a CPU)

    def __post_init__(self):
        if self.gelu not in ("exact", "tanh"):
            raise ValueError(f"gelu must be 'exact' or 'tanh', not {self.gelu!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- the model


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.n_head, self.fused = cfg.n_head, cfg.fused_attn
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout

    def forward(self, x, mask=None, cache=None, layer=0):
        """x (B, T, C); mask (B, 1, T, S) bool, True = may attend, or None = plain causal."""
        B, T, C = x.shape
        hs = C // self.n_head
        qkv = self.c_attn(x)
        fp32 = self.fused and T > 1 and x.device.type == "cpu" and qkv.dtype == torch.bfloat16
        if fp32:  # bf16 autocast on a CPU: attention in fp32, faster there (one cast, not 3)
            qkv = qkv.float()
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:  # append this step's keys/values; attend over all S so far
            k, v = cache.update(layer, k, v)  # (B, nh, S, hs)
        p = self.dropout if self.training else 0.0
        if self.fused and T > 1:  # speed only: the same numbers as the explicit branch
            args = dict(attn_mask=mask, dropout_p=p, is_causal=mask is None)
            if fp32:
                with torch.autocast("cpu", enabled=False):
                    y = F.scaled_dot_product_attention(q, k, v, **args)
            else:
                y = F.scaled_dot_product_attention(q, k, v, **args)
        else:  # written out; also one new token's attention, where it is the faster of the two
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, S)
            if mask is None:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
            att = self.attn_dropout(F.softmax(att, dim=-1))
            y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)
        self.approximate = {"exact": "none", "tanh": "tanh"}[cfg.gelu]

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, mask=None, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), mask, cache, layer)  # pre-LN residual
        return x + self.mlp(self.ln_2(x))


class KVCache:
    """Keys and values of every layer, preallocated for the whole generation (no re-allocation
    per step). Slot t holds the token at column t of the left-padded batch."""

    def __init__(self, cfg: GPTConfig, batch: int, length: int, device, dtype):
        hs = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, batch, cfg.n_head, length, hs)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.pos = 0  # columns filled so far

    def update(self, layer, k, v):
        t0, t1 = self.pos, self.pos + k.shape[2]
        self.k[layer, :, :, t0:t1] = k
        self.v[layer, :, :, t0:t1] = v
        return self.k[layer, :, :, :t1], self.v[layer, :, :, :t1]


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),  # token embeddings
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),  # learned position embeddings
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied unembedding, as GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def _init_weights(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self, non_embedding=True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def body(self, idx, attention_mask=None, cache=None):
        """Final hidden states (B, T, C) after ln_f. idx (B, T) token ids; attention_mask
        (B, T) 1 = real token, 0 = left padding; with a cache, its columns come first."""
        B, T = idx.shape
        S = T if cache is None else cache.pos + T
        if S > self.config.block_size:
            raise ValueError(f"sequence of {S} tokens is longer than the context "
                             f"(block_size={self.config.block_size}); shorten it")
        if attention_mask is None:
            pos = torch.arange(S - T, S, device=idx.device).expand(B, T)
            # None lets the fused kernel use its causal fast path (no cache: square T x T)
            mask = None if cache is None else _causal_mask(None, T, S, idx.device)
        else:  # left padding: positions count real tokens only; padding is never a key
            am = attention_mask.bool()
            pos = (am.long().cumsum(-1) - 1).clamp(min=0)[:, S - T:]
            mask = _causal_mask(am, T, S, idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for i, block in enumerate(self.transformer.h):
            x = block(x, mask, cache, i)
        if cache is not None:
            cache.pos = S
        return self.transformer.ln_f(x)

    def forward(self, idx, attention_mask=None, targets=None, cache=None):
        """(logits (B, T, V), None); with targets (B, T) (-100 = ignore): (None, the mean
        cross-entropy of the targets), computed without the logits (cross_entropy)."""
        h = self.body(idx, attention_mask, cache)
        if targets is None:
            return self.lm_head(h), None
        return None, cross_entropy(h, self.lm_head.weight, targets)

    # ------------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                 eot_id=None, pad_id=0, generator=None, use_cache=True):
        """Sample continuations of a batch of prompts of different lengths.

        prompts: list of token-id lists (left-padded here) or a (B, P) tensor. Each row stops
        after it samples eot_id (None = never stop). temperature 0 means greedy.
        Returns tokens (B, P + N), attention_mask (B, P + N) and response_mask (B, P + N):
        1 on generated tokens up to and including the end-of-text; rows that ended early are
        padded with pad_id after it. N <= max_new_tokens (the loop ends when all rows ended).
        """
        dev = self.transformer.wte.weight.device
        if isinstance(prompts, torch.Tensor):
            idx, am = prompts.to(dev), torch.ones_like(prompts, device=dev)
        else:
            idx, am = pad_left(prompts, pad_id, dev)
        B, P = idx.shape
        out = torch.full((B, P + max_new_tokens), pad_id, dtype=torch.long, device=dev)
        out[:, :P] = idx
        amask = torch.ones(B, P + max_new_tokens, dtype=torch.long, device=dev)
        amask[:, :P] = am
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        cache = KVCache(self.config, B, P + max_new_tokens, dev,
                        self.transformer.wte.weight.dtype) if use_cache else None
        n = 0
        for n in range(1, max_new_tokens + 1):
            t = P + n - 1  # column the new token goes to
            if cache is None:  # recompute everything: the slow path the cache avoids
                h = self.body(out[:, :t], amask[:, :t])
            else:  # prefill once, then one token per step against cached keys/values
                step_in = out[:, :t] if n == 1 else out[:, t - 1:t]
                h = self.body(step_in, amask[:, :t], cache=cache)
            logits = self.lm_head(h[:, -1])  # (B, V): only the last position is sampled
            nxt = sample(logits, temperature, top_k, top_p, generator)
            out[:, t] = torch.where(done, pad_id, nxt)
            amask[:, t] = (~done).long()  # tokens after the end are padding, never keys
            if eot_id is not None:
                done |= nxt == eot_id
                if bool(done.all()):
                    break
        out, amask = out[:, :P + n], amask[:, :P + n]
        resp = amask.clone()
        resp[:, :P] = 0
        return out, amask, resp


class _LinearCrossEntropy(torch.autograd.Function):
    """mean_i -log softmax(h_i W^T)[y_i] over rows h (N, C), W (V, C), targets y (N,), a chunk
    of rows at a time. The gradient of the loss in the logits z is softmax(z) - onehot(y), so
    each chunk's gradients are made in the forward pass while its logits are at hand (Liger
    Kernel's fused linear cross-entropy, in plain PyTorch); backward only scales them."""

    @staticmethod
    def forward(ctx, h, w, y, chunk, grads):
        n = max(len(y), 1)
        f32 = torch.promote_types(w.dtype, torch.float32)  # bf16 autocast: sums in fp32
        loss = torch.zeros((), dtype=f32, device=h.device)
        gh = torch.empty_like(h) if grads else None
        gw = torch.zeros_like(w, dtype=f32) if grads else None
        ctx.w_dtype = w.dtype
        kind = h.device.type  # under autocast the matmuls below read z in its dtype: cast once
        low = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else f32
        for s in range(0, len(y), chunk):
            hc, yc = h[s:s + chunk], y[s:s + chunk]
            z = (hc @ w.t()).to(f32)  # (chunk, V) logits
            z_y = z.gather(1, yc[:, None]).squeeze(1)
            top = z.amax(-1, keepdim=True)
            z.sub_(top).exp_()  # one exp serves the loss and the gradient
            total = z.sum(-1, keepdim=True)
            loss += (top + total.log()).sum() - z_y.sum()  # logsumexp(z) - z_y
            if grads:
                z.div_(total)  # softmax(z)
                z[torch.arange(len(yc), device=z.device), yc] -= 1
                z = z.div_(n).to(low)  # d mean / d z
                gh[s:s + chunk] = z @ w
                gw += z.t() @ hc
        ctx.save_for_backward(gh, gw)
        return loss / n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        gh, gw = ctx.saved_tensors
        return gh * grad, (gw * grad).to(ctx.w_dtype), None, None, None


def cross_entropy(h, weight, targets, chunk=512):
    """F.cross_entropy(h @ weight^T, targets, ignore_index=-100) for hidden states h (..., C)
    and targets (...): the rows whose target is -100 are dropped before the unembedding.
    chunk: rows a pass; at 512 a chunk's fp32 logits (4 MB at V = 2048) stay near the cache,
    the fastest size measured on a CPU (docs/EXPERIMENTS.md, speed)."""
    h, y = h.reshape(-1, h.size(-1)), targets.reshape(-1)
    keep = y != -100
    if not bool(keep.all()):
        h, y = h[keep], y[keep]
    grads = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(h, weight, y, chunk, grads)  # no gradients in evaluation


def _causal_mask(am, T, S, device):
    """(B or 1, 1, T, S) bool: query i (column S-T+i) sees key j if j <= its column and j is a
    real token. The diagonal is always allowed so padding rows stay finite (never used)."""
    q = torch.arange(S - T, S, device=device)[:, None]
    kk = torch.arange(S, device=device)[None, :]
    causal = kk <= q  # (T, S)
    if am is None:
        return causal[None, None]
    return ((causal[None] & am[:, None, :]) | (kk == q)[None])[:, None]  # (B, 1, T, S)


def sample(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Next token ids (B,) from last-position logits (B, V)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:  # nucleus: smallest set with mass >= top_p
        srt, order = logits.sort(-1, descending=True)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum - srt.softmax(-1) > top_p  # keep the token that crosses top_p
        logits = logits.scatter(-1, order, srt.masked_fill(drop, float("-inf")))
    # inverse-CDF sampling: one uniform per row (torch.multinomial draws one exponential per
    # vocabulary entry, a large share of a roll-out on CPU): speed only, same distribution
    cdf = logits.softmax(-1).cumsum(-1)  # (B, V)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    # side="right": u = 0 must not pick a leading token of probability 0 (top-k / top-p)
    return torch.searchsorted(cdf, u, side="right").clamp_max(cdf.shape[1] - 1).squeeze(-1)


def pad_left(seqs, pad_id, device="cpu"):
    """List of token lists -> (ids (B, P), attention_mask (B, P)), padded on the left."""
    P = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), P), pad_id, dtype=torch.long)
    am = torch.zeros(len(seqs), P, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, P - len(s):] = torch.tensor(s)
            am[i, P - len(s):] = 1
    return ids.to(device), am.to(device)


def encode_pair(enc, prompt: str, response: str, block_size: int, cut_response=False):
    """Token ids of an (already templated) prompt + response + end-of-text, and how many of
    them are prompt. A pair longer than the context loses prompt tokens from the left (the
    caller counts the truncations). A response that alone does not fit is an error, or with
    cut_response keeps its start after a quarter context of prompt (a reward model then
    reads a cut response). Returns (ids, n_prompt, cut)."""
    p, r = tok.encode(enc, prompt), tok.encode(enc, response) + [enc.eot_token]
    long_response = len(r) >= block_size
    if long_response:
        if not cut_response:
            raise ValueError(f"response of {len(r)} tokens does not fit the context "
                             f"(block_size={block_size}): {response[:60]!r}...")
        p = p[-(block_size // 4):]
        r = r[:block_size - len(p) - 1] + [enc.eot_token]
    cut = max(0, len(p) + len(r) - block_size)
    return p[cut:] + r, len(p) - cut, cut > 0 or long_response


def batch_pairs(pairs, pad_id, device="cpu"):
    """[(ids, n_prompt), ...] -> tokens, attention_mask, response_mask, each (B, T), left-padded
    like generate()'s output, so every sequence ends at column T-1 (where the RM reads)."""
    tokens, am = pad_left([ids for ids, _ in pairs], pad_id, device)
    T = tokens.shape[1]
    n_resp = torch.tensor([len(ids) - n for ids, n in pairs], device=device)
    resp = (torch.arange(T, device=device)[None] >= T - n_resp[:, None]).long()
    return tokens, am, resp


def encode_prompts(enc, prompts: list[str], block_size: int, max_new_tokens: int):
    """Token ids of (already templated) prompts to generate from, each cut from the left to
    leave room for max_new_tokens. Returns (ids, number of prompts cut)."""
    room = block_size - max_new_tokens
    if room < 8:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in "
                         f"block_size={block_size}")
    ids = [tok.encode(enc, p) for p in prompts]
    return [x[-room:] for x in ids], sum(len(x) > room for x in ids)


def decode_responses(enc, tokens, response_mask) -> list[tuple[str, bool]]:
    """generate()'s output -> [(response text without its end-of-text, ended), ...]; a row that
    did not end was cut off at max_new_tokens."""
    out = []
    for t, m in zip(tokens.tolist(), response_mask.tolist(), strict=True):
        r = [x for x, keep in zip(t, m, strict=True) if keep]
        ended = bool(r) and r[-1] == enc.eot_token
        out.append((tok.decode(enc, r[:-1] if ended else r), ended))
    return out


def token_logprobs(logits, targets, temperature=1.0):
    """log softmax(logits / temperature)[target]: logits (..., V), targets (...) -> (...).
    Temperature divides the logits exactly as sampling did, so PPO's ratio starts at 1."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def response_logprobs(model, tokens, attention_mask, mask, temperature=1.0, h=None):
    """Log-probs (B, T-1), entry t scoring token t+1, computed only where mask (B, T-1) is 1
    (0 elsewhere), and the logits (n, V) of those n positions (PPO's entropy). The unembedding
    runs there alone: PPO needs the response's tokens, a sixth of a padded roll-out batch.
    h: the body's output for these tokens, when the caller has it already (the reward model)."""
    keep = mask.bool()
    h = model.body(tokens, attention_mask) if h is None else h
    logits = model.lm_head(h[:, :-1][keep])
    lp = token_logprobs(logits, tokens[:, 1:][keep], temperature)
    full = torch.zeros(mask.shape, dtype=lp.dtype, device=lp.device).masked_scatter(keep, lp)
    return full, logits


def sequence_logprobs(model, tokens, attention_mask, temperature=1.0, mask=None):
    """Per-token log-probs (B, T-1) of a left-padded batch; entry t scores token t+1. With
    mask (B, T-1), e.g. response_mask[:, 1:], only its entries are computed; the rest are 0."""
    if mask is not None:
        return response_logprobs(model, tokens, attention_mask, mask, temperature)[0]
    logits, _ = model(tokens, attention_mask)
    return token_logprobs(logits[:, :-1], tokens[:, 1:], temperature)
