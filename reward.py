"""reward.py: step 2 of InstructGPT, a reward model trained on K-way rankings with Eq. 1.

Paper: Ouyang et al. 2022, section 3.5 "Reward modeling". For each
prompt x, labelers rank K = 4..9 samples of the SFT model; the reward model r_theta, the SFT
model with its unembedding replaced by a scalar head, learns to score the preferred response
y_w of every pair above the other one y_l:

    loss(theta) = -1/C(K,2) E_{(x, y_w, y_l) ~ D}[log sigma(r_theta(x, y_w) - r_theta(x, y_l))]
                                                                                        (Eq. 1)

The C(K,2) pairs of a prompt are correlated, so they form one batch element, and each of the
K responses is forwarded once (not once per pair); the paper found that shuffling the pairs as
separate examples made the RM overfit. Before RL, a bias is set so that the labelers'
demonstrations score 0 on average.

    python reward.py --out runs/cpu                  # comparisons.jsonl (if absent), then rm.pt
    python reward.py --out runs/cpu --collect_only   # only sample and rank (collect.py)
    python reward.py --help                          # every Config field

Reads out/sft.pt (made by `python sft.py --out DIR`) and out/rm_prompts.jsonl, out/sft.jsonl
(made by `python -m world --out DIR`); writes out/comparisons.jsonl, out/rm.pt, out/reward.jsonl.

Glossary:
    r_theta(x, y)  `RewardModel(tokens, attention_mask, response_mask)`: the head's scalar at
                   y's end-of-text (+ lm_coef times the mean log-likelihood of y, extension 8)
    x, y           a prompt in data.TEMPLATE, and a response
    K              responses ranked for one prompt, drawn from U{k_min..k_max}
    C(K,2)         K(K-1)/2 pairs of one prompt, all in one batch element
    y_w, y_l       of a pair, the response the labeler ranked higher ("won") and lower ("lost")
    D              comparisons.jsonl: {"prompt", "responses", "ranking" (best first), "category"}

Deviations from the paper:
1. Scale: the RM is as small as our SFT model (1-10M parameters; paper: one 6B RM for every
   policy size, as 175B RMs trained unstably) and learns from ~1.5k prompts (paper: ~33k).
2. Simulated labelers: the world's training team (world/labelers.py), rebuilt from
   world.PRESETS[preset] (presets differ only in sizes, so every preset has the same team
   unless `python -m world` was given other labeler fields); each prompt goes to one
   labeler, round-robin.
3. The reward is read at the end-of-text token that gpt.encode_pair appends to every response,
   also to samples cut off at max_new_tokens (the paper reads the final token).
4. Normalisation is a bias only, computed on the demonstrations of sft.jsonl (written for the
   SFT prompts, not the RM's).
5. A held-out tenth of the prompts (with all their pairs) measures accuracy; agreement is that
   of two training labelers on those same pairs (paper 72.6%; the RM's 72.4% is on training
   labelers' held-out comparisons too).
6. CPU-sized hyper-parameters: a higher learning rate and fewer prompts per batch than the
   paper's 9e-6 and 64 (App. C.2), a reward head initialised N(0, 1/(n_embd+1)) as in
   Stiennon et al. 2020.
7. Of each prompt's K samples, `off_prompt` (default 1) is the SFT model's answer to another
   prompt. Ranked only against each other, SFT samples to one prompt are all on its topic, and
   the RM never learns to read the prompt: PPO then found that a thank-you note scored well
   whatever was asked (docs/EXPERIMENTS.md). The paper's comparisons
   come from a larger and more varied pool of outputs than one small SFT model's.

Extension (not the paper's; off by default):
8. `--lm_coef c`: r_theta(x, y) = head(h_eot) + c * (1/|y|) sum_t log p_theta(y_t | x, y_<t), the
   RM keeping its (tied) unembedding and reading the likelihood it gives y. The head alone does
   not learn to check a stated fact against what the model knows, though the SFT model's own
   likelihood orders an answer above it with one fact swapped 95% of the time; the term lets
   Eq. 1 start from that knowledge (as generative verifiers, Zhang et al. 2024). c is fixed: Adam
   would move a learnt scalar by ~lr a step. docs/EXPERIMENTS.md measures it over 3 seeds.
"""

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

import collect
import data
import gpt
import parallel
import stage
import tokenizer as tok
import world


@dataclass
class Config:
    """Reward modelling: collection of rankings, then training. Every field is a --flag."""

    out: str = "runs/cpu"  # run directory: reads sft.pt and the datasets, writes rm.pt
    init: str = "sft"  # start from out/<init>.pt, or a path ending in .pt (paper: the SFT model)
    preset: str = "cpu"  # world.PRESETS entry whose training labelers rank the samples
    k_min: int = 4  # fewest responses ranked per prompt (paper 3.5: K = 4..9)
    k_max: int = 9  # most responses ranked per prompt (paper: 9)
    n_prompts: int = 0  # RM prompts to collect on; 0 = all of rm_prompts.jsonl (paper: ~33k)
    temperature: float = 1.0  # sampling temperature of the K responses (paper: 1)
    max_new_tokens: int = 64  # a sample's length cap; longer ones are cut off there
    gen_batch: int = 256  # rows (prompts x K) per generate call (speed only)
    off_prompt: int = 1  # of each prompt's K samples, how many answer another prompt (deviation 7)
    recollect: bool = False  # sample and rank again even if out/comparisons.jsonl exists
    collect_only: bool = False  # stop after writing comparisons.jsonl
    lm_coef: float = 0.0  # extension 8: weight of the RM's own mean log-likelihood of y (0 = paper)
    epochs: int = 1  # passes over the comparisons (paper C.2: one; more overfits)
    batch_size: int = 8  # prompts per step, each with all its C(K,2) pairs (paper: 64)
    lr: float = 1e-4  # peak learning rate, cosine decay to lr/10 (paper: 9e-6 for 6B)
    warmup_iters: int = 10  # linear warmup steps
    weight_decay: float = 0.0  # AdamW on matmul weights and embeddings
    grad_clip: float = 1.0  # global gradient-norm clip (0 = off)
    dropout: float = 0.0  # dropout inside the RM (the paper gives none)
    val_fraction: float = 0.1  # prompts held out, with all their pairs, for validation
    eval_interval: int = 50  # steps between eval + checkpoint
    seed: int = 1337  # K draws, sampling, labeler noise, split, head init, batch order
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto (bf16 autocast on cuda if supported, else fp32) | fp32 | bf16
    matmul_precision: str = "highest"  # "medium" allows faster fp32 matmuls (speed only)
    resume: bool = False  # continue from out/rm.pt


RM_CMD = "python reward.py --out {out}"


def split_comparisons(comps: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, val): whole prompts, with all their pairs, are held out."""
    idx = list(range(len(comps)))
    random.Random(f"{seed}-split").shuffle(idx)
    n_val = max(1, round(len(comps) * val_fraction))
    if len(comps) - n_val < 1:
        raise ValueError(f"{len(comps)} comparisons are too few to hold {n_val} out")
    return [comps[i] for i in idx[n_val:]], [comps[i] for i in idx[:n_val]]


def encode(enc, prompt: str, response: str, block_size: int):
    """gpt.encode_pair of a raw prompt in the template; a response too long for the context
    (user data; our samples never are) keeps its start. Returns (ids, n_prompt, cut)."""
    return gpt.encode_pair(enc, data.format_prompt(prompt), response, block_size,
                           cut_response=True)


def encode_comparisons(comps: list, enc, block_size: int) -> tuple[list[dict], int]:
    """Token ids of every (prompt, response) once: [{"pairs": [(ids, n_prompt)] * K, "ranking"}],
    and how many pairs lost tokens to the context."""
    out, cut = [], 0
    for c in comps:
        enc_pairs = [encode(enc, c["prompt"], r, block_size) for r in c["responses"]]
        cut += sum(e[2] for e in enc_pairs)
        out.append({"pairs": [e[:2] for e in enc_pairs], "ranking": c["ranking"]})
    return out, cut


# ----------------------------------------------------------------------------- the model


class RewardModel(nn.Module):
    """r_theta(x, y): the SFT GPT's body and a scalar head (paper 3.5); with lm_coef != 0 also
    its unembedding, for the likelihood term of extension 8 (otherwise unused).

    `gpt` and `head` are plain attributes so that ppo.py can copy both into its value function
    (paper 3.5: the value function is initialised from the RM)."""

    def __init__(self, body: gpt.GPT, lm_coef: float = 0.0):
        super().__init__()
        self.gpt, self.lm_coef = body, lm_coef
        n = body.config.n_embd
        self.head = nn.Linear(n, 1)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(n + 1))  # as Stiennon et al. 2020
        nn.init.zeros_(self.head.bias)
        self.register_buffer("bias", torch.zeros(()))  # normalisation, set by normalize()

    def forward(self, tokens, attention_mask=None, response_mask=None):
        """tokens, attention_mask, response_mask (B, T), padded on either side -> rewards (B,),
        read at each row's last real token (the end-of-text), never at padding; with lm_coef,
        plus lm_coef times the mean log-likelihood of the response_mask's tokens."""
        h = self.gpt.body(tokens, attention_mask)  # (B, T, C)
        T = tokens.shape[1]
        if attention_mask is None:
            last = torch.full((len(tokens),), T - 1, device=tokens.device)
        else:  # the last column where the mask is 1
            last = T - 1 - attention_mask.flip(-1).argmax(-1)  # (B,)
        r = self.head(h[torch.arange(len(tokens), device=tokens.device), last]).squeeze(-1)
        r = r.float() - self.bias
        if self.lm_coef:
            if response_mask is None:
                raise ValueError("a reward model with lm_coef needs the response_mask")
            mask = response_mask[:, 1:]  # entry t scores token t + 1
            lp, _ = gpt.response_logprobs(self.gpt, tokens, attention_mask, mask, h=h)
            r = r + self.lm_coef * lp.sum(1) / mask.sum(1).clamp(min=1)  # extension 8
        return r


def load_reward_model(path, enc=None, device="cpu"):
    """A RewardModel from rm.pt (for ppo.py and evaluate.py); returns (model, checkpoint)."""
    path = Path(path)
    ck = stage.load_checkpoint(path, RM_CMD.format(out=path.parent), enc)
    if ck.get("kind") != "reward":
        raise ValueError(f"{path} is not a reward model (kind={ck.get('kind')!r}); reward "
                         f"models are made by: {RM_CMD.format(out=path.parent)}")
    if not ck.get("normalized"):  # a checkpoint of an unfinished run: no bias yet (paper 3.5)
        raise ValueError(f"{path} is from an unfinished training run (not yet normalised); "
                         f"finish it with: {RM_CMD.format(out=path.parent)} --resume")
    model = RewardModel(gpt.GPT(gpt.GPTConfig.from_dict(ck["config"])), ck.get("lm_coef", 0.0))
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), ck


def save_reward_model(model, path, enc, cfg, step, hist, opt, extra=None, log=None) -> None:
    """rm.pt: what load_reward_model needs, plus what an exact resume needs."""
    stage.save_checkpoint({"config": dataclasses.asdict(model.gpt.config), "kind": "reward",
                           "model": model.state_dict(), "bias": model.bias.item(), "step": step,
                           "lm_coef": model.lm_coef,
                           "tokenizer": tok.tokenizer_id(enc), "history": hist,
                           "train_config": dataclasses.asdict(cfg), "optimizer": opt.state_dict(),
                           "rng": parallel.rng_states(parallel.Ranks()), **(extra or {})},
                          path, log)


def forward_batch(model: RewardModel, examples: list[dict], pad_id: int, device):
    """One forward for all responses of a batch of prompts: each response once, sum(K) rows.
    Returns scores (B, K_max) padded with 0 and rankings (B, K_max) padded with -1."""
    tokens, am, resp = gpt.batch_pairs([p for ex in examples for p in ex["pairs"]], pad_id,
                                       device)
    flat = model(tokens, am, resp)  # (sum K,)
    ks = [len(ex["pairs"]) for ex in examples]
    scores = pad_sequence(list(flat.split(ks)), batch_first=True)  # (B, K_max)
    ranking = pad_sequence([torch.tensor(ex["ranking"]) for ex in examples], batch_first=True,
                           padding_value=-1).to(scores.device)
    return scores, ranking


@torch.no_grad()
def score_batch(model: RewardModel, enc, prompts: list[str], responses: list[str],
                batch_size: int = 64, dtype: str = "auto") -> torch.Tensor:
    """Rewards (N,) of N (raw prompt, response) pairs; the template is applied here."""
    was, dev = model.training, next(model.parameters()).device
    model.eval()
    bs, out = model.gpt.config.block_size, []
    pairs = [encode(enc, p, r, bs)[:2] for p, r in zip(prompts, responses, strict=True)]
    for s in range(0, len(pairs), batch_size):
        tokens, am, resp = gpt.batch_pairs(pairs[s:s + batch_size], enc.eot_token, dev)
        with stage.autocast(dev.type, dtype):
            out.append(model(tokens, am, resp).float().cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


# ----------------------------------------------------------------------------- the loss


def ranking_loss(scores, ranking):
    """Eq. 1 for one prompt, or averaged over a batch of prompts with different K.

    scores: (K,) rewards of one prompt's responses, or (B, K_max) for B prompts.
    ranking: response indices best first, the same shape; in a batch, a prompt with fewer than
        K_max responses ends its row with -1 (its padded scores are ignored).
    Returns (loss, stats): loss, the mean over prompts of
        -1/C(K,2) sum over pairs (w ranked above l) of log sigma(r_w - r_l);
    stats over all pairs: "acc" (r_w > r_l, ties half), "margin" (mean r_w - r_l), "pairs".
    """
    ranking = torch.as_tensor(ranking, device=scores.device)
    if scores.dim() == 1:
        scores, ranking = scores[None], ranking[None]
    B, K = scores.shape
    order = torch.arange(K, device=scores.device).expand(B, K)
    place = torch.full((B, K + 1), K, dtype=torch.long, device=scores.device)
    place.scatter_(1, torch.where(ranking >= 0, ranking, K), order)  # padding -> column K
    place = place[:, :K]  # place[b, i]: position of response i in the ranking (0 = best; K = none)
    won = (place[:, :, None] < place[:, None, :]) & (place[:, None, :] < K)  # (B, K, K): i=w, j=l
    diff = scores[:, :, None] - scores[:, None, :]  # (B, K, K): r_i - r_j
    n_pairs = won.sum((1, 2))  # C(K,2) per prompt
    logp = torch.where(won, F.logsigmoid(diff), 0.0)
    loss = (-logp.sum((1, 2)) / n_pairs).mean()  # Eq. 1: -1/C(K,2) sum log sigma(r_w - r_l)
    d = diff.detach()[won]
    stats = {"acc": ((d > 0).float() + 0.5 * (d == 0).float()).mean().item(),
             "margin": d.mean().item(), "pairs": int(n_pairs.sum())}
    return loss, stats


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_rm(model: RewardModel, enc, comparisons: list[dict], labelers=None,
                batch_size: int = 16, dtype: str = "auto", seed: int = 0) -> dict:
    """Held-out metrics: loss and accuracy (pairs ordered as the labeler did), the Pearson
    correlation of the reward with the gold score (world.score), and, given labelers, how often
    two of them agree on the same pairs (world.agreement: the ceiling for the accuracy)."""
    was, dev = model.training, next(model.parameters()).device
    model.eval()
    examples, _ = encode_comparisons(comparisons, enc, model.gpt.config.block_size)
    loss = acc = n = 0.0
    rewards = []
    for s in range(0, len(examples), batch_size):
        with stage.autocast(dev.type, dtype):
            scores, ranking = forward_batch(model, examples[s:s + batch_size], enc.eot_token, dev)
        lo, st = ranking_loss(scores.float(), ranking)
        loss += lo.item() * len(scores)
        acc, n = acc + st["acc"] * st["pairs"], n + st["pairs"]
        rewards += [r for row, ex in zip(scores.tolist(), examples[s:s + batch_size], strict=True)
                    for r in row[:len(ex["pairs"])]]
    model.train(was)
    gold = [world.score(c["prompt"], r)[0] for c in comparisons for r in c["responses"]]
    corr = torch.corrcoef(torch.tensor([rewards, gold]))[0, 1].item()
    res = {"loss": loss / max(1, len(examples)), "acc": acc / max(1, n), "pairs": int(n),
           "gold_corr": corr, "reward_mean": sum(rewards) / max(1, len(rewards))}
    if labelers is not None:
        res["agreement"] = world.agreement(labelers, [(c["prompt"], c["responses"])
                                                      for c in comparisons], random.Random(seed))
    return res


@torch.no_grad()
def normalize(model: RewardModel, enc, demos: list[dict], batch_size: int = 64) -> float:
    """Paper 3.5: set the bias so that the labelers' demonstrations score 0 on average."""
    model.bias.zero_()
    r = score_batch(model, enc, [d["prompt"] for d in demos], [d["response"] for d in demos],
                    batch_size)
    model.bias.fill_(r.double().mean().item())
    return model.bias.item()


# ----------------------------------------------------------------------------- training


@stage.locked  # one run at a time per run directory
def train(cfg: Config) -> dict:
    """Collect comparisons if absent, train the RM with Eq. 1, normalise; returns the history."""
    out = Path(cfg.out)
    ranks, device = parallel.init(stage.pick_device(cfg.device))  # torchrun: this rank's
    if ranks.main and (cfg.recollect or not (out / "comparisons.jsonl").exists()):
        collect.collect(cfg)  # rank 0 alone; the others wait for the file
    ranks.wait()
    comps = data.read_comparisons(out / "comparisons.jsonl")  # DataError with file:line if bad
    demos = data.read_sft(stage.need(out / "sft.jsonl", collect.DATA_CMD.format(out=out)))
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    body, enc, _ = collect.load_sft(cfg)
    torch.manual_seed(cfg.seed + ranks.rank)  # the head's init (rank 0's is broadcast), dropout
    model = RewardModel(body, cfg.lm_coef).to(device)
    train_c, val_c = split_comparisons(comps, cfg.val_fraction, cfg.seed)
    examples, n_cut = encode_comparisons(train_c, enc, body.config.block_size)
    opt = stage.make_optimizer(model, cfg.lr, cfg.weight_decay)
    per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = cfg.epochs * per_epoch
    keys = ("step", "loss/train", "acc/train", "loss/val", "acc/val", "rm/gold_corr")
    step, hist, ckpt = 0, {k: [] for k in keys}, out / "rm.pt"
    log = stage.Log(out / "reward.jsonl")  # reaches the file with each checkpoint

    def save(rng, extra=None):  # rank 0 alone; rng: every rank's generators (rng_states)
        save_reward_model(model, ckpt, enc, cfg, step, hist, opt, {"rng": rng, **(extra or {})},
                          log)

    if cfg.resume and ckpt.exists():
        ck = stage.load_checkpoint(ckpt, RM_CMD.format(out=out), enc)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        parallel.set_rng_states(ck["rng"], ranks, cfg.seed)
        step, hist, log = ck["step"], ck["history"], stage.Log(log.path, ck)
        if ck.get("normalized") and step >= total:  # finished: normalising again logs twice
            print(f"{ckpt} is finished and normalised; nothing to resume")
            return hist
        print(f"resumed {ckpt} at step {step}")
    if ranks.main:
        print(f"reward model: {model.gpt.num_params() / 1e6:.2f}M parameters, {len(train_c)} "
              f"train / {len(val_c)} val prompts, {total} steps of {cfg.batch_size} prompts, "
              f"{device}" + (f" ({ranks.size} ranks)" if ranks.size > 1 else "") + f"; {n_cut} "
              f"(prompt, response) pairs cut to fit block_size={body.config.block_size}")
    bar = ranks.progress(total, step, "reward")
    net = parallel.wrap(model, ranks, device)  # several ranks: gradients averaged over them
    t0, seen, run, ev = time.time(), 0, {"loss": 0.0, "acc": 0.0, "n": 0}, None
    model.train()
    while step < total:
        epoch, i = divmod(step, per_epoch)  # the order is a function of the epoch: exact resume
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(
            cfg.seed + epoch)).tolist()
        batch = [examples[j] for j in order[i * cfg.batch_size:(i + 1) * cfg.batch_size]]
        mine = ranks.share(batch)  # this rank's prompts, each with all its pairs (paper 3.5)
        for g in opt.param_groups:
            g["lr"] = stage.lr_at(step, cfg.lr, cfg.warmup_iters, total)
        with stage.autocast(device, cfg.dtype):
            scores, ranking = forward_batch(net, mine or batch[:1], enc.eot_token, device)
        loss, st = ranking_loss(scores.float(), ranking)  # all C(K,2) pairs: one element each
        loss = ranks.rescale(loss, len(mine))  # the mean over the batch's prompts
        stage.optimizer_step(model, opt, loss, cfg.grad_clip, step, ckpt)
        step += 1
        seen += sum(len(ex["pairs"]) for ex in batch)
        run = {"loss": run["loss"] + loss.item(), "acc": run["acc"] + st["acc"], "n": run["n"] + 1}
        bar.update(1)
        if step % cfg.eval_interval == 0 or step == total:
            rng = parallel.rng_states(ranks)  # every rank's generators, gathered
            mean = {k: ranks.sum(run[k]) / ranks.size / run["n"] for k in ("loss", "acc")}
            if not ranks.main:  # rank 0 evaluates and writes
                run = {"loss": 0.0, "acc": 0.0, "n": 0}
                continue
            ev = evaluate_rm(model, enc, val_c, dtype=cfg.dtype)
            rec = {"step": step, "loss/train": mean["loss"],
                   "acc/train": mean["acc"], "loss/val": ev["loss"],
                   "acc/val": ev["acc"], "rm/gold_corr": ev["gold_corr"],
                   "lr": opt.param_groups[0]["lr"], "seq_per_s": seen / (time.time() - t0)}
            for k in keys:
                hist[k].append(rec[k])
            log.append(rec)
            bar.write(f"step {step:5d}/{total} | loss {rec['loss/train']:.3f} acc "
                      f"{rec['acc/train']:.1%} | val loss {ev['loss']:.3f} acc {ev['acc']:.1%} "
                      f"| gold r {ev['gold_corr']:.2f} | lr {rec['lr']:.1e} | "
                      f"{rec['seq_per_s']:.0f} seq/s")
            run = {"loss": 0.0, "acc": 0.0, "n": 0}
            save(rng)
    bar.close()
    rng = parallel.rng_states(ranks)
    if not ranks.main:
        return hist
    bias = normalize(model, enc, demos)
    if ev is None:  # resumed after the last step: nothing was evaluated in this process
        ev = evaluate_rm(model, enc, val_c, dtype=cfg.dtype)
    # the bias moves no difference and no correlation, so the last step's evaluation stands;
    # only the labelers' agreement on the same pairs is new
    ev["agreement"] = world.agreement(world.make_labelers(world.PRESETS[cfg.preset]),
                                      [(c["prompt"], c["responses"]) for c in val_c],
                                      random.Random(cfg.seed))
    final = {"rm/acc": ev["acc"], "rm/agreement": ev["agreement"], "rm/gold_corr":
             ev["gold_corr"], "rm/bias": bias, "rm/val_pairs": ev["pairs"]}
    hist.update({k: [v] for k, v in final.items() if k != "rm/gold_corr"})
    log.append({"step": step, **final})
    save(rng, {"normalized": True, "metrics": final})
    print(f"held-out accuracy {ev['acc']:.1%} vs labeler agreement {ev['agreement']:.1%} on the "
          f"same {ev['pairs']} pairs | reward-gold correlation {ev['gold_corr']:.2f} | bias "
          f"{bias:+.3f} (demonstrations now score 0 on average) -> {ckpt}")
    return hist


def main(argv=None):
    cfg = stage.config_from_args(Config, argv)
    if cfg.collect_only:
        if cfg.recollect or not (Path(cfg.out) / "comparisons.jsonl").exists():
            return collect.collect(cfg)
        print(f"{cfg.out}/comparisons.jsonl exists; --recollect samples and ranks again")
        return None
    hist = train(cfg)
    parallel.finish()
    return hist


if __name__ == "__main__":
    stage.run_cli(main)
