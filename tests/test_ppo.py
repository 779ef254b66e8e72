"""ppo.py: GAE against a plain loop, where Eq. 2's rewards land, the clipped losses by hand,
ratio 1 on the first minibatch, the ptx gradient, learning a toy reward, exact resume."""

import copy
import dataclasses
import json
import math

import pytest
import torch

import environment as env
import gpt
import objective
import ppo
import stage
import tokenizer as tok
import world
from reward import RewardModel

PROMPTS = ["What does a fox eat?", "Name three animals that live on a farm.",
           "Write a short story about Mia and a fox.", "Is this sentence happy or sad? Tom lost "
           "his red ball.", "Rewrite politely: give me the cup.", "What does a zorbel eat?"]
CORPUS = ("A fox eats berries. The red fox ran home. Mia saw a cow, a pig and a hen. "
          "Tom lost his red ball in the park. His dog found it under a tree. ") * 40


def tiny_gpt(vocab, eot, seed=0, dropout=0.0):
    """A 2-layer GPT whose final LayerNorm bias leans towards end-of-text, so that about half
    of its 8-token responses end (the rest exercise the no-eot rule)."""
    torch.manual_seed(seed)
    m = gpt.GPT(gpt.GPTConfig(vocab_size=vocab, block_size=48, n_layer=2, n_head=2, n_embd=32,
                              dropout=dropout))
    with torch.no_grad():
        e = m.transformer.wte.weight[eot]
        m.transformer.ln_f.bias += 4.0 * e / e.norm() ** 2  # logit of eot ~ +4
    return m


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """sft.pt, rm.pt, tokenizer, prompts.jsonl and corpus.txt of a tiny run: no pipeline."""
    out = tmp_path_factory.mktemp("ppo_run")
    text = (tok.EOT_TEXT + " ").join([CORPUS] * 3)
    (out / "corpus.txt").write_text(text)
    tok.save_tokenizer(tok.train_bpe(text, 300), out / "tokenizer.tiktoken")
    enc = tok.load_tokenizer(out / "tokenizer.tiktoken")
    (out / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p, "category": "x"}) + "\n"
                                               for p in PROMPTS))
    sft = tiny_gpt(enc.n_vocab, enc.eot_token)
    ident = tok.tokenizer_id(enc)
    stage.save_checkpoint({"config": dataclasses.asdict(sft.config), "model": sft.state_dict(),
                           "step": 0, "tokenizer": ident}, out / "sft.pt")
    torch.manual_seed(1)
    rm = RewardModel(tiny_gpt(enc.n_vocab, enc.eot_token, seed=2))
    rm.bias.fill_(0.3)
    stage.save_checkpoint({"config": dataclasses.asdict(rm.gpt.config), "kind": "reward",
                           "model": rm.state_dict(), "step": 0, "tokenizer": ident,
                           "normalized": True}, out / "rm.pt")
    return out, enc


def small_cfg(out, **kw):
    return ppo.Config(**{**dict(out=str(out), device="cpu", iterations=4, batch_size=16,
                                minibatch_size=8, max_new_tokens=8, lr=1e-3, warmup=0,
                                log_every=1000), **kw})


def one_batch(enc, cfg, seed=0, dropout=0.0, reward_fn=None):
    """A scored batch from a tiny policy: (policy, ref, value model, batch with advantages)."""
    policy = tiny_gpt(enc.n_vocab, enc.eot_token, seed, dropout)
    ref = copy.deepcopy(policy).eval()
    rm = RewardModel(tiny_gpt(enc.n_vocab, enc.eot_token, seed + 1))
    value_model = env.make_value_model("rm", rm, policy)
    ids = [tok.encode(enc, p)[-40:] for p in PROMPTS] * 3
    batch = ppo.rollout(policy, ids, cfg, enc.eot_token, torch.Generator().manual_seed(seed))
    reward_fn = reward_fn or env.rm_reward(rm, enc.eot_token, cfg.no_eot_penalty)
    ppo.score(batch, policy, ref, value_model, reward_fn, cfg)
    ppo.advantages(batch, cfg.kl_coef, cfg)
    return policy, ref, value_model, batch


# ----------------------------------------------------------------------------- GAE


def random_episodes(seed, B=6, T=12):
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, 4, (B,), generator=g)
    end = start + torch.randint(1, T - 4, (B,), generator=g)  # inclusive; padding after
    t = torch.arange(T)
    mask = ((t >= start[:, None]) & (t <= end[:, None])).float()
    return torch.randn(B, T, generator=g), torch.randn(B, T, generator=g), mask


@pytest.mark.parametrize("discount,lam", [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0), (0.99, 0.0)])
def test_gae_equals_a_plain_reversed_loop(discount, lam):
    rewards, values, mask = random_episodes(0)
    adv, ret = objective.gae(rewards, values, mask, discount, lam)
    for b in range(len(rewards)):
        idx = mask[b].nonzero().squeeze(1).tolist()  # this episode's steps
        r, v = rewards[b, idx].tolist(), values[b, idx].tolist() + [0.0]  # V = 0 after the end
        a, want = 0.0, [0.0] * len(idx)
        for i in reversed(range(len(idx))):
            a = r[i] + discount * v[i + 1] - v[i] + discount * lam * a
            want[i] = a
        torch.testing.assert_close(adv[b, idx], torch.tensor(want))
        torch.testing.assert_close(ret[b, idx], torch.tensor(want) + values[b, idx])
        assert (adv[b][mask[b] == 0] == 0).all() and (ret[b][mask[b] == 0] == 0).all()


def test_gae_at_discount_lambda_one_with_zero_values_is_the_reward_to_go():
    rewards, _, mask = random_episodes(1)
    adv, ret = objective.gae(rewards, torch.zeros_like(rewards), mask, 1.0, 1.0)
    to_go = (rewards * mask).flip(1).cumsum(1).flip(1) * mask  # sum_{t' >= t} r_t'
    torch.testing.assert_close(adv, to_go)
    torch.testing.assert_close(ret, to_go)


# ----------------------------------------------------------------------------- Eq. 2's rewards


def test_kl_penalty_is_zero_when_policy_equals_reference(run_dir):
    _, enc = run_dir
    cfg = small_cfg(".")
    policy, ref, _, batch = one_batch(enc, cfg)
    assert torch.equal(batch["logprobs"], batch["ref_logprobs"])  # ref is a copy of the policy
    score = torch.randn(len(batch["tokens"]))
    rewards, kl = objective.kl_penalized_rewards(batch["logprobs"], batch["ref_logprobs"], score,
                                                 batch["mask"], 0.5)
    assert (kl == 0).all()
    torch.testing.assert_close(rewards.sum(1), score)  # only the RM's term is left
    # and by hand: log pi_RL - log pi_SFT = d on every response token, -beta d its reward
    d = torch.tensor([[0.0, 0.5, -0.5, 2.0]])
    mask, zero = torch.tensor([[1.0, 1.0, 1.0, 0.0]]), torch.zeros(1)
    r, k1 = objective.kl_penalized_rewards(d, torch.zeros(1, 4), zero, mask, 0.5)
    torch.testing.assert_close(k1, d * mask)
    torch.testing.assert_close(r, torch.tensor([[0.0, -0.25, 0.25, 0.0]]))


def test_k1_as_a_reward_has_the_gradient_of_kl_and_k3_does_not():
    """[D2] Why the KL reward is k1: over a small categorical, by exact expectation (every
    outcome weighted by its probability), the score-function gradient of the reward
    E_y[k(y) grad log pi(y)] equals grad KL(pi || ref) for k1 = log pi/ref, while for k3 =
    (rho - 1) - log rho, rho = ref/pi, it is a small fraction of it near the reference."""
    torch.manual_seed(0)
    ref_logits = torch.randn(6, dtype=torch.float64)
    for scale in (0.05, 0.2):
        logits = (ref_logits + scale * torch.randn(6, dtype=torch.float64)).requires_grad_()
        logp, ref_logp = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
        p = logp.exp()
        kl = (p * (logp - ref_logp)).sum()
        (grad_kl,) = torch.autograd.grad(kl, logits, retain_graph=True)
        ratio = (logp - ref_logp).detach()  # log pi/ref of each outcome, a constant reward
        k1, k3 = ratio, torch.expm1(-ratio) + ratio
        # E_y[k(y) grad log pi(y)] = grad of sum_y p(y).detach() * k(y) * log pi(y)
        g1, g3 = (torch.autograd.grad((p.detach() * k * logp).sum(), logits, retain_graph=True)[0]
                  for k in (k1, k3))
        torch.testing.assert_close(g1, grad_kl)  # exact: E[grad log pi] = 0
        assert (g3 @ grad_kl) / (grad_kl @ grad_kl) < 0.3  # k3's pull is far weaker


def test_rm_score_lands_on_the_final_real_token(run_dir):
    _, enc = run_dir
    cfg = small_cfg(".")
    policy, _, _, batch = one_batch(enc, cfg)
    tokens, am, mask = batch["tokens"], batch["attention_mask"], batch["mask"]
    ended = env.ended(tokens, batch["response_mask"], enc.eot_token)
    assert 0 < ended.float().mean() < 1  # both kinds of rows are in the batch
    score = torch.arange(1.0, len(tokens) + 1)
    rewards, _ = objective.kl_penalized_rewards(batch["logprobs"], batch["ref_logprobs"], score,
                                                mask, 0.0)
    for b in range(len(tokens)):
        last = am[b].nonzero().max().item()  # column of the final real token
        assert rewards[b].nonzero().squeeze(1).tolist() == [last - 1]  # entry t: token t+1
        assert rewards[b, last - 1] == score[b]
        assert (tokens[b, last] == enc.eot_token) == ended[b]
        assert last == tokens.shape[1] - 1 or am[b, last + 1] == 0  # padding after it
    # the RM reward reads that token: each row alone, unpadded, gives the same score
    rm = RewardModel(tiny_gpt(enc.n_vocab, enc.eot_token, 5)).eval()
    with torch.no_grad():
        got = env.rm_reward(rm, enc.eot_token, -7.0)(tokens, am, batch["response_mask"])
        for b in range(len(tokens)):
            alone = rm(tokens[b][am[b].bool()][None])[0]
            want = alone if ended[b] else torch.tensor(-7.0)  # [D10]
            torch.testing.assert_close(got[b], want, rtol=1e-5, atol=1e-5)


def test_masks_cover_exactly_the_response_tokens(run_dir):
    _, enc = run_dir
    cfg = small_cfg(".", max_new_tokens=6)
    ids = [tok.encode(enc, p) for p in PROMPTS]
    policy = tiny_gpt(enc.n_vocab, enc.eot_token)
    batch = ppo.rollout(policy, ids, cfg, enc.eot_token, torch.Generator().manual_seed(0))
    tokens, am, mask = batch["tokens"], batch["attention_mask"], batch["mask"]
    P = max(len(x) for x in ids)
    assert mask.shape == (len(ids), tokens.shape[1] - 1)
    for b, prompt in enumerate(ids):
        assert tokens[b, P - len(prompt):P].tolist() == prompt  # prompt untouched
        last = am[b].nonzero().max().item()
        want = [P <= t + 1 <= last for t in range(tokens.shape[1] - 1)]  # token t+1 generated
        assert mask[b].bool().tolist() == want
        resp = tokens[b, P:last + 1].tolist()
        assert 1 <= len(resp) <= 6 and enc.eot_token not in resp[:-1]  # stops at the first eot


# ----------------------------------------------------------------------------- the losses


def test_clipped_surrogate_by_hand_and_zero_gradient_where_clipped():
    ratio = torch.tensor([[0.5, 1.0, 1.5, 0.5, 1.0, 1.5]])
    adv = torch.tensor([[1.0, 1.0, 1.0, -1.0, -1.0, -1.0]])
    mask = torch.ones(1, 6)
    logprobs = ratio.log().requires_grad_()
    loss, st = objective.ppo_policy_loss(logprobs, torch.zeros(1, 6), adv, mask, clip_eps=0.2)
    # min(rho A, clip(rho) A): A > 0 -> 0.5, 1, 1.2 (capped); A < 0 -> -0.8 (capped), -1, -1.5
    torch.testing.assert_close(loss, -torch.tensor([0.5, 1.0, 1.2, -0.8, -1.0, -1.5]).mean())
    loss.backward()
    # d loss / d log pi = -rho A / 6, except where the clip holds the ratio back in the
    # direction the advantage pushes it: rho = 1.5 with A > 0, rho = 0.5 with A < 0
    want = torch.tensor([[-0.5, -1.0, 0.0, 0.0, 1.0, 1.5]]) / 6
    torch.testing.assert_close(logprobs.grad, want)
    assert st["ppo/clipfrac"] == pytest.approx(2 / 6)
    assert st["ppo/ratio_mean"] == pytest.approx(1.0)


def test_value_clipping_by_hand_and_zero_gradient_where_clipped():
    old = torch.zeros(1, 4)
    returns = torch.tensor([[1.0, 1.0, 1.0, -1.0]])
    values = torch.tensor([[0.5, -0.5, 0.1, -0.5]], requires_grad=True)
    loss, st = objective.value_loss(values, old, returns, torch.ones(1, 4), clip=0.2)
    # max((V - R)^2, (clip(V, -0.2, 0.2) - R)^2): 0.64 (clipped), 2.25, 0.81, 0.64 (clipped)
    torch.testing.assert_close(loss, 0.5 * torch.tensor([0.64, 2.25, 0.81, 0.64]).mean())
    assert st["loss/value"] == pytest.approx(loss.item())
    loss.backward()
    want = torch.tensor([[0.0, -1.5, -0.9, 0.0]]) / 4  # (V - R) / n where unclipped, else 0
    torch.testing.assert_close(values.grad, want)
    loss0, _ = objective.value_loss(values, old, returns, torch.ones(1, 4), clip=0.0)
    torch.testing.assert_close(loss0, 0.5 * torch.tensor([0.25, 2.25, 0.81, 0.25]).mean())


# ----------------------------------------------------------------------------- the update


def test_ratio_is_exactly_one_on_the_first_minibatch(run_dir):
    _, enc = run_dir
    cfg = small_cfg(".", temperature=0.7, minibatch_size=6)  # 18 episodes: 3 minibatches
    # a policy built with dropout: eval mode keeps it off in sampling and training alike [D8]
    policy, _, value_model, batch = one_batch(enc, cfg, dropout=0.2)
    opts = [stage.make_optimizer(m, cfg.lr, 0.0) for m in (policy, value_model)]
    stats = ppo.update(policy, value_model, opts, batch, cfg, torch.Generator().manual_seed(0))
    assert len(stats) == 3
    assert stats[0]["ppo/ratio_dev"] == 0.0 and stats[0]["ppo/ratio_mean"] == 1.0
    assert stats[0]["ppo/clipfrac"] == 0.0 and stats[0]["ppo/approx_kl"] == 0.0
    assert stats[1]["ppo/ratio_dev"] > 1e-4  # after one step the policy has moved


def test_entropy_by_hand():
    uniform, sure = torch.zeros(1, 4), torch.tensor([[0.0, -1e4, -1e4, -1e4]])
    assert objective.entropy(torch.cat([uniform, sure])).item() == pytest.approx(math.log(4) / 2)
    assert objective.entropy(torch.zeros(0, 4)).item() == 0.0  # no response tokens: 0, not NaN


def test_trimming_padding_columns_changes_no_gradient(run_dir):
    _, enc = run_dir
    cfg = small_cfg(".")
    policy, _, value_model, batch = one_batch(enc, cfg)
    rows = batch["attention_mask"].sum(1).argsort()[:4]  # the shortest episodes
    mb = {k: v[rows] for k, v in batch.items() if torch.is_tensor(v) and len(v) == 18}
    short = ppo.trim(mb)
    assert short["tokens"].shape[1] < mb["tokens"].shape[1]  # there was padding to cut
    assert short["mask"].shape[1] == short["tokens"].shape[1] - 1
    assert short["mask"].sum() == mb["mask"].sum()  # no response token lost

    def run(m):
        policy.zero_grad(set_to_none=True)
        value_model.zero_grad(set_to_none=True)
        stats = ppo.backward_minibatch(ppo.Losses(policy, value_model, cfg), m, cfg)
        return stats, [p.grad.clone() for p in (*policy.parameters(), *value_model.parameters())]

    (s_full, g_full), (s_short, g_short) = run(mb), run(short)
    assert s_full.keys() == s_short.keys()
    for k in s_full:
        assert s_short[k] == pytest.approx(s_full[k], abs=1e-5), k
    for a, b in zip(g_full, g_short, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)  # fp32 summation order


def test_ptx_gradient_is_gamma_times_the_lm_gradient(run_dir):
    out, enc = run_dir
    cfg = small_cfg(".", ptx_coef=3.0)
    policy, _, value_model, batch = one_batch(enc, cfg)
    ids = torch.tensor(tok.encode_corpus(enc, (out / "corpus.txt").read_text()))
    ptx = stage.get_batch(ids, 48, 4, torch.Generator().manual_seed(0))

    def grads(model, mb, ptx_batch):
        model.zero_grad(set_to_none=True)
        value_model.zero_grad(set_to_none=True)
        ppo.backward_minibatch(ppo.Losses(model, value_model, cfg), mb, cfg, ptx_batch)
        return [p.grad.clone() for p in model.parameters()]

    lm = copy.deepcopy(policy)
    lm.zero_grad()
    objective.ptx_loss(lm, ptx)[0].backward()  # the LM loss alone
    zero = {**batch, "advantages": torch.zeros_like(batch["advantages"])}  # PPO part zeroed
    for g, p in zip(grads(policy, zero, ptx), lm.parameters(), strict=True):
        torch.testing.assert_close(g, 3.0 * p.grad, rtol=1e-5, atol=1e-7)
    # with PPO's part on, the two are accumulated into one gradient: their sum
    g_ppo = grads(policy, batch, None)
    assert max(g.abs().max() for g in g_ppo) > 1e-4
    for g, gp, p in zip(grads(policy, batch, ptx), g_ppo, lm.parameters(), strict=True):
        torch.testing.assert_close(g, gp + 3.0 * p.grad, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- learning


def toy_reward(liked):
    """+1 for every response token in `liked`, averaged over the response (eot excluded)."""
    def reward_fn(tokens, attention_mask, response_mask):
        hit = torch.isin(tokens, liked) & response_mask.bool()
        return hit.sum(1) / response_mask.sum(1).clamp(min=1)
    return reward_fn


def test_ppo_raises_a_toy_reward_with_bounded_kl_and_a_huge_beta_holds_it(run_dir):
    out, enc = run_dir
    liked = torch.arange(40, 70)  # 30 of 300 tokens: the untrained policy scores about 0.1
    # the tiny RM is random, so the value function starts from a zero head, not from it
    kw = dict(iterations=30, batch_size=32, value_init="fresh")
    hist = ppo.train(small_cfg(out, name="toy", kl_coef=0.02, **kw), reward_fn=toy_reward(liked))
    first, last = sum(hist["rlhf/score"][:3]) / 3, sum(hist["rlhf/score"][-3:]) / 3
    assert first < 0.15 and last > 0.6, (first, last)
    # spreading all mass over the liked tokens costs log(300 / 30) nats per token: the KL
    # penalty keeps the policy near that, rather than collapsing onto one token (log 300)
    bound = 8 * math.log(enc.n_vocab / len(liked))
    assert 0.3 * bound < hist["rlhf/kl"][-1] and max(hist["rlhf/kl"]) < 1.5 * bound
    assert (out / "toy.pt").exists() and len(hist["rlhf/gold"]) == 30
    held = ppo.train(small_cfg(out, name="toy_beta", kl_coef=10.0, **kw),
                     reward_fn=toy_reward(liked))
    assert max(held["rlhf/kl"]) < 0.1 * hist["rlhf/kl"][-1]
    assert sum(held["rlhf/score"][-3:]) / 3 < first + 0.1


def test_gold_reward_ablation_trains_against_the_worlds_score(run_dir, monkeypatch):
    """Ablation 4: the reward is world.score of each row's own prompt and response, the
    penalty where it never ended; a run rewards each batch with the gold scores it logs."""
    out, enc = run_dir
    cfg = small_cfg(".")
    asked = PROMPTS * 3
    policy = tiny_gpt(enc.n_vocab, enc.eot_token)
    batch = ppo.rollout(policy, [tok.encode(enc, p)[-40:] for p in asked], cfg, enc.eot_token,
                        torch.Generator().manual_seed(0))
    gold = ppo.gold_scores(batch, enc, asked)
    got = env.gold_reward(gold, enc.eot_token, -7.0)(batch["tokens"], batch["attention_mask"],
                                                     batch["response_mask"])
    texts = gpt.decode_responses(enc, batch["tokens"], batch["response_mask"])
    want = [world.score(p, t)[0] if done else -7.0
            for p, (t, done) in zip(asked, texts, strict=True)]
    assert got.tolist() == pytest.approx(want)
    assert any(done for _, done in texts) and not all(done for _, done in texts)
    calls, real = [], env.gold_reward
    monkeypatch.setattr(env, "gold_reward", lambda g, e, pen: calls.append(g) or real(g, e, pen))
    hist = ppo.train(small_cfg(out, name="gold", iterations=2, reward="gold"))
    assert len(calls) == 2 and all(len(c) == 16 for c in calls)
    assert [sum(c) / len(c) for c in calls] == pytest.approx(hist["rlhf/gold"])  # the log's
    assert len(hist["rlhf/score"]) == 2
    with pytest.raises(ValueError, match="reward must be rm or gold"):
        ppo.train(small_cfg(out, name="x", reward="labelers"))


# ----------------------------------------------------------------------------- checkpoints


def test_resume_equals_uninterrupted(run_dir):
    out, enc = run_dir
    kw = dict(ptx_coef=0.5, ema_decay=0.9, adaptive_kl=True, target_kl=0.01, kl_horizon=100)
    full = ppo.train(small_cfg(out, name="full", iterations=4, **kw))
    ppo.train(small_cfg(out, name="part", iterations=2, **kw))
    part = ppo.train(small_cfg(out, name="part", iterations=4, resume=True, **kw))
    a = torch.load(out / "full.pt", weights_only=True)
    b = torch.load(out / "part.pt", weights_only=True)
    for k in ("model", "policy"):
        assert all(torch.equal(a[k][n], b[k][n]) for n in a[k])
    assert not torch.equal(a["model"]["lm_head.weight"], a["policy"]["lm_head.weight"])  # EMA
    assert all(torch.equal(a["value"]["model"][n], b["value"]["model"][n])
               for n in a["value"]["model"])
    assert a["state"] == b["state"] and a["state"]["kl_coef"] != 0.02  # beta adapted
    for key in full:
        if not key.startswith("time/"):
            assert full[key] == part[key], key
    assert a["optimizer"][0]["state"][0]["exp_avg"].equal(b["optimizer"][0]["state"][0]["exp_avg"])
    model, _ = stage.load_model(out / "full.pt")  # the policy loads like any stage's GPT
    assert torch.equal(model.lm_head.weight, a["model"]["lm_head.weight"])


# ----------------------------------------------------------------------------- value model


def test_value_model_from_the_rm_starts_at_the_rms_reward_and_trains_whole(run_dir):
    out, enc = run_dir
    cfg = small_cfg(out)
    _, _, value_model, rm, _ = env.load_models(cfg.out, device="cpu")
    assert rm.bias.item() == pytest.approx(0.3)  # a non-zero bias, so the fold is tested
    ids, am = gpt.pad_left([tok.encode(enc, p) for p in PROMPTS], 0)
    with torch.no_grad():  # V at the last token equals the RM's normalised reward there
        torch.testing.assert_close(value_model(ids, am)[:, -1], rm(ids, am))
    opt = stage.make_optimizer(value_model, 1e-3, 0.0)  # the RM is frozen, its copy is not
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in in_opt for p in value_model.parameters())
    assert not any(p.requires_grad for p in rm.parameters())


def test_whiten_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0], [5.0, -7.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    w = objective.whiten(x, mask)
    vals = torch.tensor([1.0, 2.0, 3.0, 5.0])  # the masked entries: mean 2.75, var 2.1875
    want = (vals - 2.75) / math.sqrt(2.1875 + 1e-8)
    torch.testing.assert_close(w[mask.bool()], want)
    assert (w[~mask.bool()] == 0).all()


def test_adaptive_kl_controller_by_hand():
    # KL above target: beta grows by err * n / horizon, err capped at +0.2
    assert ppo.adapt_kl_coef(0.1, 9.0, 100, 6.0, 10000) == pytest.approx(0.1 * (1 + 0.2 * 0.01))
    assert ppo.adapt_kl_coef(0.1, 6.6, 100, 6.0, 10000) == pytest.approx(0.1 * (1 + 0.1 * 0.01))
    # below target: it shrinks, err capped at -0.2; on target it stays
    assert ppo.adapt_kl_coef(0.1, 0.0, 100, 6.0, 10000) == pytest.approx(0.1 * (1 - 0.2 * 0.01))
    assert ppo.adapt_kl_coef(0.1, 6.0, 100, 6.0, 10000) == pytest.approx(0.1)
    # the default horizon is the run's episodes / 25.6 (Ziegler's 10,000 of 256k): over the
    # cpu preset's 40 x 64 episodes, a KL held above target moves beta by a visible factor
    cfg = ppo.Config()
    assert ppo.kl_horizon(cfg) == pytest.approx(2560 / 25.6)
    assert ppo.kl_horizon(ppo.Config(kl_horizon=10000)) == 10000
    beta = 0.02
    for _ in range(cfg.iterations):
        beta = ppo.adapt_kl_coef(beta, 9.0, cfg.batch_size, 6.0, ppo.kl_horizon(cfg))
    assert beta > 0.02 * 100  # (1 + 0.2 * 0.64) ** 40 = 123x
