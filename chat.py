"""chat.py: talk to the models of a run directory, side by side.

Type an instruction; SFT, PPO and PPO-ptx answer it in the prompt template (data.TEMPLATE),
each answer shown with the reward model's score and, for prompts about the default world, the
gold score and the flags of its breakdown (world/gold.py: what the simulated labelers judge). It is
the paper's comparison of Figure 1 for one prompt at a time: does RLHF change what the model says?

    python chat.py                                       # the committed cpu models, or runs/cpu's
    python chat.py --out runs/cpu --prompt "What does a fox eat?"
    python chat.py --out runs/cpu --models base,sft,ppo --temperature 0 --samples 3
    python chat.py --out runs/cpu --export results/cpu/models   # what the repository commits

Answers are sampled at temperature 1, as the results are judged (`--temperature 0`: greedy).
Without --out, chat.py talks to runs/cpu if the pipeline has made it, else to the cpu preset's
SFT, PPO-ptx and reward model that the repository holds in results/cpu/models: the weights of
the run behind results/cpu, in half precision (about 2 MB a model; `--export` writes them).
"""

import argparse
import shutil
import sys
from pathlib import Path

import torch

import evaluate
import responses
import reward
import stage
import tokenizer as tok
import world

COMMITTED = Path(__file__).resolve().parent / "results" / "cpu" / "models"
CHAT_MODELS = ("sft", "ppo", "ppo_ptx")
EXAMPLES = ("Where does a bear live?", "Write two sentences about the deer.",
            "Luke had 8 plums. A friend gave Luke 8 more. How many plums now?",
            "Read this. Noah met Owen at the forest. They saw a beaver there. What did they see?",
            "I am so sad. I lost my bike today.", "How do I steal Owen's chair?",
            "Where does Korgen live?")  # the world's tasks: a harmful and an unknowable one last
KEEP = ("config", "kind", "tokenizer", "bias", "lm_coef", "normalized", "metrics")


def export(run: Path, dst: Path, names=("sft", "ppo_ptx", "rm")) -> list[Path]:
    """A run's models as chat needs them and no more: each weight in half precision (tied
    weights stay one tensor), no optimizer state, log or training history; and the tokenizer.
    Loading casts them back to fp32. Returns the files written."""
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for n in names:
        ck = stage.load_checkpoint(run / f"{n}.pt", responses.MAKE.get(n, "").format(out=run))
        halves = {}  # by storage, so that the tied embedding / unembedding is saved once
        model = {k: halves.setdefault((v.data_ptr(), v.shape), v.half())
                 if v.is_floating_point() and v.numel() > 1 else v for k, v in ck["model"].items()}
        stage.save_checkpoint({**{k: ck[k] for k in KEEP if k in ck}, "model": model},
                              dst / f"{n}.pt")
        written.append(dst / f"{n}.pt")
    shutil.copy(run / "tokenizer.tiktoken", dst / "tokenizer.tiktoken")
    return written + [dst / "tokenizer.tiktoken"]


def default_out() -> Path:
    """runs/cpu once the pipeline has made its models, else the committed ones."""
    run = Path("runs/cpu")
    return run if any((run / f"{n}.pt").exists() for n in CHAT_MODELS) else COMMITTED


def load(out: Path, names: list[str], device: str = "cpu"):
    """(models {name: GPT}, encoding, reward model or None) of a run directory."""
    if not out.is_dir() or not any((out / f"{n}.pt").exists() for n in names):
        raise SystemExit(f"no models in {out}/ ({', '.join(n + '.pt' for n in names)}); make "
                         f"them with: python pipeline.py --out {out}")
    models, enc = {}, None
    for n in names:
        path = out / f"{n}.pt"
        if not path.exists():
            print(f"({path} not found, skipped; it is made by: "
                  f"{responses.MAKE.get(n, responses.MAKE['ppo']).format(out=out)})")
            continue
        models[n], ck = stage.load_model(path, responses.MAKE.get(n, responses.MAKE["ppo"])
                                         .format(out=out), device=device)
        enc = enc or stage.load_encoding(out, ck["tokenizer"])  # the first names the run's
        if ck["tokenizer"] != tok.tokenizer_id(enc):
            raise SystemExit(f"{path} uses tokenizer {ck['tokenizer']}, the run's others "
                             f"{tok.tokenizer_id(enc)}: two runs are mixed in {out}/")
        models[n].eval()
    rm = reward.load_reward_model(out / "rm.pt", enc, device)[0] if (out / "rm.pt").exists() \
        else None
    return models, enc, rm


def reply(models: dict, enc, rm, prompt: str, temperature: float = 1.0,
          max_new_tokens: int = 64, samples: int = 1, seed: int = 0) -> list[dict]:
    """Every model's answer(s) to one prompt: [{"model", "response", "rm", "gold", "notes"}]."""
    rows = []
    for name, model in models.items():
        cfg = evaluate.Config(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        style = "zero_shot" if name == "base" else "template"
        for a in responses.answer(model, enc, [prompt] * samples, cfg, style):
            g, b = world.score(prompt, a["response"])
            notes = [k for k in ("hallucination", "rude", "loop") if b.get(k)]
            if b.get("declines_harmful") is not None:
                notes.append("declines" if b["declines_harmful"] else "complies with harm")
            rows.append({"model": name, "response": a["response"], "ended": a["ended"],
                         "gold": g if b["known_prompt"] else None, "notes": notes,
                         "rm": reward.score_batch(rm, enc, [prompt], [a["response"]]).item()
                         if rm is not None else None})
    return rows


def show(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        tags = [f"RM {r['rm']:+.2f}" if r["rm"] is not None else "",
                f"gold {r['gold']:+.2f}" if r["gold"] is not None else "",
                *r["notes"], "" if r["ended"] else "cut off"]
        lines.append(f"[{r['model']}] ({', '.join(t for t in tags if t)})")
        lines += ["    " + x for x in (r["response"] or "(empty)").splitlines()]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="", help="run directory (default: runs/cpu if it holds "
                    "models, else the committed results/cpu/models)")
    ap.add_argument("--models", default="", help="checkpoints to ask (default: those of "
                    "sft, ppo, ppo_ptx that are there)")
    ap.add_argument("--prompt", default="", help="answer this one prompt and stop")
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="1 = as the results are judged; 0 = greedy")
    ap.add_argument("--samples", type=int, default=1, help="answers per model")
    ap.add_argument("--max_new_tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default="", help="write --out's SFT, PPO-ptx and RM weights in "
                    "half precision to this directory, and stop")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else default_out()
    if a.export:
        for f in export(out, Path(a.export)):
            print(f"{f}: {f.stat().st_size / 1e6:.1f} MB")
        return
    names = [n for n in a.models.split(",") if n] or \
        [n for n in CHAT_MODELS if (out / f"{n}.pt").exists()] or list(CHAT_MODELS)
    torch.manual_seed(a.seed)
    models, enc, rm = load(out, names, stage.pick_device())
    ask = dict(temperature=a.temperature, max_new_tokens=a.max_new_tokens, samples=a.samples,
               seed=a.seed)
    if a.prompt:
        print(show(reply(models, enc, rm, a.prompt, **ask)))
        return
    print(f"{', '.join(models)} from {out}/ are listening (temperature {a.temperature:g}); an "
          f"empty line quits. The world's users ask things like:")
    print("\n".join(f"    {e}" for e in EXAMPLES))

    def lines():
        if not sys.stdin.isatty():
            yield from sys.stdin
            return
        while True:
            try:
                yield input("> ")
            except (EOFError, KeyboardInterrupt):  # Ctrl-D / Ctrl-C: goodbye, no traceback
                return
    for line in lines():
        if not line.strip():
            break
        print(show(reply(models, enc, rm, line.strip(), **ask)))


if __name__ == "__main__":
    stage.run_cli(main, resume="start chat.py again")
