"""ppo.py: step 3 of InstructGPT, PPO and PPO-ptx against the reward model (Eq. 2).

Paper: Ouyang et al. 2022, section 3.5 "Reinforcement learning (RL)" and appendix C.4. The SFT
model is fine-tuned in a bandit environment (environment.py): it sees a prompt x, it answers y,
the reward model scores (x, y), and the episode ends. The objective, maximised over the RL
policy pi_RL (phi its parameters), is

    objective(phi) = E_{(x,y) ~ D_pi_RL}[ r_theta(x, y) - beta log(pi_RL(y|x) / pi_SFT(y|x)) ]
                     + gamma E_{x ~ D_pretrain}[ log pi_RL(x) ]                          (Eq. 2)

The first expectation is maximised with PPO (Schulman et al. 2017), its KL term spread over the
response's tokens (Ziegler et al. 2019); the second is the language-model loss on pretraining
text. gamma = 0 is "PPO"; gamma > 0 is "PPO-ptx", the paper's InstructGPT. One iteration:

    rollout     sample a response to each of batch_size prompts (KV cache, temperature 1)
    score       RM score, reference log-probs, values, old log-probs: one forward each
    advantages  per-token rewards (Eq. 2's first two terms), GAE, whitening
    update      ppo_epochs x minibatches: clipped surrogate + clipped value loss (+ ptx), Adam

Eq. 2's terms and PPO's losses, functions of tensors alone, are objective.py's; this file is
the algorithm around them: the models, the iteration, the optimizer steps, the log.

    python ppo.py --out runs/cpu                   # sft.pt, rm.pt, prompts.jsonl -> ppo.pt
    python ppo.py --out runs/cpu --ptx_coef 1      # PPO-ptx, + corpus.txt -> ppo_ptx.pt
    python ppo.py --help                           # every Config field

Glossary:
    pi_RL, pi_SFT   `policy` (trained), `ref` (the frozen SFT model: the reference)
    r_theta(x, y)   `score`: the RM's normalised reward of a whole response (reward.py, read
                    by environment.rm_reward)
    beta            `kl_coef`, weight of the per-token KL penalty
    gamma (Eq. 2)   `ptx_coef`, weight of the pretraining log-likelihood
    epsilon         `clip_eps`, PPO's clip range of the probability ratio
    lambda          `gae_lambda`, GAE's bias-variance trade-off; its discount is `discount`
                    (= 1; GAE's usual symbol is gamma, which here means only Eq. 2's)
    V(x, y_<t)      `values`, the value model's estimate of the return from token t on
    shapes          tokens (B, T) as GPT.generate returns them (prompt left-padded, response
                    right-padded); per-token tensors (B, T-1): entry t is about token t+1;
                    `mask` (B, T-1) is 1 where token t+1 is a response token (end-of-text too)

Implementation details, tagged [Dn] in the code (here, in objective.py and environment.py):
 [D1] The RM scores the whole response once, at its final token (the end-of-text); every other
      token gets no reward from it.
 [D2] The KL penalty is per token, r_t = -beta kl_t, with kl_t = log pi_RL - log pi_SFT of the
      sampled token (k1, the paper's). Used as a reward, k1 is exact: E_y[k1(y) grad log pi(y)]
      = grad KL(pi_RL || pi_SFT). The lower-variance k3 = (rho - 1) - log rho (rho = pi_SFT /
      pi_RL) is not offered: as a reward its expected gradient is a small fraction of grad KL
      near the reference, even of the opposite sign (tests/test_ppo.py computes both on a
      small categorical); k3 is unbiased only as a loss term differentiated directly (GRPO).
 [D3] beta is fixed (paper) or adaptive (Ziegler et al. 2019): after each batch of n episodes,
      beta *= 1 + clip(KL / target_kl - 1, -0.2, 0.2) * n / kl_horizon. Ziegler's horizon,
      10,000 episodes, is 1/25.6 of a 256k-episode run such as the paper's; on our 2,560
      episodes it would move beta by at most 5%, so the default horizon is the run's episodes
      / 25.6 (100 here: beta can change up to 12.8% an iteration).
 [D4] The value function is a separate model, initialised from the RM: its body and head, with
      the RM's normalisation bias folded into the head; the head reads every position.
 [D5] GAE (Schulman et al. 2016) with no discount (1): the episode ends at the final token, after
      which values and advantages are 0; returns = advantages + values.
 [D6] Advantages are whitened (mean 0, std 1) over the batch's response tokens.
 [D7] The value loss is clipped around the rollout's values, as the ratio is (clip value_clip).
 [D8] Log-probs are recomputed exactly as sampling computed them: the same temperature, no
      dropout (eval mode throughout), so the ratio is 1 on the first minibatch (exactly, in
      fp32 on a CPU; up to kernel rounding under bf16 or on a GPU).
 [D9] PPO-ptx: gamma * LM loss on corpus windows is back-propagated right after the PPO loss,
      into the same gradient buffers, and one optimizer step takes both (App. C.4).
 [D10] A response that never ends (no end-of-text in max_new_tokens) scores no_eot_penalty
      instead of the RM's reward, which was never trained on unfinished answers.
 [D11] Optionally an EMA of the policy weights (paper: decay 0.992) is kept; ppo.pt's "model"
      is then the EMA (what evaluation loads), "policy" the raw weights (what resume needs).
 [D12] Losses are means over the minibatch's response tokens; gradient norms are clipped.
 [D13] The learning rate warms up linearly over `warmup` iterations from lr/10, then stays
      constant (App. C.4).

Deviations from the paper:
1. Scale: a ~1M-parameter policy and 40 iterations of 64 episodes (2.6k episodes; paper 256k
   episodes in batches of 512, minibatches of 64) so that a laptop CPU runs it in minutes;
   the learning rate is ours accordingly. 40 iterations stop near where the gold score of the
   roll-outs peaks at beta 0.02: our small RM is over-optimised early, and the pipeline's long
   run at beta 0.002 shows the gold score rise and then fall while the RM score keeps rising
   (Gao et al. 2022; evaluate.py measures it on every run, docs/EXPERIMENTS.md records it).
2. ptx_coef: the paper's 27.8 weighs a loss over 8x as many pretraining examples as episodes;
   what matters is its gradient beside PPO's, which differs at our scale. We take
   `--ptx_coef 1` with 8 corpus windows per minibatch (more tokens than its responses): it
   kept PPO's RM score and removed the alignment tax where a larger gamma cost win rate
   (docs/EXPERIMENTS.md).
3. GAE's lambda, value clipping and vf_coef are not given in the paper; the values are those of
   Ziegler et al. 2019's code (lambda 0.95, value clip 0.2, vf_coef 0.1).
4. No EMA of the weights by default (paper C.4: decay 0.992; `--ema_decay 0.992` keeps one).
   Over our 160 optimizer steps an EMA at 0.992 still holds 0.992^160 = 28% of the SFT
   weights: it won 57.5% against SFT where the raw weights of the same runs won 59.1% (3
   seeds); over the long preset's 640 steps it changed nothing (64.9% against 65.1%)
   (docs/EXPERIMENTS.md).

Ablation (not the paper's; off by default):
5. `--reward gold` trains against the world's gold score itself instead of the RM, as Gao et
   al. 2022 train against their gold reward model: what PPO reaches with a perfect reward. At
   the cpu preset's budget it wins no more against SFT than PPO against the RM; with 16x the
   episodes it wins about 69% (docs/EXPERIMENTS.md, "What stops PPO short").
"""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import data
import environment as env
import gpt
import objective as obj
import parallel
import stage
import tokenizer as tok
import world


@dataclass
class Config:
    """PPO (ptx_coef = 0) or PPO-ptx (ptx_coef > 0); reads and writes the run directory `out`."""

    out: str = "runs/cpu"  # run dir: sft.pt, rm.pt, prompts.jsonl (+ corpus.txt) -> ppo.pt
    name: str = ""  # output name; "" = "ppo" if ptx_coef == 0 else "ppo_ptx" (-> NAME.pt)
    policy_init: str = "sft"  # out/<policy_init>.pt or a .pt path: policy and reference (SFT)
    value_init: str = "rm"  # [D4] "rm" (paper 3.5) | "sft" | "fresh" (RM body): zero head
    kl_coef: float = 0.02  # beta, per-token KL penalty (paper App. C.4: 0.02)
    adaptive_kl: bool = False  # [D3] adapt beta towards target_kl (paper: fixed beta)
    target_kl: float = 6.0  # KL per response, in nats, the controller aims at (Ziegler: 6)
    kl_horizon: int = 0  # [D3] episodes over which beta adapts; 0 = the run's episodes / 25.6
    ptx_coef: float = 0.0  # gamma of Eq. 2: 0 = PPO, > 0 = PPO-ptx (paper: 27.8; deviation 2)
    ptx_batch_size: int = 8  # corpus windows per minibatch (paper: 8x the RL episodes)
    clip_eps: float = 0.2  # epsilon, clip range of the ratio (paper C.4: 0.2)
    value_clip: float = 0.2  # [D7] clip range of the values, 0 = off (paper: not given)
    vf_coef: float = 0.1  # value loss weight (own model and Adam: acts only via grad_clip)
    entropy_coef: float = 0.0  # entropy bonus (paper: none)
    gae_lambda: float = 0.95  # lambda of GAE (paper: not given)
    discount: float = 1.0  # GAE's discount (paper C.4: 1, no discount; not Eq. 2's gamma)
    iterations: int = 40  # batches of episodes (paper: 256k / 512 = 500; deviation 1)
    batch_size: int = 64  # episodes (prompts) per iteration (paper C.4: 512)
    minibatch_size: int = 16  # episodes per gradient step (paper C.4: 64)
    ppo_epochs: int = 1  # passes over each batch (paper C.4: 1)
    lr: float = 3e-5  # peak learning rate of policy and value (ours: deviation 1)
    warmup: int = 10  # [D13] iterations of linear warmup from lr/10 (paper C.4: 10)
    weight_decay: float = 0.0  # AdamW (paper: Adam)
    grad_clip: float = 1.0  # [D12] gradient-norm clip per model (0 = off)
    temperature: float = 1.0  # sampling temperature, also in the recomputed log-probs (paper: 1)
    max_new_tokens: int = 64  # response length cap; a response that hits it never ended
    no_eot_penalty: float = -1.0  # [D10] score of a response that never ends (Ziegler: -1)
    reward: str = "rm"  # "rm" (paper) | "gold": the world's gold score (ablation 5)
    ema_decay: float = 0.0  # [D11] EMA of the policy weights, 0 = off (paper C.4: 0.992; dev. 4)
    seed: int = 1337  # prompt order, sampling, minibatches, ptx windows
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto (bf16 autocast on cuda if supported, else fp32) | fp32 | bf16
    resume: bool = False  # continue from out/<name>.pt exactly
    log_every: int = 10  # iterations between printed lines and checkpoints (JSONL: each one)


def run_name(cfg: Config) -> str:
    return cfg.name or ("ppo_ptx" if cfg.ptx_coef > 0 else "ppo")


# ----------------------------------------------------------------------------- one iteration


@torch.no_grad()
def rollout(policy, prompt_ids, cfg: Config, eot_id, generator):
    """Sample a response to each prompt (token lists) with the KV cache. Returns a dict of
    tokens, attention_mask, response_mask (B, T) and mask (B, T-1) (the response's tokens)."""
    policy.eval()  # [D8] no dropout, now and in the update
    with stage.autocast(str(generator.device), cfg.dtype, sampling=True):
        tokens, am, resp = policy.generate(prompt_ids, cfg.max_new_tokens, cfg.temperature,
                                           eot_id=eot_id, generator=generator)
    return {"tokens": tokens, "attention_mask": am, "response_mask": resp,
            "mask": resp[:, 1:].float()}  # entry t is about token t+1


@torch.no_grad()
def score(batch, policy, ref, value_model, reward_fn, cfg: Config):
    """One batched forward of each model over the rollout's tokens: the policy's log-probs
    (pi_old), the reference's, the values and the reward. Adds them to the batch (B, T-1)."""
    tokens, am, mask = batch["tokens"], batch["attention_mask"], batch["mask"]
    with stage.autocast(str(tokens.device), cfg.dtype):
        batch["logprobs"] = gpt.sequence_logprobs(policy, tokens, am, cfg.temperature, mask)
        batch["ref_logprobs"] = gpt.sequence_logprobs(ref, tokens, am, cfg.temperature, mask)
        batch["values"] = value_model(tokens, am)[:, :-1] * mask  # V before token t+1
        batch["score"] = reward_fn(tokens, am, batch["response_mask"]).float()  # (B,)
    return batch


@torch.no_grad()
def advantages(batch, kl_coef, cfg: Config):
    """Eq. 2's rewards, GAE and whitening; adds rewards, kl, advantages and returns (B, T-1)."""
    mask = batch["mask"]
    batch["rewards"], batch["kl"] = obj.kl_penalized_rewards(
        batch["logprobs"], batch["ref_logprobs"], batch["score"], mask, kl_coef)
    adv, batch["returns"] = obj.gae(batch["rewards"], batch["values"], mask, cfg.discount,
                                    cfg.gae_lambda)
    batch["advantages"] = obj.whiten(adv, mask)  # [D6]
    return batch


class Losses(torch.nn.Module):
    """The policy and the value function as one module whose forward is a minibatch's losses:
    what DistributedDataParallel wraps, so one backward averages both models' gradients over the
    ranks (parallel.py)."""

    def __init__(self, policy, value_model, cfg: Config, ranks=None):
        super().__init__()
        self.policy, self.value_model, self.cfg = policy, value_model, cfg
        self.ranks = ranks or parallel.Ranks()

    def forward(self, mb, ptx_batch=None):
        """(PPO's loss, ptx's loss or None, stats) of a minibatch, this rank's share of it."""
        cfg, policy, (tokens, am, mask) = self.cfg, self.policy, (
            mb["tokens"], mb["attention_mask"], mb["mask"])
        with stage.autocast(str(tokens.device), cfg.dtype):
            logprobs, logits = gpt.response_logprobs(policy, tokens, am, mask,
                                                     cfg.temperature)  # [D8]; logits (n, V)
            pg, stats = obj.ppo_policy_loss(logprobs, mb["logprobs"], mb["advantages"], mask,
                                            cfg.clip_eps)
            with torch.set_grad_enabled(cfg.entropy_coef > 0):  # logging only when off
                ent = obj.entropy(logits, cfg.temperature)
            vf, vstats = obj.value_loss(self.value_model(tokens, am)[:, :-1], mb["values"],
                                        mb["returns"], mask, cfg.value_clip)
            loss = pg - cfg.entropy_coef * ent + cfg.vf_coef * vf
            lm = None
            if ptx_batch is not None:
                lm, pstats = obj.ptx_loss(policy, ptx_batch)
                stats.update(pstats)
        stats.update(vstats, **{"ppo/entropy": ent.item()})
        # each rank's token means -> the minibatch's (ptx: equal shares of the windows)
        return self.ranks.rescale(loss, float(mask.sum()) * mb.get("weight", 1.0)), lm, stats


def backward_minibatch(losses: Losses, mb, cfg: Config, ptx_batch=None, net=None):
    """The gradients of one minibatch, accumulated into .grad: PPO's losses, then ptx's [D9].
    net: the DistributedDataParallel wrapper of losses on several ranks, which needs one
    backward of the sum (ptx's windows shared equally, so its mean needs no rescaling)."""
    loss, lm, stats = (net or losses)(mb, ptx_batch)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"PPO loss is {loss.item()} ({stats}); stopped without "
                                 f"saving: the last checkpoint is kept. Try a lower --lr")
    if lm is not None and not torch.isfinite(lm):
        raise FloatingPointError(f"ptx loss is {lm.item()}; stopped without saving: the "
                                 f"last checkpoint is kept. Try a lower --lr")
    if net is not None:
        (loss if lm is None else loss + cfg.ptx_coef * lm).backward()
        return stats
    loss.backward()
    if lm is not None:  # [D9] consecutive backward passes, one gradient buffer
        (cfg.ptx_coef * lm).backward()  # Eq. 2: + gamma E[log pi_RL(x)]
    return stats


def trim(mb: dict) -> dict:
    """A minibatch without the columns that are padding in all its rows, a seventh of a padded
    batch (speed only: padding is never a key, positions count real tokens, so every number is
    the same). Tensors (B, T) lose those columns, tensors (B, T-1) the matching entries."""
    am = mb["attention_mask"]
    real = am.any(0).nonzero()
    lo, hi, T = int(real.min()), int(real.max()) + 1, am.shape[1]
    cut = {T: slice(lo, hi), T - 1: slice(lo, hi - 1)}
    return {k: v[:, cut[v.shape[1]]] if v.dim() == 2 else v for k, v in mb.items()}


def update(policy, value_model, opts, batch, cfg: Config, generator, ptx_ids=None, ema=None,
           net=None):
    """ppo_epochs passes over the batch in shuffled minibatches, one optimizer step each.
    Returns the stats of every minibatch, in order. On several ranks every rank holds the
    whole batch and draws the same minibatches; each takes its share of a minibatch's episodes
    and ptx windows, and net (the DistributedDataParallel of Losses) averages the gradients."""
    policy.eval()  # [D8] eval mode: no dropout, so training log-probs equal sampling's
    value_model.eval()
    losses = getattr(net, "module", net) or Losses(policy, value_model, cfg)
    ranks = losses.ranks
    B, dev, out = len(batch["tokens"]), batch["tokens"].device, []
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(B, generator=generator).to(dev)
        for s in range(0, B, cfg.minibatch_size):
            idx = ranks.share(perm[s:s + cfg.minibatch_size])
            mb = trim({k: v[idx if len(idx) else perm[s:s + 1]] for k, v in batch.items()
                       if torch.is_tensor(v) and len(v) == B})
            mb["weight"] = float(len(idx) > 0)  # a rank without episodes adds no gradient
            ptx = None
            if ptx_ids is not None:
                x, y = stage.get_batch(ptx_ids, policy.config.block_size, cfg.ptx_batch_size,
                                       generator)
                ptx = (ranks.share(x).to(dev), ranks.share(y).to(dev))
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            out.append(backward_minibatch(losses, mb, cfg, ptx, net))
            for model, opt in zip((policy, value_model), opts, strict=True):
                if cfg.grad_clip > 0:  # [D12]
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            if ema is not None:  # [D11] ema <- decay * ema + (1 - decay) * weights
                with torch.no_grad():
                    for k, v in policy.state_dict().items():
                        ema[k].lerp_(v, 1 - cfg.ema_decay)
    return out


def explained_variance(values, returns, mask):
    """1 - Var[R - V] / Var[R] over response tokens: 1 = perfect values, 0 = a constant."""
    var = obj.masked_mean((returns - obj.masked_mean(returns, mask)) ** 2, mask)
    err = returns - values
    return (1 - obj.masked_mean((err - obj.masked_mean(err, mask)) ** 2, mask) / var).item()


def kl_horizon(cfg: Config) -> float:
    """[D3] The controller's horizon in episodes: cfg.kl_horizon, or 0 -> the run's / 25.6."""
    return cfg.kl_horizon or cfg.iterations * cfg.batch_size / 25.6


def adapt_kl_coef(kl_coef, kl, n, target, horizon):
    """[D3] Ziegler et al. 2019's proportional controller: beta grows when KL > target."""
    err = min(max(kl / target - 1, -0.2), 0.2)
    return kl_coef * (1 + err * n / horizon)


def summarize(batch, gold, mbs, eot_id) -> dict:
    """An iteration's log record: the roll-outs, Eq. 2's terms, PPO's minibatch means."""
    mask, mean = batch["mask"], lambda xs: sum(xs) / len(xs)
    return {"rlhf/score": batch["score"].mean().item(), "rlhf/gold": mean(gold),
            "rlhf/kl": (batch["logprobs"] - batch["ref_logprobs"]).sum(1).mean().item(),  # k1
            "rlhf/reward": batch["rewards"].sum(1).mean().item(),  # r_theta - beta KL
            "rlhf/response_len": mask.sum(1).mean().item(),
            "rlhf/ended": env.ended(batch["tokens"], batch["response_mask"], eot_id).float()
            .mean().item(),
            "ppo/explained_var": explained_variance(batch["values"], batch["returns"], mask),
            **{k: mean([s[k] for s in mbs]) for k in mbs[0] if k != "ppo/ratio_dev"},
            "ppo/ratio_dev_first": mbs[0]["ppo/ratio_dev"]}  # [D8]: 0 in fp32 on a CPU


def gold_scores(batch, enc, prompts):
    """world.score of each (prompt, response): for the reader only, never a training signal
    (but in the --reward gold ablation, where it is the reward)."""
    texts = gpt.decode_responses(enc, batch["tokens"], batch["response_mask"])
    return [world.score(p, text)[0] for p, (text, _) in zip(prompts, texts, strict=True)]


# ----------------------------------------------------------------------------- training


@stage.locked  # one run at a time per run directory
def train(cfg: Config, reward_fn=None) -> dict:
    """PPO or PPO-ptx from out/sft.pt against out/rm.pt; writes out/<name>.pt and
    out/<name>_log.jsonl, returns the history. reward_fn(tokens, attention_mask, response_mask)
    -> (B,) replaces the RM (tests use a toy reward)."""
    ranks, device = parallel.init(stage.pick_device(cfg.device))  # torchrun: this rank's
    out, name = Path(cfg.out), run_name(cfg)
    ckpt, log = out / f"{name}.pt", stage.Log(out / f"{name}_log.jsonl")  # published at saves
    policy, ref, value_model, rm, enc = env.load_models(cfg.out, cfg.policy_init,
                                                        cfg.value_init, device)
    if cfg.reward not in ("rm", "gold"):
        raise ValueError(f"reward must be rm or gold, got {cfg.reward!r}")
    if reward_fn is None and cfg.reward == "rm":
        reward_fn = env.rm_reward(rm, enc.eot_token, cfg.no_eot_penalty)
    prompts = data.read_prompts(stage.need(out / "prompts.jsonl", f"python -m world --out {out}"))
    prompt_ids, _ = gpt.encode_prompts(enc, [data.format_prompt(p["prompt"]) for p in prompts],
                                       policy.config.block_size, cfg.max_new_tokens)
    ptx_ids = None
    if cfg.ptx_coef > 0:  # Eq. 2's D_pretrain: the corpus the base model learned from
        ptx_ids = torch.tensor(tok.encode_corpus(enc, stage.load_corpus(out / "corpus.txt")),
                               dtype=torch.int32)
    opts = [stage.make_optimizer(m, cfg.lr, cfg.weight_decay) for m in (policy, value_model)]
    if ptx_ids is not None:
        parallel.need_divisible(cfg.ptx_batch_size, "--ptx_batch_size", ranks)
    net = None if ranks.size == 1 else parallel.wrap(Losses(policy, value_model, cfg, ranks),
                                                     ranks, device)
    sample_gen = torch.Generator(device).manual_seed(cfg.seed + ranks.rank)  # roll-outs
    batch_gen = torch.Generator().manual_seed(cfg.seed + 1)  # minibatch order, ptx windows
    ema = ({k: v.detach().clone() for k, v in policy.state_dict().items()}
           if cfg.ema_decay > 0 else None)
    it, state = 0, {"kl_coef": cfg.kl_coef, "prompt_pos": 0}
    if cfg.resume and ckpt.exists():
        ck = stage.load_checkpoint(ckpt, f"python ppo.py --out {out}", enc)
        policy.load_state_dict(ck["policy"] if ema is not None else ck["model"])
        value_model.load_state_dict(ck["value"]["model"])
        for opt, sd in zip(opts, ck["optimizer"], strict=True):
            opt.load_state_dict(sd)
        if ema is not None:
            ema = {k: v.to(device) for k, v in ck["model"].items()}
        own = ranks.own(ck["rng"]["sample"])
        if own is not None:  # else a rank new to the run: its own stream, seeded above
            sample_gen.set_state(own)
        batch_gen.set_state(ck["rng"]["batch"])
        parallel.set_rng_states(ck["rng"], ranks, cfg.seed)
        it, state, log = ck["step"], ck["state"], stage.Log(log.path, ck)
        print(f"resumed {ckpt} at iteration {it}")

    def save():
        rng = {**parallel.rng_states(ranks), "batch": batch_gen.get_state(),
               "sample": ranks.states(sample_gen.get_state())}
        if not ranks.main:  # rank 0 writes, with every rank's generators
            return
        stage.save_checkpoint({
            "config": dataclasses.asdict(policy.config), "kind": "policy",
            "model": ema if ema is not None else policy.state_dict(),  # [D11]
            **({"policy": policy.state_dict()} if ema is not None else {}),
            "tokenizer": tok.tokenizer_id(enc), "step": it, "state": state,
            "value": {"config": dataclasses.asdict(value_model.gpt.config),
                      "model": value_model.state_dict()},
            "optimizer": [opt.state_dict() for opt in opts],
            "train_config": dataclasses.asdict(cfg),
            "rng": rng}, ckpt, log)

    if ranks.main:
        print(f"{name}: policy {policy.num_params() / 1e6:.2f}M, value "
              f"{value_model.gpt.num_params() / 1e6:.2f}M parameters; {len(prompts)} prompts, "
              f"{cfg.iterations} iterations of {cfg.batch_size} episodes; beta {cfg.kl_coef}, "
              f"gamma {cfg.ptx_coef}; {device}" + (f", {ranks.size} ranks" if ranks.size > 1
                                                    else ""))
    bar = ranks.progress(cfg.iterations, it, name)
    while it < cfg.iterations:
        lr = cfg.lr * min(1.0, 0.1 + 0.9 * it / cfg.warmup) if cfg.warmup > 0 else cfg.lr  # [D13]
        for opt in opts:
            for g in opt.param_groups:
                g["lr"] = lr
        t0 = time.time()
        idx = env.prompt_indices(len(prompts), state["prompt_pos"], cfg.batch_size, cfg.seed)
        mine = ranks.share(idx)  # each rank samples and scores its share of the episodes
        batch = rollout(policy, [prompt_ids[i] for i in mine], cfg, enc.eot_token, sample_gen)
        t1 = time.time()
        gold = gold_scores(batch, enc, [prompts[i]["prompt"] for i in mine])
        t2 = time.time()
        score(batch, policy, ref, value_model,
              reward_fn or env.gold_reward(gold, enc.eot_token, cfg.no_eot_penalty), cfg)
        t3 = time.time()
        # every rank gets the whole batch: Eq. 2's means are over all of it
        batch, gold = ranks.gather_rows(batch), sum(ranks.gather(gold), [])
        advantages(batch, state["kl_coef"], cfg)
        mbs = update(policy, value_model, opts, batch, cfg, batch_gen, ptx_ids, ema, net)
        mbs = ranks.average(mbs)  # the minibatch statistics, over the ranks
        t4 = time.time()
        rec = {"iteration": it + 1, "episodes": (it + 1) * len(idx),
               **summarize(batch, gold, mbs, enc.eot_token), "rlhf/kl_coef": state["kl_coef"],
               "lr": lr, "time/rollout": t1 - t0, "time/score": t3 - t2, "time/gold": t2 - t1,
               "time/update": t4 - t3}
        if cfg.adaptive_kl:  # [D3]
            state["kl_coef"] = adapt_kl_coef(state["kl_coef"], rec["rlhf/kl"], len(idx),
                                             cfg.target_kl, kl_horizon(cfg))
        state["prompt_pos"] += len(idx)
        it += 1
        log.append(rec)
        bar.update(1)
        if it % cfg.log_every == 0 or it == cfg.iterations:
            if ranks.main:
                bar.write(f"it {it:4d}/{cfg.iterations} | score {rec['rlhf/score']:+.3f} | gold "
                          f"{rec['rlhf/gold']:+.3f} | kl {rec['rlhf/kl']:6.3f} | len "
                          f"{rec['rlhf/response_len']:5.1f} | ended {rec['rlhf/ended']:4.0%} "
                          f"| clip {rec['ppo/clipfrac']:.3f} | vf {rec['loss/value']:.3f} | ev "
                          f"{rec['ppo/explained_var']:+.2f}"
                          + (f" | ptx {rec['loss/ptx']:.3f}" if ptx_ids is not None else "")
                          + f" | {t1 - t0:.1f}/{t3 - t2:.1f}/{t4 - t3:.1f}s roll/score/update")
            save()
    bar.close()
    return log.history()


def main(argv=None):
    train(stage.config_from_args(Config, argv))
    parallel.finish()


if __name__ == "__main__":
    stage.run_cli(main)
