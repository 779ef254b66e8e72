"""Reference answers of every quality: what labelers write, and what the internet says.

The paper's labelers wrote demonstrations (section 3.4) and its models' outputs ranged from
excellent to broken. Offline, every answer a simulated person writes comes from here, built
from the world's facts (facts.py) and the task behind the prompt (prompts.py):
`respond(world, spec, quality, rng)` writes the best answer or a flawed one (sloppy,
incomplete, wrong, verbose, rude, looping, "I don't know", off topic, garbled). They are the
labelers' demonstrations (labelers.py), the candidates of `sample_responses`, the few-shot
examples of `few_shot_prefix`, the Q/A pages of the corpus (corpus.py), and the world's own
answers that get the gold score's full marks (`best_response`).

Deviations from the paper:
1. Answers are written from templates over the world's facts, not by people, so that every
   one of them can be checked and the demonstrations' flaws are known.
"""

from __future__ import annotations

import random
import re

from .facts import (
    COLOURS,
    FILLERS,
    FOODS,
    HUMAN_FOODS,
    JOBS,
    NUMBERS,
    PLACES,
    RUDE_LINES,
    SAY,
    SAY_ANIMAL,
    TOWNS,
    World,
    _cap,
    _items,
    _word,
)
from .prompts import Spec, _slot_type, parse, random_spec
from .tasks import PREMISE_SLOT, TASKS_BY_CAT

QUALITIES = ["best", "sloppy", "incomplete", "wrong", "verbose", "rude", "loop", "idk", "off"]


ANSWER_FACTS = {"animal": ("home", "food", "colour", "size", "legs"),
                "person": ("town", "job", "pet", "likes"), "town": ("near", "weather")}


def _fill_answer(world: World, spec: Spec, text: str, rng: random.Random, corrupt: bool) -> str:
    """Fill a response template with the slots and the true facts about them ({home}, {pet}...);
    corrupt=True states one of those facts wrongly (the rumour if there is one)."""
    d, owner = dict(spec.slots), {}
    for key, attrs in ANSWER_FACTS.items():
        for attr in attrs:
            if key in spec.slots and attr not in d:
                d[attr], owner[attr] = world.facts[spec.slots[key], attr], spec.slots[key]
    d["name"] = f", {d['person']}" if "person" in d else ""
    used = [k for k in re.findall(r"\{(\w+)\}", text) if k in owner and k not in ("size", "legs")]
    if corrupt and used:
        attr = rng.choice(used)
        d[attr] = world.rumours.get((owner[attr], attr)) or rng.choice(
            [v for v in world.values(attr) if v != d[attr]])
    d["legs"] = _word(d["legs"]) if "legs" in d else None
    return text.format(**d)


def _best(world: World, spec: Spec, rng: random.Random, corrupt: bool = False) -> str:
    kind, meta, s = spec.tmpl.kind, spec.meta, spec.slots
    if kind == "fact" and "ans" in meta:
        if corrupt:
            typ = _slot_type(meta["ans"])
            pool = COLOURS if typ == "colour" else world.pool(typ, "eval") if typ != "food" else \
                HUMAN_FOODS
            s = dict(s, **{meta["ans"]: rng.choice([v for v in pool if v not in s.values()])})
        return meta["best"].format(**s)
    if kind == "fact":
        subj, attr = s[meta["subj"]], meta["attr"]
        v = world.facts[subj, attr]
        if corrupt:
            v = world.rumours.get((subj, attr)) or rng.choice([x for x in world.values(attr)
                                                               if x != v and x != subj])
        return world.say(subj, attr, v)
    if kind == "label":
        truth = meta.get("label") or world.facts[s[meta["subj"]], meta["attr"]]
        if corrupt:
            truth = next(x for x in meta["labels"] if x != truth)
        if "attr" in meta:
            return world.say(s[meta["subj"]], meta["attr"], truth)
        return rng.choice([_cap(truth) + ".", f"It is {truth}."])
    if kind == "number":
        c = s["a"] + s["b"] if meta["op"] == "add" else s["a"] - s["b"]
        return meta["best"].format(**s, c=c + (rng.choice([-2, -1, 1, 2]) if corrupt else 0))
    if kind in ("list", "extract"):
        typ = meta["type"]
        if kind == "list":
            members = world.members[meta["attr"], s[meta["pred"]]]
            members = [m for m in members if m not in s.values()]
            items = rng.sample(members, NUMBERS.index(s["n"]))
        else:
            items = [v for k, v in s.items() if _slot_type(k) == typ]
        if corrupt:
            pool = {"colour": COLOURS, "animal": world.animals, "person": world.people}[typ]
            items[-1] = rng.choice([v for v in pool if v not in items and v not in s.values()
                                    and (kind == "extract" or v not in members)])
        if kind == "extract":
            return _cap(", ".join(items)) + "."
        return _items(items, typ == "animal") + "."
    if kind == "compose":
        if corrupt and meta["about"] is None:  # nothing to get wrong but the request itself
            s = dict(s, **{k: rng.choice([v for v in world.pool(_slot_type(k), "eval")
                                          if v != s[k]]) for k in meta["req"]})
            spec = Spec(spec.tmpl, s, spec.heldout)
        return _fill_answer(world, spec, rng.choice(meta["best"]), rng, corrupt)
    if kind == "rewrite":
        return spec.passage if corrupt else meta["expect"].format(**s)
    if kind == "summary":
        if corrupt:  # a detail that is not in the text
            k = rng.choice([k for k in meta["req"] if _slot_type(k) in ("animal", "person")])
            pool = world.pool(_slot_type(k), "eval")
            s = dict(s, **{k: rng.choice([v for v in pool if v not in s.values()])})
        return meta["best"].format(**s)
    if kind == "chat":
        if spec.tmpl.task == "ch_ask":
            return rng.choice(meta["best"]).format(**s) + _best(world, spec.sub, rng, corrupt)
        if corrupt:  # a cold brush-off
            return rng.choice(["OK.", "So what?", "I do not care."])
        return _fill_answer(world, spec, rng.choice(meta["best"]), rng, False)
    if kind == "refuse":
        return rng.choice(meta["comply" if corrupt else "best"]).format(**s)
    if kind == "idk":
        d = dict(s, food=rng.choice(FOODS), place=rng.choice(PLACES), town=rng.choice(TOWNS),
                 job=rng.choice(JOBS))
        return (meta["fake"] if corrupt else rng.choice(meta["best"])).format(**d)
    if kind == "premise":
        a, attr = s["animal"], meta["attr"]
        v, t = s[PREMISE_SLOT[attr]], world.facts[a, attr]
        if corrupt:  # accepts the false premise
            return {"colour": f"The {a} is {v} because it likes the sun.",
                    "home": f"The {a} lives in the {v} because it is safe there.",
                    "food": f"A {a} eats {v} because it tastes good."}[attr]
        return {"colour": f"A {a} is not {v}. It is {t}.",
                "home": f"A {a} does not live in the {v}. It lives in the {t}.",
                "food": f"A {a} does not eat {v}. It eats {t}."}[attr]
    raise ValueError(kind)


def respond(world: World, spec: Spec, quality: str, rng: random.Random) -> str:
    """A response of a given quality, written the way a person (or a weak model) might."""
    kind = spec.tmpl.kind
    if quality in ("best", "wrong"):
        return _best(world, spec, rng, corrupt=quality == "wrong")
    best = _best(world, spec, rng)
    if quality == "sloppy":
        if kind == "fact" and rng.random() < 0.5:  # a bare word, no sentence
            meta, s = spec.meta, spec.slots
            v = s[meta["ans"]] if "ans" in meta else world.facts[s[meta["subj"]], meta["attr"]]
            return _word(v) if isinstance(v, int) else v
        return best[:1].lower() + best[1:].rstrip(".!?")
    if quality == "incomplete":
        if kind == "compose":
            return spec.meta["thin"].format(**spec.slots)
        if kind in ("list", "extract"):  # one item short
            return best.replace(" and ", ", ").rsplit(",", 1)[0].rstrip(".") + "."
        if kind in ("refuse", "idk", "premise", "chat"):
            return {"refuse": "No.", "idk": "Hmm.", "premise": "That is not right.",
                    "chat": "Hello."}[kind]
        words = best.split()
        return " ".join(words[:max(1, len(words) // 2)])  # cut off mid-sentence
    if quality == "verbose":
        extra = [rng.choice(FILLERS)]
        ent = next((v for k, v in spec.slots.items() if k in ("animal", "person")), None)
        if ent and kind not in ("compose", "summary", "idk", "premise"):
            attrs = [k for (e, k) in world.facts if e == ent and k in SAY and k != "water"]
            extra.append(world.say(ent, rng.choice(attrs), rng=rng))
        return best + " " + " ".join(extra)
    if quality == "garbled":  # a weak model's sample: a word or two that are no words
        words = best.split()
        for i in rng.sample(range(len(words)), min(len(words), rng.randint(1, 2))):
            w = list(words[i].lower().strip(".,!?"))
            rng.shuffle(w)
            words[i] = "".join(w[:2]) + "z" + "".join(w[2:]) + words[i][-1] * (
                words[i][-1] in ".,!?")
        return " ".join(words)
    if quality == "rude":
        return best + " " + rng.choice(RUDE_LINES)
    if quality == "loop":
        first = re.split(r"(?<=[.!?])\s", best)[0]
        return " ".join([first] * rng.randint(3, 5))
    if quality == "idk":
        return rng.choice(["I don't know.", "I am not sure.", "I do not know that."])
    if quality == "off":
        a = rng.choice([x for x in world.animals if x not in spec.slots.values()])
        return world.say(a, rng.choice(SAY_ANIMAL), rng=rng)
    raise ValueError(quality)


def sample_responses(world: World, prompt_record: dict | str, k: int,
                     rng: random.Random) -> list[str]:
    """k candidate responses of varied quality (best, sloppy, wrong, rude, looping, ...)."""
    prompt = prompt_record if isinstance(prompt_record, str) else prompt_record["prompt"]
    spec = parse(world, prompt)
    if spec is None:
        raise ValueError(f"not a prompt of this world: {prompt!r}")
    qualities = rng.sample(QUALITIES, min(k, len(QUALITIES)))
    qualities += ["best"] * (k - len(qualities))
    return [respond(world, spec, q, rng) for q in qualities]


def best_response(world: World, prompt: str, rng: random.Random) -> str:
    """The world's own answer to a prompt: what labelers write at their most careful, and what
    `score` gives its full marks. Against SFT it is the judges' ceiling (evaluate.py)."""
    spec = parse(world, prompt)
    if spec is None:
        raise ValueError(f"not a prompt of this world: {prompt!r}")
    return _best(world, spec, rng)


def few_shot_prefix(world: World, n: int) -> str:
    """n solved examples in plain Q/A style, for the base model's few-shot baseline."""
    rng = random.Random(f"fewshot-{world.seed}")
    cats = ["open_qa", "generation", "brainstorming", "other", "chat", "rewrite", "closed_qa",
            "classification", "summarization", "extraction"]
    specs = [random_spec(world, rng.choice(TASKS_BY_CAT[cats[i % len(cats)]]), "train", rng)
             for i in range(n)]
    return "".join(f"Q: {s.text}\nA: {_best(world, s, rng)}\n\n" for s in specs)

