"""reward.py: Eq. 1 against a plain loop, where the reward is read, one forward per response,
normalisation, exact resume, errors, and a reward model that learns the tiny world's labelers."""

import json
import math
import random
import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import copy_of

import collect
import data
import gpt
import reward
import stage
import world
from reward import RewardModel, ranking_loss


def small_rm(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = gpt.GPTConfig(**{**dict(vocab_size=97, block_size=64, n_layer=2, n_head=4,
                                  n_embd=32), **kw})
    return RewardModel(gpt.GPT(cfg)).eval()


# ----------------------------------------------------------------------------- Eq. 1


def brute_force(scores, ranking):
    """Eq. 1 written as the paper reads: every pair (w above l), one at a time."""
    K, total = len(ranking), 0.0
    for a in range(K):
        for b in range(a + 1, K):
            total = total - F.logsigmoid(scores[ranking[a]] - scores[ranking[b]])
    return total / math.comb(K, 2)


@pytest.mark.parametrize("K", range(2, 10))
def test_ranking_loss_equals_brute_force(K):
    g = torch.Generator().manual_seed(K)
    for _ in range(3):
        s1 = (torch.randn(K, generator=g) * 2).requires_grad_()
        s2 = s1.detach().clone().requires_grad_()
        ranking = torch.randperm(K, generator=g).tolist()
        loss, stats = ranking_loss(s1, ranking)
        want = brute_force(s2, ranking)
        torch.testing.assert_close(loss, want, rtol=1e-6, atol=1e-6)
        loss.backward()
        want.backward()
        torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-6, atol=1e-7)
        assert stats["pairs"] == math.comb(K, 2)


def test_ranking_loss_hand_values():
    r = torch.tensor([0.3, 1.7])
    loss, _ = ranking_loss(r, [1, 0])  # K = 2: y_w = response 1
    torch.testing.assert_close(loss, -F.logsigmoid(r[1] - r[0]))
    for K in (2, 5, 9):  # equal rewards: every pair is a coin flip
        loss, stats = ranking_loss(torch.full((K,), 0.7), list(range(K))[::-1])
        assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
        assert stats["acc"] == 0.5 and stats["margin"] == 0.0
    # pairs (0 > 2), (0 > 1), (2 > 1): margins 3, 2, -1
    _, stats = ranking_loss(torch.tensor([3.0, 1.0, 0.0]), [0, 2, 1])
    assert stats["acc"] == pytest.approx(2 / 3) and stats["margin"] == pytest.approx(4 / 3)


def test_batched_ranking_loss_with_different_k():
    g = torch.Generator().manual_seed(0)
    ks = [2, 4, 9, 6]
    scores = [torch.randn(k, generator=g) for k in ks]
    rankings = [torch.randperm(k, generator=g) for k in ks]
    padded = torch.full((4, 9), 1e4)  # garbage in the padding must not matter
    ranks = torch.full((4, 9), -1, dtype=torch.long)
    for b, (s, r) in enumerate(zip(scores, rankings, strict=True)):
        padded[b, :len(s)], ranks[b, :len(r)] = s, r
    padded.requires_grad_()
    loss, stats = ranking_loss(padded, ranks)
    want = sum(brute_force(s, r.tolist()) for s, r in zip(scores, rankings, strict=True)) / 4
    torch.testing.assert_close(loss, want)  # each prompt is one batch element, C(K,2) inside
    assert stats["pairs"] == sum(math.comb(k, 2) for k in ks)
    loss.backward()
    for b, k in enumerate(ks):
        assert torch.all(padded.grad[b, k:] == 0)


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("fused", [True, False])
def test_reward_read_at_last_real_token(fused):
    model = small_rm(fused_attn=fused)
    with torch.no_grad():
        model.head.bias.fill_(0.4)
        model.bias.fill_(0.1)
        seq = torch.randint(1, 97, (13,))
        alone = model(seq[None])
        want = model.head(model.gpt.body(seq[None])[0, -1]) - model.bias  # the head at EOT
        torch.testing.assert_close(alone, want)
        longer = torch.randint(1, 97, (21,)).tolist()
        for pad in (0, 55):
            left, am = gpt.pad_left([seq.tolist(), longer], pad)
            r_left = model(left, am)
            right = torch.full((2, 21), pad)
            right[0, :13], right[1] = seq, torch.tensor(longer)
            am_right = (torch.arange(21) < torch.tensor([[13], [21]])).long()
            r_right = model(right, am_right)
            torch.testing.assert_close(r_left[0], alone[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(r_right[0], alone[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(r_left[1], r_right[1], atol=1e-5, rtol=1e-5)


def test_lm_coef_adds_the_mean_log_likelihood_of_the_response():
    """Extension 8 against a plain loop: head at EOT + c * mean over response tokens of
    log softmax(logits)[next token], the same left-padded or alone, and saved with the model."""
    model = small_rm(seed=3)
    model.lm_coef = 0.7
    g = torch.Generator().manual_seed(1)
    pairs = [(torch.randint(1, 97, (n_p + n_r,), generator=g).tolist(), n_p)
             for n_p, n_r in ((5, 4), (9, 1), (3, 12))]
    with torch.no_grad():
        tokens, am, resp = gpt.batch_pairs(pairs, 0)
        got = model(tokens, am, resp)
        for b, (ids, n_p) in enumerate(pairs):
            x = torch.tensor([ids])
            logits, _ = model.gpt(x)
            logp = torch.log_softmax(logits[0].double(), -1)
            ll = [logp[t - 1, ids[t]].item() for t in range(n_p, len(ids))]  # response tokens
            head = (model.head(model.gpt.body(x)[0, -1]) - model.bias).item()
            want = head + 0.7 * sum(ll) / len(ll)
            assert got[b].item() == pytest.approx(want, abs=1e-4)
        with pytest.raises(ValueError, match="response_mask"):
            model(tokens, am)


def test_lm_coef_survives_a_checkpoint(tmp_path):
    """The coefficient is the model's (not a weight): rm.pt keeps it, so PPO's reward and the
    evaluation read the same r_theta that Eq. 1 trained."""
    model = small_rm(seed=4)
    model.lm_coef = 0.5
    enc = type("Enc", (), {"name": "gpt2"})()  # tokenizer_id's short path: no ranks needed
    opt = torch.optim.AdamW(model.parameters())
    reward.save_reward_model(model, tmp_path / "rm.pt", enc, reward.Config(lm_coef=0.5), 1, {},
                             opt, {"normalized": True})
    loaded, _ = reward.load_reward_model(tmp_path / "rm.pt", enc)
    assert loaded.lm_coef == 0.5
    seq = torch.randint(1, 97, (2, 9))
    resp = (torch.arange(9) >= 5).long().expand(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(seq, None, resp), model(seq, None, resp))


def test_each_response_forwarded_once():
    model = small_rm()
    rows = []
    model.gpt.transformer.wte.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    g = torch.Generator().manual_seed(0)
    examples = []
    for k in (2, 5, 9):
        prompt = torch.randint(1, 97, (6,), generator=g).tolist()
        pairs = [(prompt + torch.randint(1, 97, (int(n),), generator=g).tolist() + [0], 6)
                 for n in torch.randint(1, 12, (k,), generator=g)]
        examples.append({"pairs": pairs, "ranking": torch.randperm(k, generator=g).tolist()})
    with torch.no_grad():
        scores, ranking = reward.forward_batch(model, examples, 96, "cpu")
    assert rows == [2 + 5 + 9]  # one forward, each response once (not 2 per pair)
    assert scores.shape == ranking.shape == (3, 9)
    for b, ex in enumerate(examples):
        k = len(ex["pairs"])
        assert ranking[b, :k].tolist() == ex["ranking"] and torch.all(ranking[b, k:] == -1)
        for i, (ids, _) in enumerate(ex["pairs"]):  # the split gives each prompt its own rows
            with torch.no_grad():
                alone = model(torch.tensor([ids]))[0]
            torch.testing.assert_close(scores[b, i], alone, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- a tiny world


def write_comparisons(path, prompts, seed=0):
    """Rankings of world.sample_responses (varied quality) by the training labelers: stands in
    for rankings of SFT samples, to keep the test fast."""
    sim, rng = world.make_world(), random.Random(seed)
    labelers = world.make_labelers(world.PRESETS["tiny"])
    recs = []
    for i, p in enumerate(prompts):
        rs = world.sample_responses(sim, p, rng.randint(4, 9), rng)
        recs.append({"prompt": p["prompt"], "responses": rs, "category": p["category"],
                     "ranking": labelers[i % len(labelers)].rank(p["prompt"], rs, rng)})
    data.write_jsonl(path, recs)


@pytest.fixture(scope="module")
def run(tiny_base, tmp_path_factory):
    d = copy_of(tiny_base, tmp_path_factory.mktemp("rm") / "run")
    shutil.copy(d / "base.pt", d / "sft.pt")  # same format; sft.py's output in the pipeline
    write_comparisons(d / "comparisons.jsonl", data.read_prompts(d / "rm_prompts.jsonl"))
    return d


def clone(run, dst, n_comparisons=None, sft=True):
    dst.mkdir()
    for f in ("tokenizer.tiktoken", "sft.jsonl", "rm_prompts.jsonl") + ("sft.pt",) * sft:
        shutil.copy(run / f, dst / f)
    if n_comparisons:
        lines = (run / "comparisons.jsonl").read_text().splitlines(keepends=True)
        (dst / "comparisons.jsonl").write_text("".join(lines[:n_comparisons]))
    return dst


def cfg_for(d, **kw):
    base = dict(out=str(d), preset="tiny", batch_size=8, lr=1e-3, warmup_iters=5,
                val_fraction=0.2, eval_interval=1000, device="cpu")
    return reward.Config(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(run):
    return reward.train(cfg_for(run, epochs=3))


def test_rm_learns_the_labelers(run, trained):
    acc, agree = trained["rm/acc"][0], trained["rm/agreement"][0]
    assert trained["rm/val_pairs"][0] > 300
    assert acc > 0.6, (acc, agree)  # chance is 0.5; the labelers agree with each other ~0.73
    assert trained["rm/gold_corr"][-1] > 0.2
    assert trained["loss/val"][-1] < math.log(2)
    model, ck = reward.load_reward_model(run / "rm.pt")
    assert ck["kind"] == "reward" and ck["step"] == trained["step"][-1]
    enc = stage.load_encoding(run, ck["tokenizer"])
    _, val = reward.split_comparisons(data.read_comparisons(run / "comparisons.jsonl"), 0.2,
                                      reward.Config.seed)
    again = reward.evaluate_rm(model, enc, val)
    assert again["acc"] == pytest.approx(acc, abs=1e-6)  # the checkpoint is the trained RM
    log = [json.loads(x) for x in (run / "reward.jsonl").read_text().splitlines()]
    assert log[-1]["rm/acc"] == acc


def test_normalisation_centres_the_demonstrations(run, trained):
    model, ck = reward.load_reward_model(run / "rm.pt")
    enc = stage.load_encoding(run, ck["tokenizer"])
    demos = data.read_sft(run / "sft.jsonl")
    r = reward.score_batch(model, enc, [d["prompt"] for d in demos],
                           [d["response"] for d in demos], batch_size=37)
    assert len(r) == len(demos) and r.std() > 0.1
    assert abs(r.double().mean().item()) < 1e-5
    assert ck["bias"] == pytest.approx(model.bias.item()) and abs(ck["bias"]) > 1e-3


def test_training_forwards_each_response_once(run, tmp_path, monkeypatch):
    d = clone(run, tmp_path / "c", 12)
    rows, real = [], RewardModel.forward

    def counting(self, tokens, attention_mask=None, response_mask=None):
        if self.training:  # the optimisation steps; evaluation runs in eval mode
            rows.append(len(tokens))
        return real(self, tokens, attention_mask, response_mask)

    monkeypatch.setattr(RewardModel, "forward", counting)
    cfg = cfg_for(d, epochs=2, batch_size=4, val_fraction=0.25)
    reward.train(cfg)
    train_c, _ = reward.split_comparisons(data.read_comparisons(d / "comparisons.jsonl"),
                                          cfg.val_fraction, cfg.seed)
    assert len(rows) == 2 * 3  # 9 training prompts in batches of 4: 3 steps per epoch
    assert sum(rows) == 2 * sum(len(c["responses"]) for c in train_c)


def test_resume_equals_uninterrupted(run, tmp_path, monkeypatch):
    kw = dict(epochs=2, batch_size=4, val_fraction=0.25, eval_interval=3, dropout=0.1)
    a = clone(run, tmp_path / "a", 24)
    hist = reward.train(cfg_for(a, **kw))
    straight = stage.load_checkpoint(a / "rm.pt")

    b = clone(run, tmp_path / "b", 24)
    real = stage.lr_at

    def crash(step, *args):
        if step == 7:  # after the checkpoint at step 6
            raise KeyboardInterrupt
        return real(step, *args)

    monkeypatch.setattr(stage, "lr_at", crash)
    with pytest.raises(KeyboardInterrupt):
        reward.train(cfg_for(b, **kw))
    assert stage.load_checkpoint(b / "rm.pt")["step"] == 6
    monkeypatch.setattr(stage, "lr_at", real)
    hist2 = reward.train(cfg_for(b, resume=True, **kw))
    resumed = stage.load_checkpoint(b / "rm.pt")
    assert straight["step"] == resumed["step"] == 10
    for k in straight["model"]:
        assert torch.equal(straight["model"][k], resumed["model"][k]), k
    assert hist == hist2


def test_nan_loss_keeps_last_good_checkpoint(run, tmp_path, monkeypatch):
    d = clone(run, tmp_path / "n", 12)
    reward.train(cfg_for(d, batch_size=4, eval_interval=1))
    before = (d / "rm.pt").read_bytes()
    monkeypatch.setattr(reward.F, "logsigmoid", lambda x: x * float("nan"))
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        reward.train(cfg_for(d, batch_size=4, eval_interval=1, epochs=2, resume=True))
    assert (d / "rm.pt").read_bytes() == before


def test_collect_end_to_end(run, tmp_path):
    d = clone(run, tmp_path / "col")
    cfg = cfg_for(d, n_prompts=4, max_new_tokens=16, gen_batch=7, seed=5)
    summary = collect.collect(cfg)
    comps = data.read_comparisons(d / "comparisons.jsonl")  # K in 2..9, rankings permutations
    prompts = data.read_prompts(d / "rm_prompts.jsonl")[:4]
    assert [c["prompt"] for c in comps] == [p["prompt"] for p in prompts]
    assert all(4 <= len(c["responses"]) <= 9 for c in comps)
    assert summary["samples"] == sum(len(c["responses"]) for c in comps)
    assert 0 <= summary["agreement"] <= 1 and summary["pairs"] == sum(
        math.comb(len(c["responses"]), 2) for c in comps)
    assert all("<|endoftext|>" not in r for c in comps for r in c["responses"])
    labelers, rng = world.make_labelers(world.PRESETS["tiny"]), random.Random("5-rank")
    for i, c in enumerate(comps):  # round-robin training labelers ranked exactly these samples
        assert c["ranking"] == labelers[i % len(labelers)].rank(c["prompt"], c["responses"], rng)
    first = (d / "comparisons.jsonl").read_bytes()
    data.write_jsonl(d / "comparisons.jsonl", comps[:1])
    argv = ["--out", str(d), "--preset", "tiny", "--n_prompts", "4", "--max_new_tokens", "16",
            "--gen_batch", "7", "--seed", "5", "--collect_only"]
    assert reward.main(argv) is None  # exists: not collected again
    assert len(data.read_comparisons(d / "comparisons.jsonl")) == 1
    reward.main(argv + ["--recollect"])
    assert (d / "comparisons.jsonl").read_bytes() == first  # seeded: the same samples


def test_off_prompt_samples_answer_another_prompt(run, tmp_path):
    d = clone(run, tmp_path / "off")
    kw = dict(n_prompts=5, max_new_tokens=12, gen_batch=64, seed=3, k_min=4, k_max=6)
    collect.collect(cfg_for(d, off_prompt=0, **kw))
    own = data.read_comparisons(d / "comparisons.jsonl")
    collect.collect(cfg_for(d, off_prompt=2, **kw))
    mixed = data.read_comparisons(d / "comparisons.jsonl")
    firsts = [c["responses"][0] for c in own]
    for i, (a, b) in enumerate(zip(own, mixed, strict=True)):
        k = len(a["responses"])
        assert b["responses"][:k - 2] == a["responses"][:k - 2]  # the same SFT samples...
        for r in b["responses"][k - 2:]:  # ...but the last two answer other prompts
            assert r in firsts[:i] + firsts[i + 1:]


def test_errors(run, tmp_path):
    d = clone(run, tmp_path / "e", 12, sft=False)
    with pytest.raises(FileNotFoundError, match="python sft.py --out"):
        reward.train(cfg_for(d))
    with pytest.raises(ValueError, match="2..9"):
        collect.collect(cfg_for(d, k_max=10))
    with pytest.raises(FileNotFoundError, match="python -m world --out"):
        collect.collect(cfg_for(tmp_path / "empty"))
    good = data.read_comparisons(d / "comparisons.jsonl")[0]
    for bad in ({**good, "responses": good["responses"][:1], "ranking": [0]},
                {**good, "ranking": [0] * len(good["responses"])}):
        data.write_jsonl(d / "comparisons.jsonl", [good, bad])
        with pytest.raises(data.DataError, match="comparisons.jsonl:2"):
            reward.train(cfg_for(d))
    with pytest.raises(FileNotFoundError, match="python reward.py --out"):
        reward.load_reward_model(d / "rm.pt")
    with pytest.raises(ValueError, match="not a reward model"):
        reward.load_reward_model(run / "sft.pt")


def test_lm_coef_trains_normalises_and_reaches_ppo(run, tmp_path):
    """Extension 8 through the stage: Eq. 1 trains the likelihood term with the head, the bias
    makes the demonstrations score 0 with it, and PPO's reward_fn reads the same r_theta."""
    import environment as env

    d = clone(run, tmp_path / "lm", 40)
    reward.train(cfg_for(d, lm_coef=1.0))
    rm, ck = reward.load_reward_model(d / "rm.pt")
    assert rm.lm_coef == ck["lm_coef"] == 1.0 and ck["train_config"]["lm_coef"] == 1.0
    enc = stage.load_encoding(d, ck["tokenizer"])
    demos = data.read_sft(d / "sft.jsonl")
    r = reward.score_batch(rm, enc, [x["prompt"] for x in demos], [x["response"] for x in demos])
    assert abs(r.double().mean().item()) < 1e-4  # the bias saw the likelihood term too
    pairs = [reward.encode(enc, x["prompt"], x["response"], rm.gpt.config.block_size)[:2]
             for x in demos[:6]]
    tokens, am, resp = gpt.batch_pairs(pairs, enc.eot_token)
    with torch.no_grad():
        got = env.rm_reward(rm, enc.eot_token, -1.0)(tokens, am, resp)
        rm.lm_coef = 0.0
        head_only = rm(tokens, am)
    torch.testing.assert_close(got, r[:6], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, head_only)  # the likelihood term is in PPO's reward
