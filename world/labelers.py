"""The labelers: about 40 people who wrote demonstrations and ranked outputs, simulated.

The paper's data came from a team of about 40 labelers (section 3.4) who wrote demonstrations
for SFT and ranked K = 4..9 model outputs for the reward model; held-out labelers, who never
labelled training data, judged the evaluations. They agreed with each other on 72.6 +- 1.5% of
pairs (training labelers) and 77.3 +- 1.3% (held-out). Ours: each labeler is the gold score
(gold.py) plus personal weights on its components, a mild taste for length, and noise. A
ranking is a Plackett-Luce sample, so two labelers disagree as people do; the noise is
calibrated so that two of them agree on about 73% of pairs of SFT-like answers.

    labeler.rank(prompt, responses, rng)     indices best first (reward.py's comparisons)
    labeler.compare(prompt, a, b, rng)       1.0 if a is preferred (evaluate.py's win rates)
    labeler.demonstrate(prompt, rng)         a written demonstration (sft.jsonl)
    agreement(labelers, items, rng)          how often two labelers order a pair alike

Deviations from the paper:
1. Simulated labelers: the gold score plus personal weights and a Plackett-Luce temperature,
   calibrated to the paper's inter-labeler agreement on pairs of SFT-like answers (answers of
   every quality are easier to order); no humans offline.
2. A team of 8 training and 4 held-out labelers by default (paper: about 40).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .answers import respond
from .facts import make_world
from .gold import score
from .prompts import parse


@dataclass
class Labeler:
    """A simulated labeler (paper 3.4): gold score + personal weights + length taste + noise."""
    name: str
    weights: dict  # personal extra weight on each component's shortfall
    length_taste: float  # utility bonus for a 40-word answer over an empty one
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
        spec = parse(world, prompt)
        if rng.random() < self.care:
            return respond(world, spec, "best", rng)
        flaws = ["sloppy", "incomplete", "verbose", "wrong"]
        if spec.tmpl.kind in ("refuse", "idk", "premise"):  # labelers never comply or invent
            flaws = flaws[:3]
        flaw = rng.choices(flaws, [3, 3, 2, 1.5][:len(flaws)])[0]
        if flaw == "incomplete" and spec.tmpl.kind in ("fact", "label", "number", "rewrite"):
            flaw = "sloppy"  # people leave things out, but they do not stop mid-sentence
        return respond(world, spec, flaw, rng)


def make_labelers(cfg, heldout: bool = False) -> list[Labeler]:
    """The training team, or (heldout=True) distinct people who judge the evaluations; cfg is
    the world's Config (datasets.py), whose labeler fields set who they are."""
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
