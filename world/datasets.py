"""The datasets of one run directory, written from the world: the paper's data collection.

Section 3.2 of the paper collects three datasets from the API prompt distribution and the
labelers: about 13k prompts with demonstrations for SFT, 33k prompts whose model outputs are
ranked for the reward model, and 31k bare prompts for PPO; its evaluations use prompts from
held-out customers. `write_datasets(cfg, out)` writes their counterparts, in the formats of
data.py, and the text the base model and the alignment tax need:

    corpus.txt          "the internet": pretraining text (corpus.py)
    corpus_val.txt      held-out pretraining text, for the alignment tax (paper 4.2)
    cloze.jsonl         a cloze task over the world's facts: our "public NLP task"
    sft.jsonl           prompts with a labeler's demonstration (labelers.py)
    rm_prompts.jsonl    prompts whose SFT samples the labelers rank (reward.py ranks them)
    prompts.jsonl       PPO's prompts, no labels
    eval_prompts.jsonl  held-out entities or phrasings: the held-out customers

    python -m world --out runs/cpu             # the cpu preset's sizes (the default)
    python -m world --out runs/tiny --preset tiny

Deviations from the paper:
1. Sizes are about 10x smaller (SFT 3k, RM 1.5k, PPO 3k prompts by default), and comparisons
   are not written here: reward.py samples K responses from the SFT model and has the
   labelers rank them, as the paper's labelers ranked its models' outputs.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from data import write_atomic, write_jsonl

from .answers import respond
from .corpus import make_cloze, make_corpus
from .facts import EOT, SEED, make_world
from .gold import score
from .labelers import agreement, make_labelers
from .prompts import generate_prompts, parse


@dataclass
class Config:
    seed: int = SEED  # the world's seed: same seed, same world, same files byte for byte
    corpus_chars: int = 4_000_000  # size of corpus.txt, "the internet" (GPT-3: 300B tokens)
    val_chars: int = 200_000  # held-out pretraining text, for the alignment tax (paper 4.2)
    n_cloze: int = 500  # at most this many cloze items over facts (the world has ~400)
    n_sft: int = 3000  # prompts with a labeler demonstration (paper: ~13k, section 3.2)
    n_rm: int = 1500  # prompts whose SFT samples labelers rank (paper: ~33k)
    n_ppo: int = 3000  # prompts for PPO, no labels (paper: ~31k)
    n_eval: int = 300  # held-out prompts: held-out entities or phrasings ("customers")
    harmful_share: float = 0.05  # harmful requests, on top of Table 1 (paper 4.2 harmlessness)
    unknowable_share: float = 0.05  # unknown names and false premises (paper 4.2 honesty)
    demo_care: float = 0.6  # chance a demonstration is a labeler's best answer; else flawed
    rude_rate: float = 0.05  # share of corpus documents carrying a rude line
    rumour_rate: float = 0.01  # share of corpus documents repeating a false rumour
    labeler_noise: float = 0.2  # Plackett-Luce temperature: ~73% agreement on SFT samples
    labeler_bias: float = 0.15  # spread of each labeler's personal weights on the components
    length_taste: float = 0.1  # labelers' bonus for a 40-word answer over an empty one
    n_labelers: int = 8  # training labelers (paper: ~40)
    n_heldout_labelers: int = 4  # distinct people who judge evaluations (paper 3.4)


PRESETS = {
    "tiny": Config(corpus_chars=300_000, val_chars=30_000, n_cloze=150, n_sft=300, n_rm=150,
                   n_ppo=300, n_eval=100),
    "cpu": Config(),
    "long": Config(),  # the cpu preset's world; its RM and PPO differ (pipeline.py)
    "gpt2": Config(corpus_chars=8_000_000, val_chars=400_000, n_sft=4000, n_rm=2000, n_ppo=4000,
                   n_eval=400),
}

# Qualities of answer as close to each other as an SFT model's samples: labeler calibration.
SFT_LIKE = ("best", "garbled", "sloppy", "verbose", "incomplete")


def write_datasets(cfg: Config, out_dir) -> dict:
    """Write every file the pipeline needs except comparisons.jsonl; return a summary."""
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = make_world(cfg.seed)

    def rng(name: str) -> random.Random:  # one stream per file: changing one leaves the rest
        return random.Random(f"{cfg.seed}-{name}")

    rates = dict(rude_rate=cfg.rude_rate, rumour_rate=cfg.rumour_rate)
    corpus = make_corpus(world, cfg.corpus_chars, rng("corpus"), **rates)
    val = make_corpus(world, cfg.val_chars, rng("val"), **rates)
    for name, text in (("corpus.txt", corpus), ("corpus_val.txt", val)):
        write_atomic(out / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    write_jsonl(out / "cloze.jsonl", make_cloze(world, cfg.n_cloze, rng("cloze")))
    taken: set = set()
    shares = dict(harmful=cfg.harmful_share, unknowable=cfg.unknowable_share)
    sets = {name: generate_prompts(world, n, "eval" if name == "eval" else "train", rng(name),
                                   taken, **shares)
            for name, n in (("sft", cfg.n_sft), ("rm", cfg.n_rm), ("ppo", cfg.n_ppo),
                            ("eval", cfg.n_eval))}
    labelers, demo_rng = make_labelers(cfg), rng("demos")
    sft = [{"prompt": p["prompt"], "response": labelers[i % len(labelers)].demonstrate(
        p["prompt"], demo_rng), "category": p["category"]} for i, p in enumerate(sets["sft"])]
    write_jsonl(out / "sft.jsonl", sft)
    for name, file in (("rm", "rm_prompts"), ("ppo", "prompts"), ("eval", "eval_prompts")):
        write_jsonl(out / f"{file}.jsonl", sets[name])
    # Agreement on pairs as close in quality as an SFT model's samples (the paper's 3.4 figure
    # is on its models' outputs); reward.py measures it again on the real SFT samples.
    arng = rng("agreement")

    def near(p: dict) -> tuple[str, list[str]]:
        return p["prompt"], [respond(world, parse(world, p["prompt"]), q, arng) for q in SFT_LIKE]
    items, held = [near(p) for p in sets["rm"][:600]], [near(p) for p in sets["eval"][:600]]
    demo_scores = [score(r["prompt"], r["response"], world)[0] for r in sft]
    best_scores = [score(r["prompt"], respond(world, parse(world, r["prompt"]), "best", arng),
                         world)[0] for r in sft]
    files = ["corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
             "prompts.jsonl", "eval_prompts.jsonl"]
    return {
        "files": {f: {"bytes": (out / f).stat().st_size,
                      "lines": (out / f).read_text(encoding="utf-8").count("\n")} for f in files},
        "corpus_chars": len(corpus), "corpus_docs": corpus.count(EOT),
        "corpus_words": len(set(re.findall(r"[a-z]+", corpus.lower()))),
        "mix": {name: dict(sorted(Counter(p["category"] for p in s).items()))
                for name, s in sets.items()},
        "agreement_train": round(agreement(labelers, items, arng), 3),
        "agreement_heldout": round(agreement(make_labelers(cfg, True), held, arng), 3),
        "demo_gold": round(sum(demo_scores) / len(demo_scores), 3),
        "best_gold": round(sum(best_scores) / len(best_scores), 3),
        "seconds": round(time.time() - t0, 1)}
