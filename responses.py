"""responses.py: every model answers the held-out prompts, and the base and SFT models' answers
are kept for the judges (paper section 4: the outputs that the labelers then compare).

evaluate.py judges answers; this file makes them. Every model samples one answer per
held-out prompt at the evaluation temperature (`answer`): with the instruction template, as
SFT and PPO trained, or, for the base model, zero-shot and few-shot (solved Q/A examples
before the question: the paper's "GPT-3 prompted"), cut at a blank line or the next "Q:", as
a stop sequence would cut GPT-3's. SFT adds the reference points: its greedy answer, and of
n samples per prompt the one the RM picks and the one the gold score picks (`best_of_n`).
Every model also answers a probe of fresh harmful requests (`harmful_probe`), for Figure 4's
declines-harmful share: the held-out prompts hold too few of them to measure it.

The base and SFT models' answers need no PPO run, so they can be made while PPO trains:

    python evaluate.py --out runs/cpu --references_only   # -> runs/cpu/references.json

writes them with their alignment tax and a fingerprint (`fingerprint`: the settings that
change them, the device and its precision, stage.digest of every file they came from, and the
code that makes them); pipeline.py runs it beside the PPO
runs (speed only: the same answers, checked in tests/test_pipeline.py). evaluate.py takes
them from there only while the fingerprint still holds (`stored_references`); else it makes
them anew, so a stale file is never read.
"""

import functools
import hashlib
import json
import random
from dataclasses import asdict, replace
from pathlib import Path

import torch

import alignment_tax
import data
import gpt
import reward
import stage
import tokenizer as tok
import world

MAKE = {"base": "python pretrain.py --data {out}/corpus.txt --out {out}",
        "sft": "python sft.py --out {out}", "rm": "python reward.py --out {out}",
        "ppo": "python ppo.py --out {out}", "ppo_ptx": "python ppo.py --out {out} --ptx_coef 1"}
REF_MODELS = ("base", "sft")  # what every other model is compared with


def stop_at(text: str) -> tuple[str, bool]:
    """A base model's answer cut at a blank line or the next 'Q:' (deviation 2)."""
    cut = min((i for i in (text.find("\n\n"), text.find("\nQ:")) if i >= 0), default=-1)
    return (text[:cut].strip(), True) if cut >= 0 else (text.strip(), False)


def few_shot_prompt(enc, prompt: str, examples: list[str], room: int) -> tuple[str, int]:
    """As many whole solved examples as fit in `room` tokens, then the question; returns the
    text and how many examples it holds."""
    q = f"Q: {prompt}\nA:"
    for n in range(len(examples), 0, -1):
        text = "".join(examples[:n]) + q
        if len(tok.encode(enc, text)) <= room:
            return text, n
    return q, 0


@torch.no_grad()
def answer(model, enc, prompts: list[str], cfg, style: str = "template") -> list[dict]:
    """Sample one answer per raw prompt: [{"response", "ended"}]. style: "template" (the
    instruction template, as SFT trained), "zero_shot" or "few_shot" (the base model: its
    answer is cut by stop_at; each row adds "examples", the solved examples that fitted)."""
    dev = model.lm_head.weight.device
    room = model.config.block_size - cfg.max_new_tokens
    if style == "few_shot":
        examples = [e + "\n\n" for e in world.few_shot_prefix(world.make_world(),
                                                              cfg.few_shot).split("\n\n") if e]
        shots = [few_shot_prompt(enc, p, examples, room) for p in prompts]  # (text, n)
        texts = [text for text, _ in shots]
    else:
        texts = [data.format_prompt(p) for p in prompts]
    gen = torch.Generator(dev).manual_seed(cfg.seed)
    rows = []
    for s in range(0, len(texts), cfg.batch_size):
        ids, _ = gpt.encode_prompts(enc, texts[s:s + cfg.batch_size], model.config.block_size,
                                    cfg.max_new_tokens)
        with stage.autocast(dev.type, cfg.dtype, sampling=True):
            tokens, _, resp = model.generate(ids, cfg.max_new_tokens, cfg.temperature,
                                             eot_id=enc.eot_token, generator=gen)
        for text, ended in gpt.decode_responses(enc, tokens, resp):
            if style != "template":
                text, cut = stop_at(text)
                ended = ended or cut
            rows.append({"response": text, "ended": ended})
    if style == "few_shot":  # how many solved examples each prompt had room for
        for row, (_, n) in zip(rows, shots, strict=True):
            row["examples"] = n
    return rows


def best_of(scores: list[list[float]]) -> list[int]:
    """scores[s][i]: sample s's score for prompt i -> per prompt, the index of the best sample
    (the first of equals)."""
    return [max(range(len(scores)), key=lambda s: scores[s][i]) for i in range(len(scores[0]))]


def best_of_n(model, enc, prompts: list[str], cfg, rm=None,
              judge=world.score) -> tuple[dict, list]:
    """The best-of-n reference points: cfg.best_of samples per prompt (seeds cfg.seed + 1, ...,
    so no sample is the SFT answer it is judged against), and the one chosen by the gold score
    and, given an RM, by the RM. Returns the chosen answers per key, and per prompt its distinct
    samples as (RM score, gold score, the gold score's breakdown), what evaluate.rm_by_fault
    reads ([] without an RM). judge: world.score, or a cache of it that evaluate shares, so
    that a chosen answer is not judged twice."""
    pools = [answer(model, enc, prompts, replace(cfg, seed=cfg.seed + 1 + s))
             for s in range(cfg.best_of)]
    texts = [[r["response"] for r in rows] for rows in pools]
    judged = [[judge(p, t) for p, t in zip(prompts, ts, strict=True)] for ts in texts]
    by = {"sft_best_of_n_gold": [[g for g, _ in row] for row in judged]}
    groups = []
    if rm is not None:
        by["sft_best_of_n_rm"] = [reward.score_batch(rm, enc, prompts, ts, cfg.batch_size,
                                                     cfg.dtype).tolist() for ts in texts]
        groups = [list({texts[s][i]: (by["sft_best_of_n_rm"][s][i], *judged[s][i])
                        for s in range(len(pools))}.values())
                  for i in range(len(prompts))]  # distinct answers per prompt
    return {key: [pools[s][i] for i, s in enumerate(best_of(scores))]
            for key, scores in by.items()}, groups


PROMPT_SETS = ("sft.jsonl", "rm_prompts.jsonl", "prompts.jsonl", "eval_prompts.jsonl")


def harmful_probe(out: Path, n: int) -> list[str]:
    """n harmful requests for Figure 4's declines-harmful share, none of them in any prompt set
    of out/: of the held-out split (held-out entities or phrasings, as eval_prompts.jsonl's),
    drawn by the world with a fixed seed, so every run of a world gets the same probe. The
    held-out prompts hold 5% harmful requests, 15 of 300: a share of 15 has a 95% interval of
    about +-20 points, wider than any difference between models (docs/EXPERIMENTS.md)."""
    if n < 1:
        return []
    taken = {r["prompt"] for f in PROMPT_SETS if (out / f).exists()
             for r in data.read_jsonl(out / f)}
    return [r["prompt"] for r in world.generate_prompts(
        world.make_world(), n, "eval", random.Random("harmful-probe"), taken, harmful=1.0,
        unknowable=0.0)]


def inputs(out: Path):
    """(encoding, held-out prompts, held-out text or None, cloze items) of a run directory
    that holds at least sft.pt."""
    if not (out / "sft.pt").exists():
        raise FileNotFoundError(f"{out}/sft.pt not found; it is made by: {MAKE['sft']}")
    ck = stage.load_checkpoint(out / "sft.pt", MAKE["sft"].format(out=out))
    enc = stage.load_encoding(out, ck["tokenizer"])
    make_data = f"python -m world --out {out}"
    prompts = data.read_prompts(stage.need(out / "eval_prompts.jsonl", make_data))
    val_text = data.read_text(out / "corpus_val.txt") \
        if (out / "corpus_val.txt").exists() else None
    cloze = data.read_jsonl(out / "cloze.jsonl") if (out / "cloze.jsonl").exists() else []
    return enc, prompts, val_text, cloze


def model_answers(name, model, enc, texts, cfg, rm, judge, val_text, cloze, probe=()):
    """One model's answers by key (the base model's zero- and few-shot ones; SFT's with its
    reference points), its answers to the harmful probe by key (its own styles only), its
    alignment tax, and SFT's best-of-n groups (best_of_n)."""
    styles = {"base": "zero_shot", "base_few_shot": "few_shot"} if name == "base" \
        else {name: "template"}
    answers = {key: answer(model, enc, texts, cfg, style) for key, style in styles.items()}
    probed = {key: answer(model, enc, list(probe), cfg, style) for key, style in styles.items()
              } if probe else {}
    groups = []
    if name == "sft" and cfg.temperature > 0:  # a reference point: sharpening alone
        answers["sft_greedy"] = answer(model, enc, texts, replace(cfg, temperature=0.0))
    if name == "sft" and cfg.temperature > 0 and cfg.best_of > 1:  # selection alone
        picks, groups = best_of_n(model, enc, texts, cfg, rm, judge)
        answers.update(picks)
    tax = alignment_tax.measure(model, enc, val_text, cloze, cfg.n_tax_windows, cfg.batch_size)
    loss, cloze_acc = tax["heldout_loss"], tax["cloze_acc"]
    print(f"  {name}: answered {len(texts)} prompts; held-out loss "
          f"{'n/a' if loss is None else f'{loss:.3f}'}, cloze "
          f"{'n/a' if cloze_acc is None else f'{cloze_acc:.1%}'}", flush=True)
    return answers, probed, tax, groups


# ----------------------------------------------------------------------------- references
REFERENCES = "references.json"
REFERENCE_READS = ("tokenizer.tiktoken", "base.pt", "sft.pt", "rm.pt", "corpus_val.txt",
                   "cloze.jsonl", *PROMPT_SETS)  # the prompt sets: the probe avoids them


CODE = [p for p in sorted(Path(__file__).parent.glob("*.py")) if p.name != "pipeline.py"] \
    + sorted((Path(__file__).parent / "world").glob("*.py"))  # what the answers are made by


def fingerprint(cfg) -> dict:
    """What base's and SFT's answers are made from: every setting that changes them (not
    where the run directory is, who judges them or how many are shown), the device and its
    precision, what every file they read holds (stage.digest: a checkpoint by its model, as
    the pipeline sees it; None for a file that is absent), and the code (an edit to the
    sampling, the few-shot prompt or the gold score makes them anew)."""
    device = stage.pick_device(cfg.device)
    bf16 = stage.uses_bf16(device, cfg.dtype)
    skip = ("out", "device", "references_only", "preset", "n_side_by_side")
    code = hashlib.sha256(b"".join(p.read_bytes() for p in CODE)).hexdigest()[:16]
    return {"settings": {k: v for k, v in asdict(cfg).items() if k not in skip},
            "device": [device, "bf16" if bf16 else "fp32"], "code": code,
            "files": {f: stage.digest(Path(cfg.out) / f) for f in REFERENCE_READS}}


def answer_references(out: Path, enc, texts, cfg, rm, judge, val_text, cloze, device,
                      probe=()) -> dict:
    """{"answers", "probe", "tax", "rm_groups"} of the base and SFT models present in out/: their
    answers by key, their answers to the harmful probe by key, their alignment tax, and SFT's
    best-of-n groups."""
    refs = {"answers": {}, "probe": {}, "tax": {}, "rm_groups": []}
    for name in [n for n in REF_MODELS if (out / f"{n}.pt").exists()]:
        a, p, refs["tax"][name], groups = model_answers(
            name, load(out, name, enc, device)[0], enc, texts, cfg, rm, judge, val_text, cloze,
            probe)
        refs["answers"].update(a)
        refs["probe"].update(p)
        refs["rm_groups"] = groups or refs["rm_groups"]
    return refs


@stage.locked  # one run at a time per run directory
def references(cfg) -> dict:
    """answer_references, written to out/REFERENCES with their fingerprint; returns what it
    wrote."""
    out, device = Path(cfg.out), stage.pick_device(cfg.device)
    stamp = fingerprint(cfg)
    enc, prompts, val_text, cloze = inputs(out)
    texts = [p["prompt"] for p in prompts[:cfg.n_prompts or None]]
    rm = reward.load_reward_model(out / "rm.pt", enc, device)[0] \
        if (out / "rm.pt").exists() else None
    refs = {**stamp, **answer_references(out, enc, texts, cfg, rm, functools.cache(world.score),
                                         val_text, cloze, device,
                                         harmful_probe(out, cfg.n_harmful_probe))}
    data.write_atomic(out / REFERENCES, lambda t: t.write_text(json.dumps(refs)))
    return refs


def stored_references(cfg) -> dict | None:
    """out/references.json if it was made from this run directory's files as they are now and
    with cfg's settings; else None (and a line saying why, when there is one)."""
    path = Path(cfg.out) / REFERENCES
    if cfg.references_only or not path.exists():
        return None
    try:
        refs = json.loads(path.read_text())
    except ValueError:
        refs = None
    if not isinstance(refs, dict) or any(refs.get(k) != v for k, v in fingerprint(cfg).items()):
        print(f"  {path} was made from other files or settings: not used")
        return None
    return refs


def load(out: Path, name: str, enc, device):
    """(model in eval mode, its PPO ptx_coef or None, its log records or None) from
    out/<name>.pt: a checkpoint holds the log of the run that made it."""
    make = MAKE.get(name, MAKE["ppo"]).format(out=out)
    model, ck = stage.load_model(out / f"{name}.pt", make, enc, device)
    return model.eval(), ck.get("train_config", {}).get("ptx_coef"), ck.get("log")
