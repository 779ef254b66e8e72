"""pipeline.py: the whole InstructGPT recipe in one command, for one preset.

Paper: Ouyang et al. 2022, Figure 2: (0) a pretrained language model, (1) supervised
fine-tuning on demonstrations, (2) a reward model trained on rankings, (3) PPO against it,
and the evaluations of section 4. One run directory holds every artifact:

    data       world/        corpus.txt, sft.jsonl, rm_prompts.jsonl, prompts.jsonl, ...
    pretrain   pretrain.py   tokenizer.tiktoken, base.pt   (gpt2 preset: GPT-2's weights)
    sft        sft.py        sft.pt                        step 1
    collect    reward.py     comparisons.jsonl             the labelers rank SFT samples
    rm         reward.py     rm.pt                         step 2, Eq. 1
    ppo        ppo.py        ppo.pt                        step 3, Eq. 2 with gamma = 0
    ppo_ptx    ppo.py        ppo_ptx.pt                    step 3, Eq. 2: InstructGPT
    sweep_*    ppo.py        sweep_beta_<b>.pt, sweep_ptx_<g>.pt   over-optimisation, tax
    evaluate   evaluate.py   results.md, results.json, plots/*.png

    python pipeline.py                     # preset cpu -> runs/cpu
    python pipeline.py --preset tiny       # the whole recipe in well under a minute
    python pipeline.py --preset gpt2 --gpt2 path/to/gpt2   # one GPU, GPT-2 124M weights
    python pipeline.py --list              # each stage's settings for the preset

Each stage's Config defaults are the cpu preset's settings, so a stage run alone (`python
sft.py --out runs/cpu`) trains what this file trains; PRESETS lists only what `tiny` and
`gpt2` change. Beside PPO and PPO-ptx the pipeline runs two sweeps (SWEEPS): one long run at a
small beta (over-optimisation) and one PPO-ptx run at gamma 4 (the tax trade-off). The
measurements behind the cpu preset's choices are in docs/EXPERIMENTS.md.

A stage is skipped when its outputs exist and were made with the same settings from the
same inputs (out/pipeline.json records both); deleting an output re-runs that stage and
everything downstream of it (datasets are known by their content: made again identical, they
re-run nothing). A stage that was interrupted resumes from its checkpoint (the
stages' own --resume). Data files found in the run directory without a record (your own
sft.jsonl, comparisons.jsonl, ...) are used as they are, never overwritten.
"""

import argparse
import dataclasses
import hashlib
import json
import time
import uuid
from pathlib import Path

import evaluate
import gpt
import ppo
import pretrain
import reward
import sft
import stage
import world

# What each preset changes from the stages' Config defaults, which are the cpu preset's (each
# script's --help lists them), so `python sft.py --out runs/cpu` trains what this file trains.
PRESETS = {
    "tiny": {
        "pretrain": {"vocab_size": 512, "block_size": 96, "n_layer": 2, "n_head": 2,
                     "n_embd": 64, "max_iters": 300, "lr": 3e-3, "warmup_iters": 20,
                     "eval_interval": 100, "eval_iters": 5, "batch_size": 16},
        "sft": {"epochs": 3, "lr": 3e-3, "batch_size": 16, "eval_interval": 20,
                "n_eval_prompts": 20, "max_new_tokens": 32, "ptx_fraction": 0.0},
        "collect": {"k_max": 4, "max_new_tokens": 32},
        "rm": {"lr": 1e-3, "eval_interval": 10},
        "ppo": {"iterations": 8, "batch_size": 32, "lr": 3e-4,
                "max_new_tokens": 32, "log_every": 4},
        "sweeps": {"beta": {"0.002": {"iterations": 8}}, "ptx": {}},
        "evaluate": {"n_prompts": 40, "max_new_tokens": 32, "n_tax_windows": 20},
    },
    "cpu": {},
    "gpt2": {  # sizes and learning rates for GPT-2 124M on one GPU (not yet tuned on one)
        "pretrain": {"tokenizer": "gpt2"},
        "sft": {"epochs": 2, "lr": 1e-5, "dropout": 0.1, "batch_size": 16, "eval_interval": 100,
                "ptx_fraction": 0.0},
        "collect": {"gen_batch": 64}, "rm": {"lr": 1e-5},
        "ppo": {"iterations": 100, "lr": 1e-6},
        "sweeps": {"beta": {}, "ptx": {}},
        "evaluate": {"batch_size": 32},
    },
}
PTX_COEF = 1.0  # gamma of PPO-ptx, the paper's InstructGPT (ppo.py, deviation 2)
# Two sweeps beside PPO and PPO-ptx: a long run at a small beta, where the gold score rises
# and then falls as PPO over-optimises the RM (Gao et al. 2022), and PPO-ptx at a larger
# gamma (the alignment tax against the win rate). Each: value -> what it changes of PPO's.
SWEEPS = {"beta": {"0.002": {"iterations": 80}}, "ptx": {"4": {}}}
SPEED_ONLY = ("resume", "out", "data", "device", "dtype", "compile", "matmul_precision",
              "gen_batch")
DATA_FILES = ("corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
              "prompts.jsonl", "eval_prompts.jsonl")


@dataclasses.dataclass
class Stage:
    name: str
    outputs: tuple  # files in the run directory that mark it done
    inputs: tuple  # upstream stages whose outputs it reads
    config: object  # the stage's Config (a dataclass), as the preset sets it
    fn: object  # fn(config) runs the stage
    checkpoint: str = ""  # the file a resume continues from ("" = restart when interrupted)
    extra: dict = dataclasses.field(default_factory=dict)  # more settings it depends on

    def settings(self) -> dict:
        """What the record compares: every field of its Config but resume, the paths (the
        run directory may move) and the fields that change only speed, and extra."""
        skip = SPEED_ONLY + (("batch_size",) if self.name == "evaluate" else ())
        d = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in skip}
        return json.loads(json.dumps({**d, **self.extra}))


def stages(preset: str, out: Path, gpt2_weights: str = "", device: str = "auto") -> list[Stage]:
    """The recipe for one preset: data -> pretrain -> sft -> collect -> rm -> ppo ... evaluate."""
    p, o = {"sweeps": SWEEPS, **PRESETS[preset]}, str(out)
    dev = {} if device == "auto" else {"device": device}
    labelers = {"labelers": dataclasses.asdict(world.PRESETS[preset])}  # who ranks and judges

    def cfg(cls, key, **extra):  # the stage's Config: its defaults, the preset's, extra
        return cls(**{**p.get(key, {}), **extra, "out": o,
                      **(dev if "device" in cls.__dataclass_fields__ else {})})

    importing = preset == "gpt2" or bool(gpt2_weights)

    def make_base(c):  # step 0: pretrain here, or import GPT-2's weights
        if importing and not gpt2_weights:
            raise SystemExit("the gpt2 preset starts from GPT-2's weights: --gpt2 DIR (a local "
                             "Hugging Face directory with model.safetensors) or --gpt2 gpt2")
        if not importing:
            if not c.resume:  # a new corpus may have come before: the BPE is trained on it
                (out / "tokenizer.tiktoken").unlink(missing_ok=True)
            return pretrain.train(c)
        model = gpt.GPT.from_pretrained(gpt2_weights)  # step 0 is OpenAI's: GPT-2's weights
        stage.save_checkpoint({"config": dataclasses.asdict(model.config), "kind": "base",
                               "model": model.state_dict(), "step": 0, "tokenizer": "gpt2",
                               "source": gpt2_weights}, out / "base.pt")
        return None

    seq = [Stage("data", DATA_FILES, (), world.PRESETS[preset],
                 lambda c: world.write_datasets(c, out)),
           Stage("pretrain", ("base.pt",), ("data",),
                 cfg(pretrain.Config, "pretrain", data=str(out / "corpus.txt")), make_base,
                 "base.pt", {"gpt2": importing}),  # which weights: not compared (--gpt2 once)
           Stage("sft", ("sft.pt",), ("pretrain",), cfg(sft.Config, "sft"), sft.train, "sft.pt"),
           Stage("collect", ("comparisons.jsonl",), ("sft",),
                 cfg(reward.Config, "collect", preset=preset, collect_only=True), reward.collect,
                 extra=labelers),
           Stage("rm", ("rm.pt",), ("collect",), cfg(reward.Config, "rm", preset=preset),
                 reward.train, "rm.pt", labelers),
           Stage("ppo", ("ppo.pt",), ("rm",), cfg(ppo.Config, "ppo"), ppo.train, "ppo.pt"),
           Stage("ppo_ptx", ("ppo_ptx.pt",), ("rm",), cfg(ppo.Config, "ppo", ptx_coef=PTX_COEF),
                 ppo.train, "ppo_ptx.pt")]
    for kind, field in (("beta", "kl_coef"), ("ptx", "ptx_coef")):
        for value, extra in p["sweeps"][kind].items():
            name = f"sweep_{kind}_{value}"
            ptx = {"ptx_coef": PTX_COEF} if kind == "ptx" else {}
            c = cfg(ppo.Config, "ppo", **{**ptx, **extra, field: float(value), "name": name})
            seq.append(Stage(name, (f"{name}.pt",), ("rm",), c, ppo.train, f"{name}.pt"))
    ecfg = evaluate.Config(**{**p.get("evaluate", {}), "out": o, "preset": preset, **dev})
    seq.append(Stage("evaluate", ("results.json",), tuple(s.name for s in seq[1:]), ecfg,
                     evaluate.evaluate, extra=labelers))
    return seq


def stage_id(st: Stage, out: Path) -> str:
    """What downstream stages record of this one: for datasets a hash of their content (made
    again the same, they re-run nothing), for checkpoints a fresh id per run."""
    if st.name not in ("data", "collect"):  # (data you edit re-runs what depends on it)
        return uuid.uuid4().hex[:12]
    h = hashlib.sha256()
    for f in st.outputs:
        h.update((out / f).read_bytes())
    return h.hexdigest()[:12]


def run(preset: str = "cpu", out: str | None = None, gpt2_weights: str = "",
        only: tuple = (), device: str = "auto") -> dict:
    """Run (or skip, or resume) every stage of the preset in out/; returns the results."""
    out = Path(out or f"runs/{preset}")
    out.mkdir(parents=True, exist_ok=True)
    if preset == "gpt2" and not gpt2_weights and not (out / "base.pt").exists():
        raise SystemExit("the gpt2 preset starts from GPT-2's weights: --gpt2 DIR (a local "
                         "Hugging Face directory with model.safetensors) or --gpt2 gpt2 (the hub)")
    record_path = out / "pipeline.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    done = record.setdefault("stages", {})
    seq = stages(preset, out, gpt2_weights, device)
    unknown = set(only) - {st.name for st in seq}
    if unknown:
        raise SystemExit(f"--only: no stage {', '.join(sorted(unknown))} in preset {preset} "
                         f"(stages: {', '.join(st.name for st in seq)})")
    times, t_all = {}, time.time()
    print(f"pipeline: preset {preset} -> {out}/ ({len(seq)} stages)")
    for i, st in enumerate(seq, 1):
        want = {"settings": st.settings(), "inputs": {u: done.get(u, {}).get("id")
                                                             for u in st.inputs}}
        have = done.get(st.name, {})
        present = all((out / f).exists() for f in st.outputs)
        head = f"[{i}/{len(seq)}] {st.name:<18}"
        if only and st.name not in only:
            continue
        if st.name in ("data", "collect") and (have.get("user") or (not have and any(
                (out / f).exists() for f in st.outputs))):
            if not present:  # some files of the user's, not all: refuse to write over them
                raise SystemExit(f"{out}/ holds some of {', '.join(st.outputs)} but not all, "
                                 f"and no record that the pipeline wrote them: add the rest, "
                                 f"or move yours away to let `{st.name}` write them")
            print(f"{head} your own files are in {out}/: used as they are, never rewritten")
            done[st.name] = {"user": True, "status": "done", "id": stage_id(st, out), **want}
            continue
        if present and have.get("status") == "done" and all(
                have.get(k) == v for k, v in want.items()):
            print(f"{head} up to date, skipped ({have.get('seconds', 0):.0f} s when it ran)")
            times[st.name] = 0.0
            continue
        resume = bool(st.checkpoint and (out / st.checkpoint).exists()
                      and have.get("status") == "started"
                      and all(have.get(k) == v for k, v in want.items()))
        if not resume and st.checkpoint:  # a stopped fresh run must not resume an old one
            (out / st.checkpoint).unlink(missing_ok=True)
        print(f"{head} {'resuming' if resume else 'running'} "
              f"(pipeline at {time.time() - t_all:.0f} s)", flush=True)
        done[st.name] = {"status": "started", **want}
        record_path.write_text(json.dumps(record, indent=1))
        t0 = time.time()
        if st.name == "evaluate":  # the results carry each stage's wall time
            ran = {k: v.get("seconds", 0.0) for k, v in done.items() if k != "evaluate"}
            st.fn(st.config, ran)
        elif resume:
            st.fn(dataclasses.replace(st.config, resume=True))
        else:
            st.fn(st.config)
        times[st.name] = time.time() - t0
        done[st.name] = {"status": "done", "id": stage_id(st, out),
                         "seconds": round(times[st.name], 1), **want}
        record_path.write_text(json.dumps(record, indent=1))
        print(f"{head} done in {times[st.name]:.0f} s", flush=True)
    total = time.time() - t_all
    print("pipeline: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items())
          + f" | total {total:.0f} s")
    if (out / "results.md").exists():
        print(f"results: {out}/results.md, {out}/results.json, {out}/plots/")
    return json.loads((out / "results.json").read_text()) if (out / "results.json").exists() \
        else {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--out", help="run directory (default runs/<preset>)")
    ap.add_argument("--gpt2", default="", help="gpt2 preset: GPT-2 weights, a local directory "
                    "or a hub name (downloads once)")
    ap.add_argument("--only", default="", help="comma-separated stages to run (default: all)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--list", action="store_true", help="print each stage's settings and stop")
    a = ap.parse_args(argv)
    if a.list:
        for st in stages(a.preset, Path(a.out or f"runs/{a.preset}"), a.gpt2, a.device):
            print(f"{st.name:<10} {json.dumps(st.settings())}")
        return None
    return run(a.preset, a.out, a.gpt2, tuple(x for x in a.only.split(",") if x), a.device)


if __name__ == "__main__":
    main()
