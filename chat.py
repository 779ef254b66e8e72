"""chat.py: talk to the models of a run directory, side by side.

Type an instruction; SFT, PPO and PPO-ptx answer it in the prompt template (data.TEMPLATE),
each answer shown with the reward model's score and, for prompts about the default world, the
gold score and the flags of its breakdown (world/gold.py: what the simulated labelers judge). It is
the paper's comparison of Figure 1 for one prompt at a time: does RLHF change what the model says?

    python chat.py --out runs/cpu                        # interactive; an empty line quits
    python chat.py --out runs/cpu --prompt "What does a fox eat?"
    python chat.py --out runs/cpu --models base,sft,ppo --temperature 1 --samples 3
"""

import argparse
import sys
from pathlib import Path

import torch

import evaluate
import reward
import stage
import tokenizer as tok
import world


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
                  f"{evaluate.MAKE.get(n, evaluate.MAKE['ppo']).format(out=out)})")
            continue
        models[n], ck = stage.load_model(path, evaluate.MAKE.get(n, evaluate.MAKE["ppo"])
                                         .format(out=out), device=device)
        enc = enc or stage.load_encoding(out, ck["tokenizer"])  # the first names the run's
        if ck["tokenizer"] != tok.tokenizer_id(enc):
            raise SystemExit(f"{path} uses tokenizer {ck['tokenizer']}, the run's others "
                             f"{tok.tokenizer_id(enc)}: two runs are mixed in {out}/")
        models[n].eval()
    rm = reward.load_reward_model(out / "rm.pt", enc, device)[0] if (out / "rm.pt").exists() \
        else None
    return models, enc, rm


def reply(models: dict, enc, rm, prompt: str, temperature: float = 0.0,
          max_new_tokens: int = 64, samples: int = 1, seed: int = 0) -> list[dict]:
    """Every model's answer(s) to one prompt: [{"model", "response", "rm", "gold", "notes"}]."""
    rows = []
    for name, model in models.items():
        cfg = evaluate.Config(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        style = "zero_shot" if name == "base" else "template"
        for a in evaluate.answer(model, enc, [prompt] * samples, cfg, style):
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
    ap.add_argument("--out", default="runs/cpu", help="run directory")
    ap.add_argument("--models", default="sft,ppo,ppo_ptx", help="checkpoints to ask")
    ap.add_argument("--prompt", default="", help="answer this one prompt and stop")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    ap.add_argument("--samples", type=int, default=1, help="answers per model")
    ap.add_argument("--max_new_tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    models, enc, rm = load(Path(a.out), [n for n in a.models.split(",") if n],
                           stage.pick_device())
    ask = dict(temperature=a.temperature, max_new_tokens=a.max_new_tokens, samples=a.samples,
               seed=a.seed)
    if a.prompt:
        print(show(reply(models, enc, rm, a.prompt, **ask)))
        return
    print(f"{', '.join(models)} from {a.out}/ are listening; an empty line quits.")
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
