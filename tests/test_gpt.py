"""gpt.py: attention, KV cache, padding, the losses and log-probs against their plain forms,
the encoding of prompt and response pairs, and a model that can learn (one batch overfit)."""


import pytest
import torch

import gpt
import stage
from gpt import GPT, GPTConfig

SMALL = GPTConfig(vocab_size=97, block_size=64, n_layer=2, n_head=4, n_embd=32)


def small_model(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL.__dict__, **kw})).eval()


# ----------------------------------------------------------------------------- attention


def test_causal():
    model = small_model()
    idx = torch.randint(0, 97, (2, 20))
    changed = idx.clone()
    changed[:, 12] = (idx[:, 12] + 1) % 97
    a, _ = model(idx)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12], atol=0, rtol=0)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_gelu_exact_and_tanh_against_their_formulas():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)[:, None]
    exact = x * 0.5 * (1 + torch.erf(x / 2 ** 0.5))  # x Phi(x)
    tanh = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3)))
    for kind, want in (("exact", exact), ("tanh", tanh)):
        mlp = gpt.MLP(GPTConfig(n_embd=1, gelu=kind)).double()
        with torch.no_grad():  # c_fc passes x through to the GELU, c_proj reads one unit
            mlp.c_fc.weight.zero_()
            mlp.c_fc.weight[0, 0] = 1.0
            mlp.c_fc.bias.zero_()
            mlp.c_proj.weight.zero_()
            mlp.c_proj.weight[0, 0] = 1.0
            mlp.c_proj.bias.zero_()
        torch.testing.assert_close(mlp(x), want, atol=1e-12, rtol=0)
    assert (exact - tanh).abs().max() < 5e-4  # what the docstring states
    assert GPTConfig().gelu == "tanh"  # GPT-2's, and that of checkpoints from before the field
    assert GPTConfig.from_dict({**GPTConfig().__dict__, "gelu": "exact"}).gelu == "exact"
    with pytest.raises(ValueError, match="gelu"):
        GPTConfig(gelu="relu")


def test_fused_equals_explicit():
    fused = small_model(fused_attn=True)
    explicit = small_model(fused_attn=False)
    explicit.load_state_dict(fused.state_dict())
    idx, am = gpt.pad_left([[5, 6, 7, 8, 9, 10], [1, 2, 3]], 0)
    for kw in ({}, {"attention_mask": am}):
        x = idx if kw else torch.randint(0, 97, (2, 30))
        torch.testing.assert_close(fused(x, **kw)[0], explicit(x, **kw)[0], atol=1e-5, rtol=1e-5)


def test_left_padding_changes_no_logprob():
    model = small_model()
    seqs = [[3, 4, 5, 6, 7, 8, 9, 10, 11], [20, 21, 22], [30, 31, 32, 33, 34]]
    idx, am = gpt.pad_left(seqs, pad_id=0)
    with torch.no_grad():
        batched = gpt.sequence_logprobs(model, idx, am)
        for i, s in enumerate(seqs):
            alone = gpt.sequence_logprobs(model, torch.tensor([s]), torch.ones(1, len(s)))
            torch.testing.assert_close(batched[i, -(len(s) - 1):], alone[0], atol=1e-5, rtol=0)


def test_logprobs_match_log_softmax():
    model = small_model()
    idx = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        lp = gpt.sequence_logprobs(model, idx, torch.ones_like(idx), temperature=0.7)
        logits, _ = model(idx)
    ref = torch.log_softmax(logits[:, :-1] / 0.7, -1).gather(-1, idx[:, 1:, None]).squeeze(-1)
    torch.testing.assert_close(lp, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_chunked_cross_entropy_equals_plain(chunk):
    """gpt.cross_entropy (chunks, gradients made in the forward pass) against
    F.cross_entropy on the full logits: loss and both gradients, with ignored targets."""
    torch.manual_seed(0)
    h = torch.randn(3, 11, 32, dtype=torch.float64, requires_grad=True)
    w = torch.randn(97, 32, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 97, (3, 11))
    y[0, :4] = y[2, -1] = -100
    want = torch.nn.functional.cross_entropy((h @ w.t()).view(-1, 97), y.view(-1),
                                             ignore_index=-100)
    want_h, want_w = torch.autograd.grad(2 * want, (h, w))
    got = gpt.cross_entropy(h, w, y, chunk=chunk)
    got_h, got_w = torch.autograd.grad(2 * got, (h, w))  # the outer gradient scales them
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(got_h, want_h, atol=1e-12, rtol=0)
    torch.testing.assert_close(got_w, want_w, atol=1e-12, rtol=0)
    with torch.no_grad():  # evaluation: the same loss, no gradients made
        torch.testing.assert_close(gpt.cross_entropy(h, w, y, chunk=chunk), want, atol=1e-12,
                                   rtol=0)
    assert gpt.cross_entropy(h, w, torch.full_like(y, -100)).item() == 0.0  # nothing to score


def test_model_loss_is_the_cross_entropy_of_its_logits():
    model = small_model().train()  # tied weights: both the embedding and the unembedding
    idx, y = torch.randint(0, 97, (2, 10)), torch.randint(0, 97, (2, 10))
    logits, _ = model(idx)
    want = torch.nn.functional.cross_entropy(logits.view(-1, 97), y.view(-1))
    want_g = torch.autograd.grad(want, list(model.parameters()))
    _, loss = model(idx, targets=y)
    got_g = torch.autograd.grad(loss, list(model.parameters()))
    torch.testing.assert_close(loss, want, atol=1e-6, rtol=0)
    for a, b in zip(got_g, want_g, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_masked_logprobs_equal_full_ones():
    model = small_model()
    idx, am = gpt.pad_left([[3, 4, 5, 6, 7, 8, 9], [20, 21, 22, 23]], pad_id=0)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]], dtype=torch.float)
    with torch.no_grad():
        full = gpt.sequence_logprobs(model, idx, am, temperature=0.7)
        masked = gpt.sequence_logprobs(model, idx, am, temperature=0.7, mask=mask)
    torch.testing.assert_close(masked, full * mask, atol=1e-6, rtol=0)
    assert masked[mask == 0].abs().max() == 0


def test_bf16_autocast_agrees_with_fp32():
    """bf16 autocast (stage.autocast's choice on CPUs with native bf16) changes log-probs and
    losses by bf16's rounding only: within 0.05 nats of fp32's."""
    model = small_model()
    idx, y = torch.randint(0, 97, (4, 40)), torch.randint(0, 97, (4, 40))
    mask = torch.ones(4, 39)
    with torch.no_grad():
        lp32, loss32 = gpt.sequence_logprobs(model, idx, None, mask=mask), model(idx, targets=y)[1]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lp16 = gpt.sequence_logprobs(model, idx, None, mask=mask)
            loss16 = model(idx, targets=y)[1]
    assert lp16.dtype == loss16.dtype == torch.float32
    torch.testing.assert_close(lp16, lp32, atol=0.05, rtol=0)
    torch.testing.assert_close(loss16, loss32, atol=0.01, rtol=0)


def test_context_longer_than_block_size():
    with pytest.raises(ValueError, match="longer than the context"):
        small_model()(torch.zeros(1, 65, dtype=torch.long))


# ----------------------------------------------------------------------------- generation


def test_cached_generation_equals_uncached():
    model = small_model()
    prompts = [[1, 2, 3, 4, 5, 6], [7, 8], [9, 10, 11, 12]]
    a, am_a, r_a = model.generate(prompts, 25, temperature=0, use_cache=True)
    b, am_b, r_b = model.generate(prompts, 25, temperature=0, use_cache=False)
    assert a.tolist() == b.tolist() and am_a.tolist() == am_b.tolist()
    assert r_a.tolist() == r_b.tolist()
    # the logits themselves: prefill + one cached step equals a full forward
    idx, am = gpt.pad_left(prompts, 0)
    full, _ = model(a[:, :idx.shape[1] + 1], am_a[:, :idx.shape[1] + 1])
    cache = gpt.KVCache(model.config, 3, 40, "cpu", torch.float32)
    with torch.no_grad():
        model.body(idx, am, cache)
        step = model.lm_head(model.body(a[:, idx.shape[1]:idx.shape[1] + 1],
                                        am_a[:, :idx.shape[1] + 1], cache))
    torch.testing.assert_close(step[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)


def test_sampling_is_reproducible_and_cache_agnostic():
    model = small_model()
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8]]
    outs = [model.generate(prompts, 15, temperature=1.0, top_k=20, use_cache=c,
                           generator=torch.Generator().manual_seed(3))[0] for c in (True, False)]
    assert outs[0].tolist() == outs[1].tolist()


def test_eot_stopping_and_response_masks():
    model = small_model(vocab_size=8)
    eot = 7
    prompts = [[1, 2, 3]] * 6 + [[4, 5]] * 6
    toks, am, resp = model.generate(prompts, 30, eot_id=eot, pad_id=0,
                                    generator=torch.Generator().manual_seed(0))
    P = 3
    stops = []
    for i in range(len(prompts)):
        gen = toks[i, P:].tolist()
        n = gen.index(eot) + 1 if eot in gen else len(gen)
        stops.append(n)
        assert resp[i, :P].sum() == 0
        assert resp[i, P:P + n].tolist() == [1] * n  # the response, end-of-text included
        assert resp[i, P + n:].sum() == 0 and am[i, P + n:].sum() == 0
        assert set(gen[n:]) <= {0}  # padding after the end
    assert len(set(stops)) > 2, "rows should stop at different steps"
    assert toks.shape[1] - P == max(stops)  # the loop ends when every row has ended


def test_top_p_and_top_k_restrict_support():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0, -2.0]])
    g = torch.Generator().manual_seed(0)
    draws = {gpt.sample(logits, 1.0, top_k=2, generator=g).item() for _ in range(200)}
    assert draws == {0, 1}
    # probs ~ [.72, .26, .013, ...]: top_p = 0.9 keeps the first two tokens only
    draws = {gpt.sample(logits, 1.0, top_p=0.9, generator=g).item() for _ in range(200)}
    assert draws == {0, 1}
    assert gpt.sample(logits, 0).item() == 0


# ----------------------------------------------------------------------------- training


def test_overfit_one_batch():
    model = small_model().train()
    opt = stage.make_optimizer(model, 3e-3, 0.0)
    x = torch.randint(0, 97, (4, 32))
    for _ in range(200):
        _, loss = model(x[:, :-1], targets=x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_encode_pair_and_batch_pairs():
    import tokenizer as tok
    enc = tok.build_encoding(tok.train_bpe("the fox eats berries. " * 50, 270))
    ids, n_prompt, cut = gpt.encode_pair(enc, "the fox", " eats berries.", 64)
    assert not cut and ids[-1] == enc.eot_token
    assert tok.decode(enc, ids[:n_prompt]) == "the fox"
    assert tok.decode(enc, ids[n_prompt:-1]) == " eats berries."
    long_prompt = "the fox " * 40
    ids2, n2, cut2 = gpt.encode_pair(enc, long_prompt, " eats berries.", 16)
    assert cut2 and len(ids2) == 16 and tok.decode(enc, ids2[n2:-1]) == " eats berries."
    with pytest.raises(ValueError, match="does not fit"):
        gpt.encode_pair(enc, "x", " eats berries." * 10, 8)
    tokens, am, resp = gpt.batch_pairs([(ids, n_prompt), (ids2, n2)], pad_id=0)
    assert tokens.shape == (2, 16)
    for row, (s, n) in enumerate([(ids, n_prompt), (ids2, n2)]):
        assert tokens[row, -len(s):].tolist() == s and am[row].sum() == len(s)
        assert resp[row].sum() == len(s) - n and resp[row, -1] == 1
        assert tokens[row][resp[row].bool()].tolist() == s[n:]


def test_encode_pair_cuts_long_response_on_request():
    import tokenizer as tok
    enc = tok.build_encoding(tok.train_bpe("the fox eats berries. " * 50, 270))
    ids, n, cut = gpt.encode_pair(enc, "the fox " * 10, " eats berries." * 10, 16,
                                  cut_response=True)
    assert cut and len(ids) <= 16 and ids[-1] == enc.eot_token and n == 16 // 4
    assert tok.decode(enc, ids[n:-1]).startswith(" eats berries.")


def test_encode_prompts_and_decode_responses():
    import tokenizer as tok
    enc = tok.build_encoding(tok.train_bpe("the fox eats berries. " * 50, 270))
    ids, n_cut = gpt.encode_prompts(enc, ["the fox", "the fox eats berries. " * 20], 64, 32)
    assert n_cut == 1 and len(ids[1]) == 32 and tok.decode(enc, ids[0]) == "the fox"
    with pytest.raises(ValueError, match="no room"):
        gpt.encode_prompts(enc, ["x"], 64, 60)
    eot = enc.eot_token
    tokens = torch.tensor([[5, 6, 7, eot, 0], [5, 6, 7, 8, 9]])
    resp = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])
    out = gpt.decode_responses(enc, tokens, resp)
    assert out == [(tok.decode(enc, [6, 7]), True), (tok.decode(enc, [7, 8, 9]), False)]
