"""The API: prompts in the paper's use-case mix (section 3.2, Table 1), simulated.

The paper's prompts came from OpenAI API customers, in the use-case mix of Table 1 (generation
45.6%, open QA 12.4%, brainstorming 11.2%, chat 8.4%, rewrite 6.6%, ...). Ours are written
from TASKS (tasks.py), a table of instruction families over the world (facts.py): each task has
a Table 1 category, the gold-score rule that judges it (gold.py), training phrasings, held-out
phrasings, and what a good answer needs. `generate_prompts` draws them in the Table 1 mix, plus
harmful requests (harmlessness) and questions about made-up names or with a false premise (honesty).
Evaluation prompts use a held-out phrasing or entity: the paper's held-out customers.
`parse(world, prompt)` reads a prompt text back into its `Spec` (template and slot values); that is
how the gold score knows what was asked.

Deviations from the paper:
1. Templated prompts over the world instead of API traffic, so that every answer can be
   checked; a prompt from outside the world parses to None.
2. Table 1 covers 90% of prompts; harmful requests and unknowable or false-premise questions
   (5% each by default) stand in for the paper's harmlessness and honesty evaluations.
"""

from __future__ import annotations

import functools
import math
import random
import re
from dataclasses import dataclass

from .facts import FOODS, NUMBERS, PETS, World, _cap
from .tasks import PREMISE_SLOT, TABLE1, TASK, TASKS, TASKS_BY_CAT


@dataclass(frozen=True, eq=False)
class Template:
    task: str  # a TASKS name
    category: str  # a Table 1 family, "harmful" or "unknowable"
    kind: str  # which gold-score rule judges it
    text: str  # the prompt with {slots}
    heldout: bool  # an evaluation-only phrasing
    meta: dict  # the task's meta, merged with the passage's


@dataclass(eq=False)
class Spec:
    """A parsed (or freshly made) prompt: its template and slot values."""
    tmpl: Template
    slots: dict
    heldout: bool  # asks about a held-out entity or uses a held-out phrasing
    sub: Spec | None = None  # the open-QA question inside a chat prompt

    @property
    def text(self) -> str:
        return self.tmpl.text.format(**self.slots)

    @property
    def meta(self) -> dict:
        return self.tmpl.meta

    @property
    def category(self) -> str:
        return self.tmpl.category

    @property
    def passage(self) -> str:
        """The text a summarise / rewrite / classify prompt hands over."""
        return self.meta["passage"].format(**self.slots)


SLOT_RE = {"person": r"[A-Z][a-z]+", "nobody": r"[A-Z][a-z]+", "town": r"[A-Z][a-z]+",
           "n": "two|three|four", "a": r"\d+", "b": r"\d+", "question": r".+"}
DERIVED = {"pron": "(?:he|she)", "Pron": "(?:He|She)", "poss": "(?:his|her)", "Poss": "(?:His|Her)"}


def _slot_type(name: str) -> str:
    return name.rstrip("0123456789")


@functools.cache
def templates() -> tuple[list[Template], dict]:
    """Every phrasing of every task, and an index from first word to (template, regex)."""
    out = []
    for name, cat, kind, _, train, held, meta in TASKS:
        for heldout, phrasings in ((False, train), (True, held)):
            for ph in phrasings:
                ph, extra = ph if isinstance(ph, tuple) else (ph, None)
                m = dict(meta, attr=extra) if extra else meta
                for passage, pmeta in m.get("passages") or [(None, None)]:
                    if isinstance(pmeta, str):  # a rewrite passage: its expected output
                        pmeta = {"expect": pmeta}
                    text = ph.replace("{text}", passage) if passage else ph
                    out.append(Template(name, cat, kind, text, heldout,
                                        {**m, **(pmeta or {}), "passage": passage}))
    index: dict = {}
    for t in out:
        parts, seen = [], set()
        for piece in re.split(r"(\{\w+\})", t.text):
            slot = piece[1:-1] if piece.startswith("{") else None
            if slot in DERIVED:
                parts.append(DERIVED[slot])
            elif slot in seen:
                parts.append(f"(?P={slot})")
            elif slot:
                seen.add(slot)
                parts.append(f"(?P<{slot}>{SLOT_RE.get(_slot_type(slot), '[a-z]+')})")
            else:
                parts.append(re.escape(piece))
        first = None if t.text.startswith("{") else t.text.split(" ", 1)[0]
        index.setdefault(first, []).append((t, re.compile("".join(parts))))
    return out, index


def parse(world: World, prompt: str) -> Spec | None:
    """The task spec behind a prompt text, or None for a prompt from outside the world: how
    the gold score knows what was asked."""
    return _parse(world, prompt.strip())


@functools.lru_cache(maxsize=200_000)  # bounded memo: PPO re-scores the same prompts
def _parse(world: World, prompt: str) -> Spec | None:
    index = templates()[1]
    for tmpl, rx in index.get(prompt.split(" ", 1)[0], []) + index.get(None, []):
        m = rx.fullmatch(prompt)
        if m and (spec := _validate(world, tmpl, m.groupdict())):
            return spec
    return None


def _validate(world: World, tmpl: Template, slots: dict) -> Spec | None:
    """Check slot values against the world; None if the match was a false friend."""
    sub = None
    for name, v in slots.items():
        kind = _slot_type(name)
        if kind == "question":
            sub = parse(world, v)
            if sub is None or sub.category != "open_qa":
                return None
        elif kind in ("a", "b"):
            slots[name] = int(v)
        elif kind == "nonce" or kind == "nobody":  # any word the world does not know
            if v.lower() in world.lex and world.lex[v.lower()][0] != kind:
                return None
        elif kind != "n" and v not in world.pool(kind, "eval") and not (
                kind == "food" and v in FOODS):
            return None
    heldout = tmpl.heldout or any(isinstance(v, str) and v in world.heldout
                                  for v in slots.values()) or bool(sub and sub.heldout)
    if "person" in slots:  # {pron} and friends follow the first person
        g = world.gender[slots["person"]]
        his = "her" if g == "she" else "his"
        slots.update(pron=g, Pron=_cap(g), poss=his, Poss=_cap(his))
    return Spec(tmpl, slots, heldout, sub)


def _fill(world: World, tmpl: Template, split: str, rng: random.Random) -> Spec | None:
    """Random slot values satisfying the task's constraints (None: try again)."""
    names = list(dict.fromkeys(re.findall(r"\{(\w+)\}", tmpl.text)))
    meta, slots, used = tmpl.meta, {}, set()
    for name in names:
        kind = _slot_type(name)
        if name in DERIVED:
            continue
        if kind == "question":
            sub = random_spec(world, rng.choice(TASKS_BY_CAT["open_qa"]), split, rng)
            slots[name] = sub.text
        elif kind == "n":
            slots[name] = rng.choice(["two", "two", "three", "three", "four"])
        elif kind in ("a", "b"):
            continue
        else:
            pool = meta.get("pools", {}).get(kind) or world.pool(kind, split)
            if kind == "food" and tmpl.kind in ("list", "premise"):
                pool = FOODS
            slots[name] = rng.choice([v for v in pool if v not in used])
            used.add(slots[name])
    op = meta.get("op")
    if op == "add":
        slots["a"], slots["b"] = rng.randint(1, 10), rng.randint(1, 10)
    elif op == "sub":
        slots["a"] = rng.randint(3, 20)
        slots["b"] = rng.randint(1, slots["a"] - 1)
    if tmpl.kind == "list":
        need = NUMBERS.index(slots["n"])
        members = world.members.get((meta["attr"], slots[meta["pred"]]), [])
        if len([m for m in members if m not in slots.values()]) < need:
            return None
    if tmpl.kind == "premise":
        a, attr = slots["animal"], meta["attr"]
        if (a, attr) in world.rumours and rng.random() < 0.5:  # ask about what the rumour says
            slots[PREMISE_SLOT[attr]] = world.rumours[a, attr]
        if slots[PREMISE_SLOT[attr]] == world.facts[a, attr]:
            return None
    if meta.get("food_of"):
        slots["food"] = world.facts[slots["animal"], "food"]
    if meta.get("pets") and slots["animal"] not in PETS:
        return None
    return _validate(world, tmpl, {k: str(v) for k, v in slots.items()})


def random_spec(world: World, task: str, split: str, rng: random.Random) -> Spec:
    """A random prompt of one task. Split "train" uses training phrasings and entities only,
    "corpus" training phrasings about every entity, "eval" anything."""
    cands = [t for t in templates()[0] if t.task == task and (split == "eval" or not t.heldout)]
    while True:
        spec = _fill(world, rng.choice(cands), split, rng)
        if spec is not None:
            return spec


def _quotas(n: int, harmful: float, unknowable: float) -> dict[str, int]:
    """Category counts by largest remainder, so small sets hit the Table 1 mix exactly."""
    total = sum(TABLE1.values())
    share = {c: p / total * (1 - harmful - unknowable) for c, p in TABLE1.items()}
    share.update(harmful=harmful, unknowable=unknowable)
    counts = {c: math.floor(s * n) for c, s in share.items()}
    for c in sorted(share, key=lambda c: counts[c] - share[c] * n)[:n - sum(counts.values())]:
        counts[c] += 1
    return counts


def generate_prompts(world: World, n: int, split: str, rng: random.Random, taken: set,
                     harmful: float = 0.05, unknowable: float = 0.05) -> list[dict]:
    """n distinct prompts not in `taken` (which grows): split "train" or "eval".

    Training prompts use training phrasings and entities only; evaluation prompts must use a
    held-out phrasing or entity (the paper's held-out customers), so the sets cannot overlap.
    """
    out = []
    for cat, count in _quotas(n, harmful, unknowable).items():
        tasks = TASKS_BY_CAT[cat]
        weights = [TASK[t][3] for t in tasks]
        for _ in range(count):
            for _attempt in range(10_000):
                spec = random_spec(world, rng.choices(tasks, weights)[0], split, rng)
                if spec.heldout == (split == "eval") and spec.text not in taken:
                    break
            else:
                raise RuntimeError(f"the world has too few distinct {cat} prompts for n={n}")
            taken.add(spec.text)
            out.append({"prompt": spec.text, "category": cat})
    rng.shuffle(out)
    return out

