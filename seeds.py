"""seeds.py: a seed study, the results of runs that differ only in `pipeline.py --seed`.

One run is one draw: a win rate, a tax or a curve counts as a finding when it holds on every
seed. This reads the results.json that evaluate.py wrote in each run directory and gives each
figure and each of report.targets' targets as mean [min, max], a target counting as met only
where every seed meets it:

    python pipeline.py --seed 1 && python pipeline.py --seed 2     # runs/cpu-seed1, -seed2
    python seeds.py runs/cpu runs/cpu-seed1 runs/cpu-seed2 --out results/cpu   # seeds.md, .json

Nothing here loads a model: the figures are evaluate's, the targets report's.
"""

import argparse
import json
from pathlib import Path

# The figures a seed study reports beside the targets: (label, path into results.json).
FIGURES = [
    ("PPO-ptx win rate vs SFT", ("models", "ppo_ptx", "win_rate_vs_sft", "rate")),
    ("PPO win rate vs SFT", ("models", "ppo", "win_rate_vs_sft", "rate")),
    ("RM best-of-8 win rate vs SFT", ("reference", "sft_best_of_n_rm", "win_rate_vs_sft", "rate")),
    ("gold best-of-8 win rate vs SFT", ("reference", "sft_best_of_n_gold", "win_rate_vs_sft",
                                        "rate")),
    ("RM held-out accuracy", ("reward_model", "acc")),
    ("labeler agreement, same pairs", ("reward_model", "agreement")),
    ("RM orders hallucination pairs", ("reward_model", "by_fault", "faults", "hallucinates",
                                       "acc")),
    ("RM orders harmful/rude pairs", ("reward_model", "by_fault", "faults", "harmful or rude",
                                      "acc")),
    ("SFT gold", ("models", "sft", "gold")),
    ("PPO-ptx gold", ("models", "ppo_ptx", "gold")),
    ("SFT hallucinates", ("models", "sft", "metadata", "hallucination")),
    ("PPO hallucinates", ("models", "ppo", "metadata", "hallucination")),
    ("PPO-ptx hallucinates", ("models", "ppo_ptx", "metadata", "hallucination")),
    ("SFT declines harmful (probe)", ("models", "sft", "metadata", "declines_harmful")),
    ("PPO-ptx declines harmful (probe)", ("models", "ppo_ptx", "metadata", "declines_harmful")),
    ("base held-out loss", ("models", "base", "heldout_loss")),
    ("PPO held-out loss", ("models", "ppo", "heldout_loss")),
    ("PPO-ptx held-out loss", ("models", "ppo_ptx", "heldout_loss")),
]


def _get(res: dict, path: tuple):
    for k in path:
        if not isinstance(res, dict) or k not in res:
            return None
        res = res[k]
    return res


def _spread(values: list) -> dict | None:
    """mean, min and max of the seeds' values (None where a seed lacks the figure)."""
    v = [x for x in values if x is not None]
    return {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "n": len(v)} if v else None


def seed_study(results: list[dict]) -> dict:
    """Runs of one preset that differ only in --seed -> each figure and each target's measured
    value as mean and range; a target counts as met only where every seed met it."""
    figures = {label: _spread([_get(r, path) for r in results]) for label, path in FIGURES}
    names = [n for n in results[0]["targets"] if all(n in r["targets"] for r in results)]
    tgt = {}
    for n in names:
        per = [r["targets"][n] for r in results]
        measured = [t["measured"] for t in per]
        keys = list(measured[0]) if isinstance(measured[0], dict) else None
        tgt[n] = {"target": per[0]["target"], "met_on": sum(t["met"] for t in per),
                  "met": all(t["met"] for t in per),
                  "measured": {k: _spread([m.get(k) for m in measured]) for k in keys}
                  if keys else _spread(measured)}
    return {"preset": results[0]["preset"], "seeds": len(results),
            "runs": [r["out"] for r in results], "figures": figures, "targets": tgt,
            "wall_s": _spread([r.get("wall_s", sum(r["stages"].values())) for r in results
                               if r.get("stages")])}


def seed_markdown(study: dict) -> str:
    """seeds.md: the seed study's figures and targets, each as mean [min, max]."""
    def cell(x, spec):
        return "n/a" if x is None else (f"{x['mean']:{spec}} [{x['min']:{spec}}, "
                                        f"{x['max']:{spec}}]")
    L = [f"# Seed study: preset `{study['preset']}`, {study['seeds']} seeds", "",
         "Runs: " + ", ".join(f"`{r}`" for r in study["runs"]) + ". Each figure: mean "
         "[min, max] over the seeds. A target is met only where every seed meets it.", "",
         "| figure | mean [min, max] |", "|---|---|"]
    for label, x in study["figures"].items():
        spec = ".3f" if "loss" in label or "gold" in label and "win" not in label else ".1%"
        L.append(f"| {label} | {cell(x, spec)} |")
    L += ["", "| target | required | measured: mean [min, max] | met on | met |",
          "|---|---|---|---|---|"]
    for n, t in study["targets"].items():
        v = t["measured"]
        v = "; ".join(f"{k} {cell(x, '+.3f')}" for k, x in v.items()) if "mean" not in v \
            else cell(v, ".3f")
        L.append(f"| {n} | {t['target']} | {v} | {t['met_on']}/{study['seeds']} | "
                 f"{'yes' if t['met'] else '**no**'} |")
    if study["wall_s"]:
        L += ["", f"Pipeline wall time: {cell(study['wall_s'], '.0f')} s."]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="A seed study: the results of runs that differ "
                                 "only in `pipeline.py --seed`, as mean and range.")
    ap.add_argument("runs", nargs="+", help="run directories, each with results.json")
    ap.add_argument("--out", default="", help="write seeds.json and seeds.md here")
    a = ap.parse_args(argv)
    results = []
    for d in a.runs:
        path = Path(d) / "results.json"
        if not path.exists():
            raise SystemExit(f"{path} not found; it is made by: python pipeline.py --out {d}")
        results.append(json.loads(path.read_text()))
    study = seed_study(results)
    text = seed_markdown(study)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "seeds.json").write_text(json.dumps(study, indent=1))
        (Path(a.out) / "seeds.md").write_text(text)
    print(text)
    return study


if __name__ == "__main__":
    main()
