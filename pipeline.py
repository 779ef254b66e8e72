"""pipeline.py: the whole InstructGPT recipe in one command, for one preset.

Paper: Ouyang et al. 2022, Figure 2: (0) a pretrained language model, (1) supervised
fine-tuning on demonstrations, (2) a reward model trained on rankings, (3) PPO against it,
and the evaluations of section 4. One run directory holds every artifact:

    data       world/        corpus.txt, sft.jsonl, rm_prompts.jsonl, prompts.jsonl, ...
    pretrain   pretrain.py   tokenizer.tiktoken, base.pt   (gpt2: from GPT-2's weights)
    sft        sft.py        sft.pt                        step 1
    collect    reward.py     comparisons.jsonl             the labelers rank SFT samples
    rm         reward.py     rm.pt                         step 2, Eq. 1
    ppo        ppo.py        ppo.pt                        step 3, Eq. 2 with gamma = 0
    ppo_ptx    ppo.py        ppo_ptx.pt                    step 3, Eq. 2: InstructGPT
    sweep_*    ppo.py        sweep_beta_<b>.pt, sweep_ptx_<g>.pt   over-optimisation, tax
    references evaluate.py   references.json: base's and SFT's answers (responses.py), made
                             beside the PPO runs (--references_only)
    evaluate   evaluate.py   results.md, results.json, plots/*.png

    python pipeline.py                     # preset cpu -> runs/cpu
    python pipeline.py --preset tiny       # the whole recipe in well under a minute
    python pipeline.py --preset long       # cpu + an RM reading its likelihood, 16x PPO
    python pipeline.py --preset gpt2 --gpt2 path/to/gpt2   # one GPU, GPT-2 124M weights
    python pipeline.py --list              # each stage's settings for the preset
    python pipeline.py --seed 1            # another draw of the whole recipe -> runs/cpu-seed1

Each stage's Config defaults are the cpu preset's settings, so a stage run alone (`python
sft.py --out runs/cpu`) trains what this file trains; PRESETS lists only what `tiny`, `long`
and `gpt2` change. Beside PPO and PPO-ptx the pipeline runs two sweeps (SWEEPS): one long run at a
small beta (over-optimisation) and one PPO-ptx run at gamma 4 (the tax trade-off). The
measurements behind the cpu preset's choices are in docs/EXPERIMENTS.md.

The run directory stays true to what made it. out/pipeline.json records, for each stage, its
settings and the content (SHA-256) of every file it read and wrote. A stage is skipped only
when its settings and every file it reads are the same as when it ran; otherwise it runs
again, and so does each stage that reads what it writes (a stage made again identical re-runs
nothing downstream). A file you change is used as it is: edit sft.jsonl, or put another run's
base.pt in place, and everything that reads it runs again; a checkpoint that no longer loads
is made again by its stage; a data file that no longer parses stops the run, naming its file
and line, before anything is written. Delete a file to have its stage make it again; a stage
that must run again over a file you changed stops and says so rather than write over it.
Data files found without a record (all seven of your own, or your comparisons.jsonl) are used
as they are, never overwritten. An interrupted stage resumes from its own checkpoint (the stages'
--resume); a run that never reached a checkpoint starts again. One run at a time: a second
pipeline on the same run directory stops at once, naming the process that holds it.
"""

import argparse
import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

import collect
import data
import evaluate
import parallel
import ppo
import pretrain
import responses
import reward
import sft
import stage
import tokenizer as tok
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
        "evaluate": {"n_prompts": 40, "max_new_tokens": 32, "n_tax_windows": 20,
                     "n_harmful_probe": 20},
    },
    "cpu": {},
    # The cpu preset's world, data, models and SFT, then an RM that also reads its own
    # likelihood (reward.py, extension 8) and 16x the PPO episodes at beta 0.1: where PPO-ptx
    # beats SFT clearly and hallucinates less than it, on every seed (docs/EXPERIMENTS.md, "What
    # stops PPO short"); 1,224 s from scratch on 2 cores with native bf16. No sweeps: each
    # would take as long again.
    "long": {
        "rm": {"lm_coef": 1.0},
        "ppo": {"kl_coef": 0.1, "iterations": 160, "batch_size": 256, "minibatch_size": 64,
                "lr": 1e-4},
        "sweeps": {"beta": {}, "ptx": {}},
    },
    "gpt2": {  # sizes and learning rates for GPT-2 124M on one GPU (not yet tuned on one)
        # GPT-2 124M goes on pretraining on the world's corpus (about 4M tokens: 1,000 steps of
        # 16 x 256), at a tenth of its own peak rate, so that it knows the facts it is asked
        "pretrain": {"tokenizer": "gpt2", "block_size": 256, "batch_size": 16, "max_iters": 1000,
                     "lr": 1e-4, "warmup_iters": 50},
        "sft": {"epochs": 2, "lr": 1e-5, "dropout": 0.1, "batch_size": 16, "eval_interval": 100},
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
# PPO runs side by side on a CPU with native bf16, each its own process on its share of the
# threads: the cpu preset's four runs took 182 s one after another, 164 s two at a time. In
# fp32 (no native bf16; kernels held to AVX2) two threads pay and side by side is slower: 249 s
# one after another, 275 s two at a time (docs/EXPERIMENTS.md), so there they run one by one.
# With them, in the same group, the references: base's and SFT's answers, which need no PPO run.
JOBS = {"cpu": 2, "long": 2}
SPEED_ONLY = ("resume", "out", "data", "device", "dtype", "compile", "matmul_precision",
              "gen_batch")
DATA_FILES = ("corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
              "prompts.jsonl", "eval_prompts.jsonl")


@dataclasses.dataclass
class Stage:
    name: str
    outputs: tuple  # files in the run directory that it writes and that mark it done
    reads: tuple  # files in the run directory that it reads: a change re-runs it
    config: object  # the stage's Config (a dataclass), as the preset sets it
    fn: object  # fn(config) runs the stage
    checkpoint: str = ""  # the file a resume continues from ("" = restart when interrupted)
    extra: dict = dataclasses.field(default_factory=dict)  # more settings it depends on
    script: str = ""  # the stage's own command, which --nproc N starts under torchrun
    group: str = ""  # stages of a group read nothing another writes: --jobs runs them at once
    cache: bool = False  # its outputs are never yours: changed by hand, it makes them again

    def settings(self) -> dict:
        """What the record compares: every field of its Config but resume, the paths (the
        run directory may move) and the fields that change only speed, and extra."""
        skip = SPEED_ONLY + (("batch_size",) if self.name == "evaluate" else ()) + (
            ("init",) if self.name == "pretrain" else ())  # GPT-2's weights: --gpt2 once
        d = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in skip}
        return json.loads(json.dumps({**d, **self.extra}))


def stages(preset: str, out: Path, gpt2_weights: str = "", device: str = "auto",
           seed: int = 0) -> list[Stage]:
    """The recipe for one preset: data -> pretrain -> sft -> collect -> rm -> ppo ... evaluate.
    seed: added to every stage's seed (see seeded)."""
    p, o = {"sweeps": SWEEPS, **PRESETS[preset]}, str(out)
    dev = {} if device == "auto" else {"device": device}
    labelers = {"labelers": dataclasses.asdict(world.PRESETS[preset])}  # who ranks and judges

    def cfg(cls, key, **extra):  # the stage's Config: its defaults, the preset's, extra, seed
        return seeded(cls(**{**p.get(key, {}), **extra, "out": o,
                             **(dev if "device" in cls.__dataclass_fields__ else {})}), seed)

    importing = preset == "gpt2" or bool(gpt2_weights)

    def make_base(c):  # step 0: pretrain here, from random weights or from GPT-2's
        if importing and not gpt2_weights and not c.resume:
            raise SystemExit("the gpt2 preset starts from GPT-2's weights: --gpt2 DIR (a local "
                             "Hugging Face directory with model.safetensors) or --gpt2 gpt2")
        # a new corpus may have come before: a fresh run trains its BPE
        return pretrain.train(c, retrain_tokenizer=not importing)

    tok_file = () if importing else ("tokenizer.tiktoken",)  # GPT-2's encoding is tiktoken's
    base = tok_file + ("base.pt",)
    policy = tok_file + ("sft.pt",)
    seq = [Stage("data", DATA_FILES, (), world.PRESETS[preset],
                 lambda c: world.write_datasets(c, out)),
           Stage("pretrain", base + ("pretrain.jsonl",), ("corpus.txt",),
                 cfg(pretrain.Config, "pretrain", data=str(out / "corpus.txt"),
                     **({"init": gpt2_weights, "tokenizer": "gpt2"} if importing else {})),
                 make_base, "base.pt", {"gpt2": importing}, "pretrain.py"),
           Stage("sft", ("sft.pt", "sft_log.jsonl"),
                 base + ("sft.jsonl", "eval_prompts.jsonl", "corpus.txt"),
                 cfg(sft.Config, "sft"), sft.train, "sft.pt", script="sft.py"),
           Stage("collect", ("comparisons.jsonl",), policy + ("rm_prompts.jsonl",),
                 cfg(reward.Config, "collect", preset=preset, collect_only=True), collect.collect,
                 extra=labelers),
           Stage("rm", ("rm.pt", "reward.jsonl"), policy + ("comparisons.jsonl", "sft.jsonl"),
                 cfg(reward.Config, "rm", preset=preset), reward.train, "rm.pt", labelers,
                 "reward.py")]
    rl_reads = policy + ("rm.pt", "prompts.jsonl", "corpus.txt")
    runs = [("ppo", {}), ("ppo_ptx", {"ptx_coef": PTX_COEF})]
    for kind, field in (("beta", "kl_coef"), ("ptx", "ptx_coef")):
        for value, extra in p["sweeps"][kind].items():
            ptx = {"ptx_coef": PTX_COEF} if kind == "ptx" else {}
            runs.append((f"sweep_{kind}_{value}", {**ptx, **extra, field: float(value)}))
    for name, change in runs:
        c = cfg(ppo.Config, "ppo", **change, **({"name": name} if name.startswith("sweep") else {}))
        seq.append(Stage(name, (f"{name}.pt", f"{name}_log.jsonl"), rl_reads, c, ppo.train,
                         f"{name}.pt", script="ppo.py", group="rl"))
    ecfg = seeded(evaluate.Config(**{**p.get("evaluate", {}), "out": o, "preset": preset,
                                     **dev}), seed)
    tested = ("eval_prompts.jsonl", "corpus_val.txt", "cloze.jsonl")
    # the base and SFT models' answers need no PPO run: made beside them (speed only)
    seq.append(Stage("references", (responses.REFERENCES,), base + ("sft.pt", "rm.pt") + tested,
                     dataclasses.replace(ecfg, references_only=True), responses.references,
                     script="evaluate.py", group="rl", cache=True))
    # (the PPO logs it reads are inside their checkpoints: a run made again with the same model
    # but other timings in its log re-runs nothing)
    models = tuple(f for st in seq[1:] for f in st.outputs if f.endswith(".pt"))
    seq.append(Stage("evaluate", ("results.json", "results.md"),
                     tok_file + models + tested + (responses.REFERENCES,), ecfg,
                     evaluate.evaluate, extra=labelers))
    return seq


def seeded(config, seed: int):
    """The stage's Config with `seed` added to its own seed: another draw of everything that is
    random in training and evaluation (model init, batch order, sampling, the labelers' noise
    when they rank and judge). The world and its datasets stay as they are, as a study's data
    do: a seed study measures the recipe's spread on the same data."""
    return dataclasses.replace(config, seed=config.seed + seed) if seed else config


def check_data(out: Path, files) -> None:
    """Read every dataset present as the stages will: a file that does not parse stops the run
    here, naming its file and line, before any stage writes anything."""
    readers = {"sft.jsonl": data.read_sft, "comparisons.jsonl": data.read_comparisons,
               "cloze.jsonl": data.read_jsonl, "corpus.txt": stage.load_corpus,
               "corpus_val.txt": stage.load_corpus}
    for f in files:
        if (out / f).exists():
            readers.get(f, data.read_prompts)(out / f)


def loads(path: Path) -> bool:
    """Whether a checkpoint (.pt) or the tokenizer loads; other files count as loading."""
    try:
        if path.suffix == ".pt":
            stage.load_checkpoint(path)
        elif path.suffix == ".tiktoken":
            tok.load_tokenizer(path)
        return True
    except (stage.CheckpointError, ValueError):
        return False


def same_run(path: Path, st: Stage) -> bool:
    """Whether the checkpoint at path was written by a run of st's settings (resume only that)."""
    try:
        ck = stage.load_checkpoint(path)
    except stage.CheckpointError:
        return False
    mine = {k: v for k, v in dataclasses.asdict(st.config).items() if k not in SPEED_ONLY}
    theirs = {k: ck.get("train_config", {}).get(k) for k in mine}
    return json.loads(json.dumps(mine)) == json.loads(json.dumps(theirs))


def run_stage(st: Stage, out: Path, done: dict, head: str, t_all: float, save,
              nproc: int = 1, threads: int = 0) -> float | None:
    """Skip, adopt, resume or run one stage, keeping its record in done (save(name, record)
    sets and writes it); returns the seconds it ran, or None when it did not run. nproc > 1: a
    training stage runs as its own command under torchrun, on nproc ranks (parallel.py);
    threads > 0: as its own process on that many threads, beside another stage (--jobs)."""
    want = {"settings": st.settings(), "reads": {f: stage.digest(out / f) for f in st.reads}}
    have = done.get(st.name, {})
    writes = {f: stage.digest(out / f) for f in st.outputs}
    present = all(v is not None for v in writes.values())
    some = any(v is not None for v in writes.values())
    if st.name in ("data", "collect") and some and (have.get("user") or not have):
        if not present:  # some files of the user's, not all: refuse to write over them
            raise SystemExit(f"{out}/ holds some of {', '.join(st.outputs)} but not all, "
                             f"and no record that the pipeline wrote them: add the rest, "
                             f"or move yours away to let `{st.name}` write them")
        print(f"{head} your own files are in {out}/: used as they are, never rewritten")
        save(st.name, {"user": True, "status": "done", **want, "writes": writes})
        return None
    if present and have.get("status") == "done" and all(have.get(k) == v
                                                        for k, v in want.items()):
        changed = [f for f in st.outputs if have.get("writes", {}).get(f) != writes[f]]
        broken = [f for f in changed if not loads(out / f)]
        cache = changed if st.cache else []
        if not broken and not cache:
            if changed:  # changed by someone else: used as it is; what reads it runs again
                print(f"{head} {', '.join(changed)} changed since this stage wrote it: used as "
                      f"it is (delete it to have `{st.name}` make it again)")
                save(st.name, {**have, "writes": writes, "adopted": sorted(
                    set(have.get("adopted", [])) | set(changed))})
            else:
                print(f"{head} up to date, skipped ({have.get('seconds', 0):.0f} s when it ran)")
            return None
        print(f"{head} {', '.join(broken or cache)} "
              f"{'no longer loads' if broken else 'changed, and is a cache'}: made again")
    # Never write over a file you changed: it was adopted, and is still as you left it.
    mine = [f for f in have.get("adopted", []) if writes.get(f) is not None
            and writes[f] == have.get("writes", {}).get(f)]
    if mine:
        raise SystemExit(f"`{st.name}` must run again (its settings or inputs changed, or an "
                         f"output is missing), and it would write over {', '.join(mine)}, "
                         f"which you changed: move {'them' if len(mine) > 1 else 'it'} away "
                         f"and run again")
    # Resume only a run this pipeline started with these settings and that reached a
    # checkpoint: the checkpoint then differs from the one there when it started.
    resume = bool(st.checkpoint and have.get("status") == "started"
                  and all(have.get(k) == v for k, v in want.items())
                  and writes.get(st.checkpoint) is not None
                  and writes[st.checkpoint] != have.get("before", {}).get(st.checkpoint)
                  and same_run(out / st.checkpoint, st))
    print(f"{head} {'resuming' if resume else 'running'} "
          f"(pipeline at {time.time() - t_all:.0f} s)", flush=True)
    save(st.name, {"status": "started", **want,
                   "before": writes if not resume else have.get("before", {})})
    t0 = time.time()
    if st.name == "evaluate":  # the results carry each stage's wall time, and theirs in all
        earlier = {k: v for k, v in done.items() if k != "evaluate"}
        st.fn(st.config, {k: v.get("seconds", 0.0) for k, v in earlier.items()},
              sorted(k for k, v in earlier.items() if v.get("beside")), wall(earlier.values()))
    elif threads:  # (a stage without checkpoints, the references, has no resume)
        parallel.beside(st.name, st.script, dataclasses.replace(st.config, resume=resume)
                        if st.checkpoint else st.config, out, threads)
    elif nproc > 1 and st.checkpoint:  # training stages; a fresh pretraining trains its BPE
        parallel.launch(st.script, dataclasses.replace(st.config, resume=resume), nproc, out,
                        ("--retrain_tokenizer",) if st.name == "pretrain" and not resume else ())
    else:
        st.fn(dataclasses.replace(st.config, resume=True) if resume else st.config)
    seconds = time.time() - t0
    save(st.name, {"status": "done", **want,
                   "writes": {f: stage.digest(out / f) for f in st.outputs},
                   "seconds": round(seconds, 1), "span": [round(t0, 1), round(t0 + seconds, 1)],
                   **({"beside": True} if threads else {})})
    print(f"{head} done in {seconds:.0f} s", flush=True)
    return seconds


def cost(st: Stage) -> tuple:
    """How long a stage of the PPO group runs, to order them longest first (--jobs): by its
    iterations, and of runs as long, PPO-ptx's (a corpus batch beside each minibatch) first;
    the references last, the shortest. Runs that take longer start first, so that the
    shorter fill in beside them and the group ends sooner."""
    c = st.config
    return getattr(c, "iterations", 0), getattr(c, "ptx_coef", 0) > 0


def wall(records) -> float:
    """The seconds that stages' records took on the clock: the union of their spans (stages
    side by side count once), plus the seconds of records from before spans were kept."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(r["span"] for r in records if "span" in r):
        total, end = total + max(0.0, b - max(a, end)), max(end, b)
    return round(total + sum(r.get("seconds", 0.0) for r in records if "span" not in r), 1)


def read_record(path: Path) -> dict:
    """out/pipeline.json, or {} when there is none; one that is not a record stops the run."""
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except ValueError:
        record = None
    stages_ = record.get("stages", {}) if isinstance(record, dict) else None
    if isinstance(stages_, dict) and all(isinstance(v, dict) for v in stages_.values()):
        return record
    raise SystemExit(f"{path} is not a record of this pipeline (damaged?): delete it, and "
                     f"every stage runs again (data files found are then used as yours)")


def default_out(preset: str, seed: int = 0) -> Path:
    """runs/<preset>, or runs/<preset>-seed<N> for another seed."""
    return Path(f"runs/{preset}" + (f"-seed{seed}" if seed else ""))


def run(preset: str = "cpu", out: str | None = None, gpt2_weights: str = "",
        only: tuple = (), device: str = "auto", seed: int = 0, nproc: int = 1,
        jobs: int = 0) -> dict:
    """Run (or skip, or resume) every stage of the preset in out/; returns the results.
    jobs: stages of one group (the PPO runs) run this many at a time, each its own process on
    its share of the threads; 0 = JOBS[preset] on a CPU with native bf16, else 1."""
    out = Path(out or default_out(preset, seed))
    out.mkdir(parents=True, exist_ok=True)
    if preset == "gpt2" and not gpt2_weights and not (out / "base.pt").exists():
        raise SystemExit("the gpt2 preset starts from GPT-2's weights: --gpt2 DIR (a local "
                         "Hugging Face directory with model.safetensors) or --gpt2 gpt2 (the hub)")
    seq = stages(preset, out, gpt2_weights, device, seed)
    unknown = set(only) - {st.name for st in seq}
    if unknown:
        raise SystemExit(f"--only: no stage {', '.join(sorted(unknown))} in preset {preset} "
                         f"(stages: {', '.join(st.name for st in seq)})")
    threads = torch.get_num_threads()
    if not jobs:
        alone = (nproc > 1 or stage.pick_device(device) != "cpu" or threads < 2
                 or not stage.cpu_has_bf16())
        jobs = 1 if alone else JOBS.get(preset, 1)
    groups = []  # runs of consecutive stages of one group, the others one by one
    for st in seq:
        if groups and st.group and groups[-1][0].group == st.group:
            groups[-1].append(st)
        else:
            groups.append([st])
    times, t_all = {}, time.time()
    print(f"pipeline: preset {preset} -> {out}/ ({len(seq)} stages"
          + (f"; PPO runs {jobs} at a time" if jobs > 1 else "") + ")")
    with stage.lock(out):  # one run at a time per run directory
        record_path = out / "pipeline.json"
        record = read_record(record_path)
        done = record.setdefault("stages", {})
        writing = threading.Lock()

        def save(name, rec):  # from the threads of stages that run at once, one at a time
            with writing:
                done[name] = rec
                text = json.dumps(record, indent=1)
                data.write_atomic(record_path, lambda t: t.write_text(text))

        def one(st, threads=0):
            i = seq.index(st) + 1
            return run_stage(st, out, done, f"[{i}/{len(seq)}] {st.name:<18}", t_all, save,
                             nproc, threads)

        for group in groups:
            todo = [st for st in group if not only or st.name in only]
            if jobs > 1 and len(todo) > 1:  # the longest first, each on its share of threads
                todo.sort(key=cost, reverse=True)
                with ThreadPoolExecutor(jobs) as pool:
                    runs = [pool.submit(one, st, max(1, threads // jobs)) for st in todo]
                ran = {st.name: r.result() for st, r in zip(todo, runs, strict=True)}  # 1st error
            else:
                ran = {st.name: one(st) for st in todo}
            times.update({st.name: ran[st.name] for st in group
                          if ran.get(st.name) is not None})
            for st in todo:
                if st.name in ("data", "collect"):  # every dataset parses before it is read
                    check_data(out, st.outputs)
    total = time.time() - t_all
    print("pipeline: " + (", ".join(f"{k} {v:.0f}s" for k, v in times.items()) or
                          "every stage up to date") + f" | total {total:.0f} s")
    if (out / "results.md").exists():
        print(f"results: {out}/results.md, {out}/results.json, {out}/plots/")
    return json.loads((out / "results.json").read_text()) if (out / "results.json").exists() \
        else {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--out", help="run directory (default runs/<preset>, runs/<preset>-seed<N>)")
    ap.add_argument("--seed", type=int, default=0, help="added to every stage's seed: another "
                    "draw of the recipe on the same data (a seed study: 0, 1, 2)")
    ap.add_argument("--gpt2", default="", help="gpt2 preset: GPT-2 weights, a local directory "
                    "or a hub name (downloads once)")
    ap.add_argument("--only", default="", help="comma-separated stages to run (default: all)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--nproc", type=int, default=1, help="ranks per training stage, started "
                    "with torchrun (data parallel: parallel.py); 1 = one process")
    ap.add_argument("--jobs", type=int, default=0, help="PPO runs (and the references) at a "
                    "time, each its own process on its share of the threads; 0 = 2 for the cpu "
                    "preset on a CPU with native bf16 (measured faster there only), else 1")
    ap.add_argument("--list", action="store_true", help="print each stage's settings and stop")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error "
                    "(also: INSTRUCTGPT_DEBUG=1)")
    a = ap.parse_args(argv)
    if a.list:
        for st in stages(a.preset, Path(a.out or default_out(a.preset, a.seed)), a.gpt2,
                         a.device, a.seed):
            print(f"{st.name:<10} {json.dumps(st.settings())}")
        return None
    return run(a.preset, a.out, a.gpt2, tuple(x for x in a.only.split(",") if x), a.device,
               a.seed, a.nproc, a.jobs)


if __name__ == "__main__":
    stage.run_cli(main, resume="run the same command again: finished stages are skipped and "
                  "the interrupted one resumes from its last checkpoint")
