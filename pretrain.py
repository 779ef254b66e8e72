"""pretrain.py: step 0, the pretrained language model that every step of InstructGPT starts from.

Paper: Ouyang et al. 2022, section 3.5 ("we start with the GPT-3 pretrained language models")
and Figure 2. The paper takes GPT-3 as given;
we make ours, as nanoGPT's train.py does: the GPT of gpt.py learns next-token prediction on
"the internet" (out/corpus.txt, the simulated world's text, world/corpus.py) with a BPE trained on
the same text (tokenizer.py):

    loss = -1/(B T) sum_{b,t} log p(x_{b,t+1} | x_{b,<=t})     on random windows of the corpus

AdamW, a linear warmup, then cosine decay to a tenth of the peak learning rate (stage.lr_at).
The `gpt2` preset starts from GPT-2's weights instead (`--init`, gpt2.from_pretrained) and goes
on pretraining them here on the world's corpus, with GPT-2's tokenizer: GPT-3 had read the
internet that the API's prompts were about, and GPT-2 never read this world.

    python pretrain.py --out runs/cpu      # out/corpus.txt -> tokenizer.tiktoken, base.pt
    python pretrain.py --help              # every Config field

Reads --data (default out/corpus.txt, made by `python -m world --out DIR`); writes
out/tokenizer.tiktoken (unless present), out/base.pt and out/pretrain.jsonl.

Deviations from the paper:
1. Scale: the cpu preset's model sees about 5M tokens (1,200 steps of 32 x 128) of a 4M-character
   corpus, GPT-3 300B tokens of the internet; our corpus is repeated, GPT-3's mostly was not.
2. The last val_fraction of the token stream is held out for the validation loss; the
   alignment tax (evaluate.py) uses a separate held-out text, out/corpus_val.txt.
"""

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import gpt
import gpt2
import parallel
import stage
import tokenizer as tok


@dataclass
class Config:
    """Pretraining run. The model fields become a GPTConfig stored in every checkpoint."""

    data: str = ""  # UTF-8 text, documents separated by "<|endoftext|>" (empty: out/corpus.txt)
    out: str = "runs/cpu"  # run directory: tokenizer.tiktoken, base.pt, pretrain.jsonl
    tokenizer: str = "bpe"  # "bpe": train one on --data (or reuse out/); "gpt2": tiktoken's
    init: str = ""  # GPT-2's weights (HF dir or hub name) to pretrain further; "" = random
    vocab_size: int = 2048  # BPE vocabulary incl. end-of-text (GPT-2: 50257)
    block_size: int = 128  # context length in tokens (GPT-2: 1024)
    n_layer: int = 4  # transformer blocks (GPT-2 small: 12)
    n_head: int = 4  # attention heads (GPT-2 small: 12)
    n_embd: int = 128  # residual width (GPT-2 small: 768)
    dropout: float = 0.0  # residual/attention dropout (paper's SFT uses 0.2 residual)
    gelu: str = "tanh"  # GPT-2's | "exact": faster on a CPU, another model (gpt.py)
    batch_size: int = 32  # sequences per step
    max_iters: int = 1200  # optimizer steps (lr and length measured: docs/EXPERIMENTS.md)
    lr: float = 1e-3  # peak learning rate; cosine decay to lr/10
    warmup_iters: int = 100  # linear warmup steps
    weight_decay: float = 0.1  # AdamW, on matmul weights and embeddings only
    grad_clip: float = 1.0  # global gradient-norm clip (0 = off)
    val_fraction: float = 0.05  # tail of the token stream held out for validation
    eval_interval: int = 200  # steps between eval + checkpoint
    eval_iters: int = 20  # batches per validation estimate
    seed: int = 1337  # model init, batch order, dropout
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto (bf16 autocast on cuda if supported, else fp32) | fp32 | bf16
    matmul_precision: str = "highest"  # "medium" allows faster fp32 matmuls (bench.py measures)
    compile: bool = False  # torch.compile the model (speed only)
    resume: bool = False  # continue from out/base.pt


def run_tokenizer(cfg: Config, text: str, retrain: bool = False):
    """The run's tokenizer and, when it was trained just now, its ranks, not yet saved: GPT-2's,
    ours from out/tokenizer.tiktoken, or a BPE trained on text (if absent, or retrain). A new
    tokenizer reaches out/ only with the first base.pt, so a run that fails before it never
    leaves the old base.pt beside a tokenizer it was not trained with."""
    if cfg.tokenizer == "gpt2":
        return tok.get_encoding("gpt2"), None
    path = Path(cfg.out) / "tokenizer.tiktoken"
    if path.exists() and not retrain:
        return tok.load_tokenizer(path), None
    ranks = tok.train_bpe(text, cfg.vocab_size)
    return tok.build_encoding(ranks), ranks


@stage.locked  # one run at a time per run directory
def train(cfg: Config, retrain_tokenizer: bool = False) -> dict:
    """Pretrain a GPT on cfg.data; returns the history {key: [values]}. retrain_tokenizer: a new
    BPE on cfg.data even if out/ holds one (the pipeline's, whose corpus may be new)."""
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    ranks, device = parallel.init(stage.pick_device(cfg.device))  # torchrun: this rank's
    torch.manual_seed(cfg.seed + ranks.rank)  # init (rank 0's is broadcast) and dropout
    parallel.need_divisible(cfg.batch_size, "--batch_size", ranks)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    text = stage.load_corpus(cfg.data)
    enc, new_bpe = run_tokenizer(cfg, text, retrain=retrain_tokenizer and not cfg.resume)
    ids = torch.tensor(tok.encode_corpus(enc, text), dtype=torch.int32)
    n_val = max(cfg.block_size + 2, int(len(ids) * cfg.val_fraction))
    if len(ids) - n_val < cfg.block_size + 2:
        raise ValueError(f"{cfg.data}: {len(ids)} tokens is too little text for "
                         f"block_size={cfg.block_size}")
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    step, ckpt = 0, out / "base.pt"
    ck = stage.load_checkpoint(ckpt, enc=enc) if cfg.resume and ckpt.exists() else None
    if cfg.init and ck is None:  # GPT-2's weights, then more of their own objective here
        if cfg.tokenizer != "gpt2":
            raise ValueError("--init loads GPT-2's weights, which read GPT-2's tokens: add "
                             "--tokenizer gpt2")
        model = gpt2.from_pretrained(cfg.init, cfg.dropout)
        if cfg.block_size > model.config.block_size:
            raise ValueError(f"--block_size {cfg.block_size} is longer than GPT-2's context "
                             f"({model.config.block_size})")
        mcfg = model.config  # its windows are block_size long; its context stays GPT-2's
    else:  # a resumed run has the size it was started with (GPT-2's, if it was)
        mcfg = (gpt.GPTConfig.from_dict(ck["config"]) if ck is not None else
                gpt.GPTConfig(enc.n_vocab, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd,
                              cfg.dropout, gelu=cfg.gelu))
        model = gpt.GPT(mcfg)
    model.to(device)
    opt = stage.make_optimizer(model, cfg.lr, cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)  # batch order: saved for exact resume
    log = stage.Log(out / "pretrain.jsonl")  # reaches the file with each checkpoint
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"]["batch"])
        parallel.set_rng_states(ck["rng"], ranks, cfg.seed)
        step, log = ck["step"], stage.Log(log.path, ck)
        print(f"resumed {ckpt} at step {step}")
    net = parallel.wrap(model, ranks, device)  # several ranks: gradients averaged over them
    fwd = torch.compile(net) if cfg.compile else net  # speed only
    judge = fwd if ranks.size == 1 else model  # rank 0 evaluates alone, outside the wrapper
    if ranks.main:
        print(f"{model.num_params() / 1e6:.2f}M parameters, {len(train_ids):,} train / "
              f"{len(val_ids):,} val tokens, tokenizer {tok.tokenizer_id(enc)}, {device}"
              + (f", {ranks.size} ranks" if ranks.size > 1 else ""))

    @torch.no_grad()
    def evaluate():
        model.eval()
        g = torch.Generator().manual_seed(0)  # the same val batches every time
        losses = []
        for _ in range(cfg.eval_iters):
            x, y = stage.get_batch(val_ids, cfg.block_size, cfg.batch_size, g)
            with stage.autocast(device, cfg.dtype):
                losses.append(judge(x.to(device), targets=y.to(device))[1].item())
        model.train()
        return sum(losses) / len(losses)

    def sample_text():  # a glimpse of what the model has learned, from the val text's start
        n = min(32, cfg.block_size - 8)
        toks, _, _ = model.eval().generate([val_ids[:8].tolist()], n, eot_id=enc.eot_token,
                                           generator=torch.Generator(device).manual_seed(0))
        model.train()
        return tok.decode(enc, toks[0].tolist())

    bar = ranks.progress(cfg.max_iters, step, "pretrain")
    t0, tokens_seen = time.time(), 0
    model.train()
    while step < cfg.max_iters:
        for g in opt.param_groups:
            g["lr"] = stage.lr_at(step, cfg.lr, cfg.warmup_iters, cfg.max_iters)
        x, y = stage.get_batch(train_ids, cfg.block_size, cfg.batch_size, gen)  # the global
        x, y = ranks.share(x), ranks.share(y)  # batch; equal shares: DDP's mean is its mean
        with stage.autocast(device, cfg.dtype):
            _, loss = fwd(x.to(device), targets=y.to(device))  # -1/(B T) sum log p(x_t+1 | x_<=t)
        stage.optimizer_step(model, opt, loss, cfg.grad_clip, step, ckpt)
        step += 1
        tokens_seen += x.numel() * ranks.size
        bar.update(1)
        if step % cfg.eval_interval == 0 or step == cfg.max_iters:
            rng = parallel.rng_states(ranks)  # every rank's, gathered
            train_loss = ranks.sum(loss.item()) / ranks.size
            if not ranks.main:
                continue
            val = evaluate()
            rec = {"step": step, "loss/train": train_loss, "loss/val": val,
                   "lr": opt.param_groups[0]["lr"],
                   "tok_per_s": tokens_seen / (time.time() - t0), "sample": sample_text()}
            log.append(rec)
            bar.write(f"step {step:5d}/{cfg.max_iters} | loss {rec['loss/train']:.3f} | "
                      f"val {val:.3f} | lr {rec['lr']:.1e} | {rec['tok_per_s']:,.0f} tok/s | "
                      f"{rec['sample'][:60]!r}")
            if new_bpe is not None:  # the new tokenizer, with the first checkpoint
                tok.save_tokenizer(new_bpe, out / "tokenizer.tiktoken")
                new_bpe = None
            stage.save_checkpoint({
                "config": dataclasses.asdict(mcfg), "model": model.state_dict(), "step": step,
                "tokenizer": tok.tokenizer_id(enc), "train_config": dataclasses.asdict(cfg),
                "optimizer": opt.state_dict(),
                "rng": {"batch": gen.get_state(), **rng}}, ckpt, log)
    bar.close()
    ranks.wait()
    return log.history("step", "loss/train", "loss/val")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    retrain = "--retrain_tokenizer" in argv  # the pipeline's, for a fresh run: a new BPE
    cfg = stage.config_from_args(Config, [a for a in argv if a != "--retrain_tokenizer"])
    if not cfg.data:
        cfg.data = str(Path(cfg.out) / "corpus.txt")
    train(cfg, retrain_tokenizer=retrain)
    parallel.finish()


if __name__ == "__main__":
    stage.run_cli(main)
