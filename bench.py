"""bench.py: speed of our GPT against a peer measured in the same run.

    python bench.py                       # prints a table, writes bench.json
    python bench.py --matmul_precision medium

Every figure is a ratio against something timed on the same machine, interleaved, in the same
process: Hugging Face `GPT2LMHeadModel` on the same config and weights, our own uncached
generator, and the matmul peak measured here at the precision the training uses (for MFU).
Both models run under the pipeline's precision (`--dtype auto`: bf16 autocast on a CPU with
native bf16, stage.autocast, except for sampling, which stays fp32 there; fp32 elsewhere).
Peak resident memory of each workload is measured in a fresh subprocess, since a process's
peak covers all it ever did.

1. Training (config A: 4 layers, 4 heads, 128 dim, block 128, vocab 2048, batch 32, dropout 0):
   tokens/s of forward + backward + AdamW step, ours vs Hugging Face; MFU = model FLOP/s over
   the measured matmul peak (fp32, or bf16 where training runs in bf16).
2. Roll-outs (PPO's hot loop): 64 prompts of 16 tokens, 48 new tokens at temperature 1, no early
   stop: new tokens/s of our KV-cache generator vs our uncached loop vs Hugging Face `generate`.
3. One PPO iteration (ppo.py, config A models for policy, reference, reward and value; 64
   episodes as in 2, minibatches of 16): seconds in roll-out / scoring (policy, reference, value
   and RM forwards, one each) / update, and the roll-out's share.
"""

import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import torch

import environment as env
import gpt2
import ppo
import reward
import stage


@dataclass
class Config:
    vocab_size: int = 2048  # config A
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    batch_size: int = 32
    rounds: int = 5  # interleaved rounds; the median round is reported
    train_steps: int = 6  # training steps per round and model
    n_prompts: int = 64  # roll-out batch
    prompt_len: int = 16
    new_tokens: int = 48
    matmul_precision: str = "highest"  # "medium": faster oneDNN fp32 matmuls (docs/USAGE.md: speed)
    dtype: str = "auto"  # as the pipeline: auto (bf16 on a CPU with native bf16) | fp32 | bf16
    out: str = "bench.json"
    only: str = ""  # internal: the one workload a memory-measuring subprocess runs
    weights: str = ""  # internal: the directory that subprocess loads the weights from


def matmul_peak_gflops(n=1024, reps=20, dtype=torch.float32) -> float:
    """Best matmul throughput (GFLOP/s) in dtype, at the current fp32 precision setting."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_token(c: Config) -> float:
    """Training FLOPs per token: 3x the forward's matmuls (PaLM appendix B style count)."""
    C, L, T = c.n_embd, c.n_layer, c.block_size
    forward = L * (24 * C * C + 4 * T * C) + 2 * C * c.vocab_size  # qkv, proj, mlp; qk, av; head
    return 3 * forward


def models(c: Config, tmp):
    """A random Hugging Face GPT-2 and ours loaded from it: the same weights."""
    import transformers
    torch.manual_seed(0)
    hcfg = transformers.GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size,
                                   n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
                                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(hcfg)
    hf.save_pretrained(tmp)
    return gpt2.from_pretrained(tmp), hf


def train_steps(model, opt, x, steps, hf: bool, dtype="fp32") -> float:
    """Seconds for `steps` optimizer steps; each model trained its idiomatic way."""
    t = time.perf_counter()
    for _ in range(steps):
        with stage.autocast("cpu", dtype):
            loss = (model(input_ids=x, labels=x).loss if hf else
                    model(x[:, :-1], targets=x[:, 1:])[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def rollout(model, prompts, c: Config, kind: str) -> float:
    """Seconds to sample c.new_tokens for every prompt (no early stop)."""
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    with torch.no_grad(), stage.autocast("cpu", c.dtype, sampling=True):  # as the pipeline
        if kind == "hf":
            model.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                           temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=c.new_tokens,
                           min_new_tokens=c.new_tokens, use_cache=True, pad_token_id=0)
        else:
            model.generate(prompts, c.new_tokens, temperature=1.0, eot_id=None,
                           use_cache=kind == "cached", generator=g)
    return time.perf_counter() - t


def rss_mib(field="VmRSS") -> float:
    """Resident (VmRSS) or peak resident (VmHWM) memory of this process, in MiB. Linux only;
    getrusage's peak is not used because it carries over from the parent across exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def ppo_iteration(c: Config, policy, rounds: int) -> dict:
    """Median seconds of each phase of a PPO iteration, ppo.py's own functions in its order."""
    policy = copy.deepcopy(policy).eval()
    ref = copy.deepcopy(policy).requires_grad_(False)
    rm = reward.RewardModel(copy.deepcopy(policy)).eval().requires_grad_(False)
    value = env.make_value_model("rm", rm, policy)
    pc = ppo.Config(batch_size=c.n_prompts, minibatch_size=16, max_new_tokens=c.new_tokens,
                    dtype=c.dtype)
    opts = [stage.make_optimizer(m, pc.lr, 0.0) for m in (policy, value)]
    eot = c.vocab_size - 1  # no early stop (a random model seldom samples it)
    reward_fn = env.rm_reward(rm, eot, pc.no_eot_penalty)
    prompts = torch.randint(0, c.vocab_size - 1, (c.n_prompts, c.prompt_len)).tolist()
    g, times = torch.Generator().manual_seed(0), {"rollout": [], "score": [], "update": []}
    for r in range(rounds + 1):  # the first round warms up
        t0 = time.perf_counter()
        batch = ppo.rollout(policy, prompts, pc, eot, g)
        t1 = time.perf_counter()
        ppo.score(batch, policy, ref, value, reward_fn, pc)
        t2 = time.perf_counter()
        ppo.advantages(batch, pc.kl_coef, pc)
        ppo.update(policy, value, opts, batch, pc, g)
        t3 = time.perf_counter()
        if r:
            for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                times[k].append(dt)
    res = {k: statistics.median(v) for k, v in times.items()}
    res["rollout_share"] = res["rollout"] / sum(res.values())
    return res


def run_only(c: Config) -> None:
    """One workload alone in a fresh process (ours never imports transformers): prints the
    resident memory after loading and the peak, in MiB."""
    torch.set_float32_matmul_precision(c.matmul_precision)
    name = c.only
    if name.startswith("hf"):
        import transformers
        model = transformers.GPT2LMHeadModel.from_pretrained(c.weights)
    else:
        model = gpt2.from_pretrained(c.weights)
    loaded = rss_mib()
    if name.endswith("train"):
        x = torch.randint(0, c.vocab_size, (c.batch_size, c.block_size + 1))
        x = x[:, :-1] if name.startswith("hf") else x
        train_steps(model.train(), stage.make_optimizer(model, 1e-4, 0.1), x, 3,
                    name.startswith("hf"), c.dtype)
    else:
        prompts = torch.randint(0, c.vocab_size, (c.n_prompts, c.prompt_len))
        rollout(model.eval(), prompts, c, name.split("_")[-1])
    print(loaded, rss_mib("VmHWM"))


def peak_rss(c: Config, name: str, weights: str) -> dict:
    args = [sys.executable, __file__, "--only", name, "--weights", weights,
            "--matmul_precision", c.matmul_precision, "--dtype", c.dtype]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    loaded, peak = map(float, out.strip().splitlines()[-1].split())
    return {"loaded": loaded, "peak": peak}


def bench(c: Config) -> dict:
    torch.set_float32_matmul_precision(c.matmul_precision)
    torch.manual_seed(0)
    res = {"config": asdict(c), "torch": torch.__version__, "threads": torch.get_num_threads()}
    with stage.autocast("cpu", c.dtype):
        res["precision"] = "bf16" if torch.is_autocast_enabled("cpu") else "fp32"
    res["matmul_peak_gflops"] = {"fp32": matmul_peak_gflops(),
                                 "bf16": matmul_peak_gflops(dtype=torch.bfloat16)}
    peak = res["matmul_peak_gflops"][res["precision"]]
    tmp = tempfile.TemporaryDirectory()
    ours, hf = models(c, tmp.name)
    # 1. training, interleaved: ours, HF, ours, HF, ...
    x = torch.randint(0, c.vocab_size, (c.batch_size, c.block_size + 1))
    xs = {"ours": x, "hf": x[:, :-1]}  # both forward block_size tokens a row
    runs = {"ours": (ours.train(), stage.make_optimizer(ours, 1e-4, 0.1)),
            "hf": (hf.train(), stage.make_optimizer(hf, 1e-4, 0.1))}
    tps = {k: [] for k in runs}
    for k, (m, o) in runs.items():  # warm-up
        train_steps(m, o, xs[k], 2, k == "hf", c.dtype)
    for _ in range(c.rounds):
        for k, (m, o) in runs.items():
            dt = train_steps(m, o, xs[k], c.train_steps, k == "hf", c.dtype)
            tps[k].append(c.train_steps * c.batch_size * c.block_size / dt)
    train = {k: statistics.median(v) for k, v in tps.items()}
    res["train_tok_s"] = train
    res["train_ratio_vs_hf"] = train["ours"] / train["hf"]
    res["train_mfu"] = {k: v * flops_per_token(c) / (peak * 1e9) for k, v in train.items()}
    # 2. roll-outs, interleaved
    prompts = torch.randint(0, c.vocab_size, (c.n_prompts, c.prompt_len))
    gens = {"cached": ours.eval(), "uncached": ours, "hf": hf.eval()}
    for k, m in gens.items():
        rollout(m, prompts, c, k)
    times = {k: [] for k in gens}
    for _ in range(c.rounds):
        for k, m in gens.items():
            times[k].append(rollout(m, prompts, c, k))
    new = c.n_prompts * c.new_tokens
    res["rollout_tok_s"] = {k: new / statistics.median(v) for k, v in times.items()}
    r = res["rollout_tok_s"]
    res["rollout_ratio_vs_hf"] = r["cached"] / r["hf"]
    res["rollout_ratio_vs_uncached"] = r["cached"] / r["uncached"]
    res["ppo_iteration_s"] = ppo_iteration(c, ours, c.rounds)
    res["rss_mib"] = {n: peak_rss(c, n, tmp.name) for n in
                      ("ours_train", "hf_train", "ours_cached", "ours_uncached", "hf_hf")}
    tmp.cleanup()
    return res


def table(r: dict) -> str:
    t, g = r["train_tok_s"], r["rollout_tok_s"]
    m = {k: v["peak"] for k, v in r["rss_mib"].items()}
    pk = r["matmul_peak_gflops"]
    rows = [
        f"precision {r['precision']}; matmul peak: fp32 ({r['config']['matmul_precision']}) "
        f"{pk['fp32']:.0f} GFLOP/s, bf16 {pk['bf16']:.0f} GFLOP/s; {r['threads']} threads, "
        f"torch {r['torch']}",
        "| workload | ours | Hugging Face | ratio | peak RSS MiB, ours / HF |",
        "|---|---|---|---|---|",
        f"| training, config A (tok/s) | {t['ours']:,.0f} | {t['hf']:,.0f} | "
        f"{r['train_ratio_vs_hf']:.2f}x | {m['ours_train']:.0f} / {m['hf_train']:.0f} |",
        f"| training MFU ({r['precision']}) | {r['train_mfu']['ours']:.0%} | "
        f"{r['train_mfu']['hf']:.0%} | | |",
        f"| roll-out, KV cache (new tok/s) | {g['cached']:,.0f} | {g['hf']:,.0f} | "
        f"{r['rollout_ratio_vs_hf']:.2f}x | {m['ours_cached']:.0f} / {m['hf_hf']:.0f} |",
        f"| roll-out, our uncached loop (new tok/s) | {g['uncached']:,.0f} | | "
        f"cache {r['rollout_ratio_vs_uncached']:.1f}x | {m['ours_uncached']:.0f} |",
    ]
    p = r["ppo_iteration_s"]
    rows.append(f"\nPPO iteration (64 episodes): roll-out {p['rollout']:.2f} s, scoring "
                f"{p['score']:.2f} s, update {p['update']:.2f} s; roll-out share "
                f"{p['rollout_share']:.0%}")
    return "\n".join(rows)


def main(argv=None):
    c = stage.config_from_args(Config, argv)
    if c.only:
        return run_only(c)
    r = bench(c)
    with open(c.out, "w") as f:
        json.dump(r, f, indent=2)
    print(table(r))


if __name__ == "__main__":
    main()
