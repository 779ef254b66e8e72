"""tools/gpu_check.py: check the GPU path in a few minutes, and measure it.

    python tools/gpu_check.py                     # on cuda: both parts below
    python tools/gpu_check.py --gpt2 DIR          # part 2 from GPT-2's weights (a Hugging Face
                                                  # directory; its tokenizer downloads once)
    python tools/gpu_check.py --device cpu --size tiny --skip_tiny   # the same code on a CPU

1. The whole tiny preset (`pipeline.py --preset tiny`) on the device: every stage and the
   evaluation run, with bf16 autocast where the GPU supports it (stage.autocast).
2. A GPT-2-sized model (12 layers, 12 heads, 768 wide, context 1,024; random weights unless
   --gpt2 is given, over the run's own BPE vocabulary, so a little smaller than GPT-2's 124M)
   through a little of every training stage on the tiny world's data: pretraining steps, an
   epoch of SFT, the labelers' rankings, an epoch of the RM, one PPO-ptx iteration and an
   evaluation. Each line: the stage's seconds and the peak memory the device held for it.

Writes OUT/gpu_check.json (the device, each stage's seconds and peak GiB) and prints the table.
The timings include each stage's start (loading checkpoints and data); they say that the path
works and roughly what it costs, not the throughput of a long run (bench.py measures that).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import collect  # noqa: E402
import evaluate  # noqa: E402  (after the path: the repository's modules)
import pipeline  # noqa: E402
import ppo  # noqa: E402
import pretrain  # noqa: E402
import reward  # noqa: E402
import sft  # noqa: E402
import stage  # noqa: E402
import world  # noqa: E402

SIZES = {"gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024},
         "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 128}}


def peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None  # a CPU's peak is the process's, not the stage's: not reported
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def stages(d: Path, size: str, device: str, gpt2_dir: str) -> list:
    """(name, callable) of every training stage at the size, a little of each."""
    dims = SIZES[size]
    o = str(d)
    base = (dict(init=gpt2_dir, tokenizer="gpt2", block_size=256) if gpt2_dir else
            dict(vocab_size=2048, **dims))
    short = dict(max_new_tokens=32, device=device)
    return [
        ("pretrain (8 steps of 8 x block)", lambda: pretrain.train(pretrain.Config(
            data=str(d / "corpus.txt"), out=o, batch_size=8, max_iters=8, eval_interval=8,
            eval_iters=2, lr=1e-4, warmup_iters=2, device=device, **base))),
        ("sft (1 epoch, 300 demonstrations)", lambda: sft.train(sft.Config(
            out=o, epochs=1, lr=1e-5, batch_size=16, eval_interval=10**6, n_eval_prompts=8,
            n_samples=2, **short))),
        ("collect (24 prompts x 4 samples)", lambda: collect.collect(reward.Config(
            out=o, preset="tiny", n_prompts=24, k_min=4, k_max=4, recollect=True, **short))),
        ("rm (1 epoch)", lambda: reward.train(reward.Config(
            out=o, preset="tiny", lr=1e-5, batch_size=4, eval_interval=10**6, device=device))),
        ("ppo_ptx (1 iteration of 32 episodes)", lambda: ppo.train(ppo.Config(
            out=o, iterations=1, batch_size=32, minibatch_size=8, ptx_coef=1.0, lr=1e-6,
            ptx_batch_size=4, **short))),
        ("evaluate (16 prompts)", lambda: evaluate.evaluate(evaluate.Config(
            out=o, preset="tiny", n_prompts=16, best_of=2, n_tax_windows=8, batch_size=16,
            **short))),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="runs/gpu-check")
    ap.add_argument("--gpt2", default="", help="GPT-2's weights for part 2 (else random)")
    ap.add_argument("--size", default="gpt2", choices=sorted(SIZES), help="part 2's model")
    ap.add_argument("--skip_tiny", action="store_true", help="skip part 1 (the tiny preset)")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: this check is for a GPU (--device cpu runs the "
                         "same code on a CPU)")
    out, rows = Path(a.out), []
    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    bf16 = (torch.cuda.is_bf16_supported() if a.device.startswith("cuda")
            else stage.cpu_has_bf16())
    print(f"gpu_check on {name}; bf16 autocast: {'on' if bf16 else 'off (fp32)'}")
    if not a.skip_tiny:
        peak_reset(a.device)
        t0 = time.time()
        res = pipeline.run("tiny", str(out / "tiny"), device=a.device)
        rows.append({"stage": "tiny preset, whole pipeline", "seconds": time.time() - t0,
                     "peak_gib": peak_gib(a.device),
                     "ppo_ptx_win_rate": res["models"]["ppo_ptx"]["win_rate_vs_sft"]})
    d = out / a.size
    world.write_datasets(world.PRESETS["tiny"], d)
    for label, fn in stages(d, a.size, a.device, a.gpt2):
        peak_reset(a.device)
        t0 = time.time()
        fn()
        rows.append({"stage": f"{a.size}: {label}", "seconds": time.time() - t0,
                     "peak_gib": peak_gib(a.device)})
    n = sum(p.numel() for p in stage.load_model(d / "sft.pt")[0].parameters())
    report = {"device": name, "torch": torch.__version__, "size": a.size, "params": n,
              "weights": a.gpt2 or "random", "stages": rows}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(f"\n{a.size}-sized model: {n / 1e6:.1f}M parameters ({report['weights']} weights)")
    print(f"{'stage':<52} {'seconds':>8} {'peak GiB':>9}")
    for r in rows:
        gib = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        print(f"{r['stage']:<52} {r['seconds']:8.1f} {gib:>9}")
    print(f"-> {out / 'gpu_check.json'}")
    return report


if __name__ == "__main__":
    main()
