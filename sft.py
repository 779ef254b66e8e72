"""sft.py: step 1 of InstructGPT, supervised fine-tuning (SFT) on labeler demonstrations.

Paper: Ouyang et al. 2022, section 3.5 ("Supervised fine-tuning (SFT)") and Figure 2 step 1;
appendix C.1 (16 epochs, cosine decay to 10%, residual dropout 0.2) and C.3 (the SFT models
that initialise PPO: 2 epochs, 10% pretraining data mixed in).
The pretrained GPT (base.pt, or GPT-2 weights) learns to imitate the labelers' demonstrations,
each written in the one prompt template (data.py):

    x = "### Instruction:\\n{prompt}\\n\\n### Response:\\n"      y = response + <|endoftext|>
    L_SFT(theta) = -1/|y| sum_t log pi_theta(y_t | x, y_<t)      response tokens only

(in a batch, the mean over all its response tokens: a longer response weighs more)

The prompt is context, never a target: the model learns to answer, not to write prompts, and
the end-of-text is a target, so it learns to stop. Evaluation puts two numbers side by side:
the validation loss and the mean gold score (world.score) of the model's own answers to
held-out prompts. The paper saw the first overfit after one epoch while more epochs still
improved the RM score and human preference: lower loss is not the same as better answers.

    python sft.py --out runs/cpu   # base.pt, sft.jsonl -> sft.pt, sft_log.jsonl, sft_samples.jsonl
    python sft.py --help           # every Config field

Glossary: x the templated prompt, y the demonstration (`response`), pi_theta the policy
(`model`), |y| its token count incl. end-of-text (`stats["tokens"]`), the pretraining mix
(`ptx_fraction`, C.3). Logs: `out/sft_log.jsonl`, one JSON object per evaluation, with the
keys of the history (`step`, `epoch`, `loss/train`, `loss/val`, `gold/score`, `gold/ended`,
`lr`); `loss/train` is measured like `loss/val`, on a fixed slice of the training split.

Deviations from the paper:
1. Scale: a ~1M-parameter GPT and ~3k demonstrations (paper: 1.3B-175B, ~13k), so the
   learning rate and batch size are ours (paper, 1.3B: LR 9.65e-6, batch 32).
2. 4 epochs (paper 16), for a CPU: more epochs lower the validation loss but not the
   held-out gold score, and leave PPO less to gain (docs/EXPERIMENTS.md).
3. Dropout 0 (paper: 0.2, residual): our 1M-parameter model underfits rather than overfits,
   and dropout raised its validation loss. Our GPT has one rate for embeddings, attention
   and residual branches. sft.pt stores the model with dropout 0: dropout is a training
   choice (in train_config), later stages start without it.
4. Pretraining mix: half the loss (paper C.3: 10% of the data). Every step adds
   round(batch_size * f) windows of corpus.txt and minimises (1 - f) L_SFT + f L_LM, a
   fraction of the loss rather than of the examples. A small model fine-tuned on
   demonstrations alone forgets its language; at f = 0.5 SFT pays no alignment tax and
   answers better than at 10% (docs/EXPERIMENTS.md).
5. The gold score is a program, not labelers, and the evaluation answers are greedy
   (temperature 0 by default) so that a 100-prompt average is not sampling noise.
"""

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import data
import gpt
import gpt2
import parallel
import stage
import tokenizer as tok
import world


@dataclass
class Config:
    """Supervised fine-tuning run; reads and writes the run directory `out`."""

    out: str = "runs/cpu"  # run dir: base.pt, sft.jsonl, eval_prompts.jsonl -> sft.pt, logs
    init: str = "base"  # "base" = out/base.pt; else a GPT-2 dir/hub name (gpt2.py)
    epochs: int = 4  # passes over the demonstrations (paper: 16, C.1; 2 for PPO's init, C.3)
    lr: float = 1e-3  # peak learning rate, cosine decay to lr/10 (paper, 1.3B: 9.65e-6)
    batch_size: int = 32  # demonstrations per step (paper, 1.3B and 6B: 32)
    dropout: float = 0.0  # residual (and attention, embedding) dropout (paper: 0.2)
    weight_decay: float = 0.1  # AdamW, on matmul weights and embeddings
    warmup: int = 0  # linear warmup steps (paper: none)
    grad_clip: float = 1.0  # global gradient-norm clip (0 = off)
    ptx_fraction: float = 0.5  # f: share of the loss on pretraining text (paper C.3: 10%)
    val_fraction: float = 0.05  # demonstrations held out for the validation loss
    eval_interval: int = 50  # steps between evaluations and checkpoints
    n_eval_prompts: int = 100  # held-out prompts answered for the gold score (first n)
    max_new_tokens: int = 64  # answer length limit for evaluation samples
    temperature: float = 0.0  # evaluation sampling temperature; 0 = greedy
    n_samples: int = 10  # answers written to out/sft_samples.jsonl at the end
    seed: int = 1337  # validation split, batch order, dropout
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto (bf16 autocast on cuda if supported) | fp32 | bf16
    resume: bool = False  # continue from out/sft.pt


# ----------------------------------------------------------------------------- model and data


def load_init(cfg: Config):
    """The model SFT starts from and its tokenizer: the run's base.pt, or GPT-2's weights."""
    if cfg.init != "base":
        return gpt2.from_pretrained(cfg.init, cfg.dropout), tok.get_encoding("gpt2")
    out = Path(cfg.out)
    model, ck = stage.load_model(out / "base.pt", f"python pretrain.py --data {out / 'corpus.txt'} "
                                 f"--out {out}", dropout=cfg.dropout)
    return model, stage.load_encoding(out, ck["tokenizer"])  # the tokenizer base.pt names


def encode_demos(records, enc, block_size, where="sft.jsonl"):
    """Demonstrations -> ([(ids, n_prompt), ...], number of prompts cut from the left).
    A response that cannot fit is an error naming its line (records keep file order)."""
    pairs, n_cut = [], 0
    for i, r in enumerate(records):
        try:
            ids, n_prompt, cut = gpt.encode_pair(enc, data.format_prompt(r["prompt"]),
                                                 r["response"], block_size)
        except ValueError as e:
            raise data.DataError(f"{where}:{i + 1}: {e}") from None
        pairs.append((ids, n_prompt))
        n_cut += cut
    return pairs, n_cut


def split_demos(path, enc, block_size, val_fraction, seed):
    """sft.jsonl -> (train pairs, validation pairs, prompts cut); a seeded random split."""
    pairs, n_cut = encode_demos(data.read_sft(path), enc, block_size, path)  # bad line: file:line
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(pairs) * val_fraction))
    if len(pairs) - n_val < 1:
        raise ValueError(f"{path}: {len(pairs)} demonstrations leave none to train on")
    return [pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]], n_cut


def batches(pairs, batch_size, device):
    """Fixed batches (tokens, attention_mask, response_mask) for the loss estimates."""
    return [gpt.batch_pairs(pairs[i:i + batch_size], 0, device)
            for i in range(0, len(pairs), batch_size)]


# ----------------------------------------------------------------------------- the loss


def sft_targets(tokens, response_mask):
    """L_SFT's targets for GPT.forward: tokens (B, T) -> (B, T) where position t holds token
    t+1 if that is a response token (end-of-text included; response_mask (B, T) from
    gpt.batch_pairs) and -100, ignored, on the prompt, the padding and the last column."""
    y = torch.full_like(tokens, -100)
    y[:, :-1] = tokens[:, 1:].masked_fill(response_mask[:, 1:] == 0, -100)
    return y


def sft_loss(model, tokens, attention_mask, response_mask):
    """L_SFT = -1/|y| sum_t log pi(y_t | x, y_<t): the mean cross-entropy of the batch's
    response tokens given all tokens before them. Returns (loss, {"loss/sft", "tokens"})."""
    _, loss = model(tokens, attention_mask, targets=sft_targets(tokens, response_mask))
    return loss, {"loss/sft": loss.item(), "tokens": int(response_mask[:, 1:].sum())}


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def mean_loss(model, fixed_batches, device, dtype):
    """Token-weighted L_SFT over fixed batches, in eval mode (no dropout)."""
    total, n = 0.0, 0
    for tokens, am, resp in fixed_batches:
        with stage.autocast(device, dtype):
            _, st = sft_loss(model, tokens, am, resp)
        total, n = total + st["loss/sft"] * st["tokens"], n + st["tokens"]
    return total / max(n, 1)


@torch.no_grad()
def answer(model, enc, prompts, max_new_tokens, temperature=0.0, seed=0):
    """The model's answers to prompt records: [{prompt, category, response, ended, score}].
    Prompts longer than block_size - max_new_tokens lose their start (as in training)."""
    if not prompts:
        return []
    ids, _ = gpt.encode_prompts(enc, [data.format_prompt(p["prompt"]) for p in prompts],
                                model.config.block_size, max_new_tokens)
    tokens, _, resp = model.generate(ids, max_new_tokens, temperature, eot_id=enc.eot_token,
                                     generator=torch.Generator(model.lm_head.weight.device)
                                     .manual_seed(seed))
    rows = []
    for p, (text, ended) in zip(prompts, gpt.decode_responses(enc, tokens, resp), strict=True):
        rows.append({"prompt": p["prompt"], "category": p["category"], "response": text,
                     "ended": ended, "score": world.score(p["prompt"], text)[0]})
    return rows


# ----------------------------------------------------------------------------- training


@stage.locked  # one run at a time per run directory
def train(cfg: Config) -> dict:
    """Fine-tune on out/sft.jsonl; writes out/sft.pt and logs; returns the history."""
    ranks, device = parallel.init(stage.pick_device(cfg.device))  # torchrun: this rank's
    torch.manual_seed(cfg.seed + ranks.rank)  # dropout, a stream per rank
    out = Path(cfg.out)
    model, enc = load_init(cfg)
    model.to(device)
    block = model.config.block_size
    make_data = f"python -m world --out {out}"
    train_pairs, val, n_cut = split_demos(stage.need(out / "sft.jsonl", make_data), enc, block,
                                          cfg.val_fraction, cfg.seed)
    val_b = batches(val, cfg.batch_size, device)
    train_b = batches(train_pairs[:len(val)], cfg.batch_size, device)  # the same size as val
    prompts = data.read_prompts(stage.need(out / "eval_prompts.jsonl", make_data))
    prompts = prompts[:cfg.n_eval_prompts]
    ptx_ids = None
    if cfg.ptx_fraction > 0:  # C.3: pretraining text mixed into SFT
        text = stage.load_corpus(out / "corpus.txt")
        ptx_ids = torch.tensor(tok.encode_corpus(enc, text), dtype=torch.int32)
    n_ptx = max(1, round(cfg.batch_size * cfg.ptx_fraction))
    if ptx_ids is not None:
        parallel.need_divisible(n_ptx, "the corpus windows of a step (batch_size x "
                                "ptx_fraction)", ranks)
    if ranks.main:
        print(f"{len(train_pairs)} train / {len(val)} val demonstrations; {n_cut} prompts cut "
              f"from the left to fit block_size={block}; {len(prompts)} eval prompts; {device}"
              + (f", {ranks.size} ranks" if ranks.size > 1 else ""))

    opt = stage.make_optimizer(model, cfg.lr, cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)  # batch order: saved for exact resume
    per_epoch = math.ceil(len(train_pairs) / cfg.batch_size)
    total = cfg.epochs * per_epoch
    step, perm, ckpt = 0, None, out / "sft.pt"
    log = stage.Log(out / "sft_log.jsonl")  # reaches the file with each checkpoint
    if cfg.resume and ckpt.exists():
        ck = stage.load_checkpoint(ckpt, f"python sft.py --out {out}", enc=enc)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"]["batch"])
        parallel.set_rng_states(ck["rng"], ranks, cfg.seed)
        step, perm = ck["step"], ck["data"]["order"]
        log = stage.Log(log.path, ck)
        print(f"resumed {ckpt} at step {step}")

    def evaluate():
        model.eval()
        rows = answer(model, enc, prompts, cfg.max_new_tokens, cfg.temperature, cfg.seed)
        rec = {"step": step, "epoch": step / per_epoch,
               "loss/train": mean_loss(model, train_b, device, cfg.dtype),
               "loss/val": mean_loss(model, val_b, device, cfg.dtype),
               "gold/score": sum(r["score"] for r in rows) / max(1, len(rows)),
               "gold/ended": sum(r["ended"] for r in rows) / max(1, len(rows)),
               "lr": opt.param_groups[0]["lr"]}
        model.train()
        log.append({**rec, "sample": rows[0]["response"] if rows else ""})
        bar.write(f"step {step:5d}/{total} | epoch {rec['epoch']:.2f} | loss "
                  f"{rec['loss/train']:.3f} | val {rec['loss/val']:.3f} | gold "
                  f"{rec['gold/score']:+.3f} | ended {rec['gold/ended']:4.0%} | "
                  f"lr {rec['lr']:.1e} | {rows[0]['response'][:50] if rows else ''!r}")

    bar = ranks.progress(total, step, "sft")
    t0 = time.time()
    net = parallel.wrap(model, ranks, device)  # several ranks: gradients averaged over them
    if step == 0 and ranks.main:  # the base model's numbers: what SFT starts from
        evaluate()
    model.train()
    while step < total:
        epoch, b = divmod(step, per_epoch)
        if b == 0:  # a new epoch: a new order of the demonstrations
            perm = torch.randperm(len(train_pairs), generator=gen)
        lr = stage.lr_at(step, cfg.lr, cfg.warmup, total)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size].tolist()
        rows = ranks.share([train_pairs[i] for i in idx])  # this rank's share of the batch
        tokens, am, resp = gpt.batch_pairs(rows or [train_pairs[idx[0]]], 0, device)
        with stage.autocast(device, cfg.dtype):
            loss, _ = sft_loss(net, tokens, am, resp)
            n = int(resp[:, 1:].sum()) if rows else 0  # this rank's response tokens
            loss = ranks.rescale(loss, n)  # -> the mean over the whole batch's
            if ptx_ids is not None:  # C.3: (1 - f) L_SFT + f L_LM on corpus windows
                x, y = stage.get_batch(ptx_ids, block, n_ptx, gen)
                x, y = ranks.share(x), ranks.share(y)
                _, lm = net(x.to(device), targets=y.to(device))
                loss = (1 - cfg.ptx_fraction) * loss + cfg.ptx_fraction * lm
        stage.optimizer_step(model, opt, loss, cfg.grad_clip, step, ckpt)
        step += 1
        bar.update(1)
        if step % cfg.eval_interval == 0 or step == total:
            rng = parallel.rng_states(ranks)  # every rank's, gathered
            if not ranks.main:
                continue
            evaluate()
            mcfg = {**dataclasses.asdict(model.config), "dropout": 0.0}  # deviation 3
            stage.save_checkpoint({
                "config": mcfg, "model": model.state_dict(), "step": step,
                "tokenizer": tok.tokenizer_id(enc), "train_config": dataclasses.asdict(cfg),
                "optimizer": opt.state_dict(),
                "rng": {**rng, "batch": gen.get_state()},
                "data": {"epoch": epoch, "batch": b + 1, "order": perm}}, ckpt, log)
    bar.close()
    ranks.wait()
    if not ranks.main:
        return {}
    model.eval()
    samples = answer(model, enc, prompts[:cfg.n_samples], cfg.max_new_tokens, cfg.temperature,
                     cfg.seed)
    data.write_jsonl(out / "sft_samples.jsonl", samples)
    hist = log.history("step", "epoch", "loss/train", "loss/val", "gold/score", "gold/ended",
                       "lr")
    print(f"sft done in {time.time() - t0:.0f}s: val loss {hist['loss/val'][0]:.3f} -> "
          f"{hist['loss/val'][-1]:.3f}, gold score {hist['gold/score'][0]:+.3f} -> "
          f"{hist['gold/score'][-1]:+.3f}; wrote {ckpt}")
    return hist


def main(argv=None):
    train(stage.config_from_args(Config, argv))
    parallel.finish()


if __name__ == "__main__":
    stage.run_cli(main)
