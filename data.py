"""The default world: the paper's data collection, simulated offline.

InstructGPT (Ouyang et al. 2022) section 3 collects three datasets from an API prompt
distribution (Table 1 use cases) and about 40 trained labelers (section 3.4): demonstrations
for SFT, rankings of K = 4..9 model outputs for the reward model, and bare prompts for PPO
(the seed's section 2.1). Offline we have no internet, no API and no labelers, so we simulate
them with a small seeded world, small enough for a 1-10M parameter GPT, in five files:

- world.py: the world: entities with facts, made-up names, held-out entities, rumours;
- corpus.py: "the internet": pretraining text, its held-out part and a cloze task;
- tasks.py: "the API": prompts in the Table 1 mix, plus harmful and unknowable ones;
- gold.py: the gold score `score(prompt, response)` and reference answers of every quality;
- data.py, this file: labelers (gold score + personal bias + a mild length taste, ranked by a
  Plackett-Luce sample) who write demonstrations; JSONL readers and converters; the command
  that writes a run directory. The other stages import this file only: `data.score`, ...

    python data.py --out runs/cpu --preset cpu
    python data.py --convert alpaca alpaca_data.json runs/mine/sft.jsonl

Deviations from the paper (the world's own are listed in its files):
1. Simulated labelers: each is the gold score plus personal weights and a Plackett-Luce
   temperature calibrated to the paper's 72.6% inter-labeler agreement on pairs of SFT-like
   answers (answers of every quality are easier to order: ~79%); no humans offline.
2. Sizes are ~100x smaller (paper: SFT 13k, RM 33k, PPO 31k prompts), and comparisons are
   not written here: reward.py samples K responses from the SFT model and calls the labelers.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from corpus import make_cloze, make_corpus
from gold import _respond, best_response, few_shot_prefix, sample_responses, score
from tasks import TABLE1, generate_prompts
from world import EOT, SEED, World, make_world

# The names other stages use as data.NAME (the world's part comes from the files above).
__all__ = ["Config", "PRESETS", "EOT", "TEMPLATE", "format_prompt", "TABLE1", "World",
           "make_world", "score", "best_response", "sample_responses", "few_shot_prefix",
           "generate_prompts", "Labeler", "make_labelers", "agreement", "DataError",
           "write_jsonl", "read_jsonl", "read_prompts", "read_sft", "read_comparisons",
           "check_prompt", "check_sft", "check_comparison", "from_hh_rlhf", "from_alpaca",
           "CONVERTERS", "convert_file", "write_datasets", "main"]


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
    length_taste: float = 0.1  # labelers' bonus for 40 words over 0 (seed 3.2: long answers)
    n_labelers: int = 8  # training labelers (paper: ~40)
    n_heldout_labelers: int = 4  # distinct people who judge evaluations (paper 3.4)


PRESETS = {
    "tiny": Config(corpus_chars=300_000, val_chars=30_000, n_cloze=150, n_sft=300, n_rm=150,
                   n_ppo=300, n_eval=100),
    "cpu": Config(),
    "gpt2": Config(corpus_chars=8_000_000, val_chars=400_000, n_sft=4000, n_rm=2000, n_ppo=4000,
                   n_eval=400),
}

# Qualities of answer as close to each other as an SFT model's samples: labeler calibration.
SFT_LIKE = ("best", "garbled", "sloppy", "verbose", "incomplete")

TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"


def format_prompt(prompt: str) -> str:
    """The one instruction template (DESIGN 3); the response and then EOT follow it."""
    return TEMPLATE.format(prompt=prompt)


# ----------------------------------------------------------------------------- labelers
@dataclass
class Labeler:
    """A simulated labeler (paper 3.4): gold score + personal weights + length taste + noise."""
    name: str
    weights: dict  # personal extra weight on each component's shortfall
    length_taste: float  # utility bonus for a 40-word answer over an empty one (seed 3.2)
    temperature: float  # Plackett-Luce noise: how inconsistent this labeler is
    care: float  # chance a demonstration is this labeler's best answer
    seed: int  # which world the labeler knows

    def utility(self, prompt: str, response: str) -> float:
        total, b = score(prompt, response, make_world(self.seed))
        u = total + sum(w * (b[k] - 1.0) for k, w in self.weights.items())
        return u + self.length_taste * min(len(response.split()), 40) / 40

    def rank(self, prompt: str, responses: list[str], rng: random.Random) -> list[int]:
        """Indices best first: a Plackett-Luce sample, P ~ exp(utility / temperature).

        Sorting utility / T plus Gumbel noise draws exactly a Plackett-Luce order."""
        keys = [self.utility(prompt, r) / self.temperature
                - math.log(-math.log(rng.random() or 1e-300)) for r in responses]
        return sorted(range(len(responses)), key=lambda i: -keys[i])

    def compare(self, prompt: str, a: str, b: str, rng: random.Random) -> float:
        """1.0 if a is preferred, 0.0 if b (Bradley-Terry; continuous noise, so never a tie)."""
        return 1.0 if self.rank(prompt, [a, b], rng)[0] == 0 else 0.0

    def demonstrate(self, prompt: str, rng: random.Random) -> str:
        """A written demonstration: usually careful, sometimes sloppy, thin or slightly wrong."""
        world = make_world(self.seed)
        spec = world.parse(prompt)
        if rng.random() < self.care:
            return _respond(world, spec, "best", rng)
        flaws = ["sloppy", "incomplete", "verbose", "wrong"]
        if spec.tmpl.kind in ("refuse", "idk", "premise"):  # labelers never comply or invent
            flaws = flaws[:3]
        flaw = rng.choices(flaws, [3, 3, 2, 1.5][:len(flaws)])[0]
        if flaw == "incomplete" and spec.tmpl.kind in ("fact", "label", "number", "rewrite"):
            flaw = "sloppy"  # people leave things out, but they do not stop mid-sentence
        return _respond(world, spec, flaw, rng)


def make_labelers(cfg: Config, heldout: bool = False) -> list[Labeler]:
    """The training team, or (heldout=True) distinct people who judge the evaluations."""
    rng = random.Random(f"labelers-{cfg.seed}-{heldout}")
    n = cfg.n_heldout_labelers if heldout else cfg.n_labelers
    parts = ("helpful", "honest", "harmless", "well_formed")
    weights = [[rng.gauss(0, cfg.labeler_bias) for _ in parts] for _ in range(n)]
    # Centred per component: people differ, but each team as a whole follows the gold score
    # (uncentred, a small team's agreement would swing with its luck of the draw).
    mean = [sum(col) / n for col in zip(*weights, strict=True)]
    return [Labeler(name=f"{'heldout' if heldout else 'labeler'}-{i}",
                    weights={k: w - m for k, w, m in zip(parts, weights[i], mean, strict=True)},
                    length_taste=max(0.0, cfg.length_taste * (1 + rng.gauss(0, 0.3))),
                    temperature=cfg.labeler_noise,
                    care=min(1.0, max(0.0, cfg.demo_care + rng.gauss(0, 0.1))), seed=cfg.seed)
            for i in range(n)]


def agreement(labelers: list[Labeler], items: list[tuple[str, list[str]]],
              rng: random.Random) -> float:
    """How often two different labelers order a pair the same way (paper: 72.6 +- 1.5%)."""
    if len(labelers) < 2:
        raise ValueError("agreement needs at least two labelers")
    agree = total = 0
    for prompt, responses in items:
        for i in range(len(responses)):
            for j in range(i + 1, len(responses)):
                la, lb = rng.sample(labelers, 2)
                x = la.compare(prompt, responses[i], responses[j], rng)
                agree += x == lb.compare(prompt, responses[i], responses[j], rng)
                total += 1
    return agree / max(1, total)


# ----------------------------------------------------------------------------- I/O
class DataError(ValueError):
    """A malformed record; the message names the file, the line and the field."""


def write_jsonl(path, records) -> None:
    """One JSON object per line, written to a temporary file first, then renamed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _lines(path) -> list[tuple[int, dict]]:
    """(line number, object) pairs. Blank lines are allowed only at the end of the file."""
    out, blank = [], None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                blank = blank or lineno
                continue
            if blank:
                raise DataError(f"{path}:{blank}: blank line inside the file")
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg} "
                                f"(column {e.colno})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, "
                                f"got {type(rec).__name__}")
            out.append((lineno, rec))
    return out


def read_jsonl(path) -> list[dict]:
    return [rec for _, rec in _lines(path)]


def _get(rec: dict, name: str, typ: type, where: str, default=None):
    if name not in rec:
        if default is None:
            raise DataError(f"{where}: missing field '{name}'")
        return default
    v = rec[name]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise DataError(f"{where}: field '{name}' must be {typ.__name__}, got {type(v).__name__}")
    return v


def check_prompt(rec: dict, where: str = "record") -> dict:
    """{"prompt", "category"}; a missing category becomes "user"."""
    prompt = _get(rec, "prompt", str, where)
    if not prompt.strip():
        raise DataError(f"{where}: field 'prompt' is empty")
    return {"prompt": prompt, "category": _get(rec, "category", str, where, "user")}


def check_sft(rec: dict, where: str = "record") -> dict:
    out = check_prompt(rec, where)
    return {"prompt": out["prompt"], "response": _get(rec, "response", str, where),
            "category": out["category"]}


def check_comparison(rec: dict, where: str = "record") -> dict:
    """K = 2..9 responses (paper: 4..9; 2 is a chosen/rejected pair), ranking best first."""
    out = check_prompt(rec, where)
    responses = _get(rec, "responses", list, where)
    if not 2 <= len(responses) <= 9:
        raise DataError(f"{where}: field 'responses' must hold 2 to 9 responses, "
                        f"got {len(responses)}")
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise DataError(f"{where}: field 'responses[{i}]' must be str, got {type(r).__name__}")
    ranking = _get(rec, "ranking", list, where)
    if sorted(x if isinstance(x, int) and not isinstance(x, bool) else -1 for x in ranking) \
            != list(range(len(responses))):
        raise DataError(f"{where}: field 'ranking' must be a permutation of "
                        f"range({len(responses)}), got {ranking}")
    return {"prompt": out["prompt"], "responses": responses, "ranking": ranking,
            "category": out["category"]}


def read_prompts(path) -> list[dict]:
    return [check_prompt(r, f"{path}:{n}") for n, r in _lines(path)]


def read_sft(path) -> list[dict]:
    return [check_sft(r, f"{path}:{n}") for n, r in _lines(path)]


def read_comparisons(path) -> list[dict]:
    return [check_comparison(r, f"{path}:{n}") for n, r in _lines(path)]


# ----------------------------------------------------------------------------- converters
def from_hh_rlhf(record: dict) -> dict:
    """Anthropic HH-RLHF {"chosen", "rejected"} dialogues -> a K = 2 comparison."""
    marker, cut = "\n\nAssistant:", {}
    for key in ("chosen", "rejected"):
        text = _get(record, key, str, "record")
        i = text.rfind(marker)
        if i < 0:
            raise DataError(f"field '{key}' has no Assistant turn")
        cut[key] = (text[:i], text[i + len(marker):].strip())
    if cut["chosen"][0] != cut["rejected"][0]:
        raise DataError("fields 'chosen' and 'rejected' differ before the last Assistant turn")
    return check_comparison({"prompt": cut["chosen"][0].strip(), "ranking": [0, 1],
                             "responses": [cut["chosen"][1], cut["rejected"][1]],
                             "category": "hh-rlhf"})


def from_alpaca(record: dict) -> dict:
    """Alpaca {"instruction", "input", "output"} -> an SFT record (input after the instruction)."""
    prompt = _get(record, "instruction", str, "record")
    extra = _get(record, "input", str, "record", "")
    return check_sft({"prompt": prompt + ("\n\n" + extra if extra.strip() else ""),
                      "response": _get(record, "output", str, "record"), "category": "alpaca"})


CONVERTERS = {"hh-rlhf": from_hh_rlhf, "alpaca": from_alpaca}


def convert_file(src, dst, fmt: str) -> int:
    """Convert a JSONL (or, as Alpaca ships, a JSON array) file; returns the record count."""
    text = Path(src).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = [(f"{src}:[{i}]", r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as e:
            raise DataError(f"{src}:{e.lineno}: invalid JSON: {e.msg}") from None
    else:
        rows = [(f"{src}:{n}", r) for n, r in _lines(src)]
    out = []
    for where, r in rows:
        try:
            out.append(CONVERTERS[fmt](r))
        except DataError as e:
            raise DataError(f"{where}: {str(e).removeprefix('record: ')}") from None
    write_jsonl(dst, out)
    return len(out)


# ----------------------------------------------------------------------------- write_datasets
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
    (out / "corpus.txt").write_text(corpus, encoding="utf-8")
    (out / "corpus_val.txt").write_text(make_corpus(world, cfg.val_chars, rng("val"), **rates),
                                        encoding="utf-8")
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
        return p["prompt"], [_respond(world, world.parse(p["prompt"]), q, arng) for q in SFT_LIKE]
    items, held = [near(p) for p in sets["rm"][:600]], [near(p) for p in sets["eval"][:600]]
    demo_scores = [score(r["prompt"], r["response"], world)[0] for r in sft]
    best_scores = [score(r["prompt"], _respond(world, world.parse(r["prompt"]), "best", arng),
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


def _field_help() -> dict[str, str]:
    """--help text from the comment beside each Config field."""
    src = inspect.getsource(Config)
    return dict(re.findall(r"^\s+(\w+): [^=]+=.*?#\s*(.+)$", src, re.M))


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description="Write the default world's datasets (data.py).")
    p.add_argument("--out", help="run directory (default runs/<preset>)")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--convert", nargs=3, metavar=("FORMAT", "SRC", "DST"),
                   help=f"convert a public dataset instead ({', '.join(CONVERTERS)})")
    helps = _field_help()
    for f in dataclasses.fields(Config):
        h = f"{helps.get(f.name, '')} (cpu preset: {f.default})".replace("%", "%%")  # argparse
        p.add_argument(f"--{f.name}", type=type(f.default), help=h)
    args = p.parse_args(argv)
    if args.convert:
        fmt, src, dst = args.convert
        if fmt not in CONVERTERS:
            p.error(f"--convert FORMAT must be one of {sorted(CONVERTERS)}")
        print(f"wrote {convert_file(src, dst, fmt)} records to {dst}")
        return None
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
                 if getattr(args, f.name) is not None}
    cfg = dataclasses.replace(PRESETS[args.preset], **overrides)
    summary = write_datasets(cfg, args.out or f"runs/{args.preset}")
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
