"""The internet: the simulated world's pretraining text and a cloze task.

InstructGPT starts from GPT-3, pretrained on internet text, and measures what RLHF costs on
public NLP tasks, the "alignment tax" (paper 4.2, Fig. 28/29), which PPO-ptx (Eq. 2) pays back
by mixing pretraining gradients into PPO. Our internet is documents about the world (facts.py):
facts in varied phrasings, short stories, dialogues, Q/A pages, lists and sums; a few carry a
rude line or a false rumour, as on the real internet, so the base model is not helpful, honest
and harmless by itself. It never uses the instruction template. Held-out text (corpus_val.txt)
and a cloze task over facts (cloze.jsonl, our public NLP task) measure the tax.

Deviations from the paper:
1. Written, not crawled: a few million characters (GPT-3: 300B tokens) from the world's facts
   and from the same phrasings and best answers the API and the labelers use (prompts.py,
   answers.py), so that a tiny GPT knows the world's language before it sees an instruction.
2. The public NLP task is a four-way cloze over the world's facts, scored by log-prob.
"""

from __future__ import annotations

import random

from .answers import respond
from .facts import EOT, OBJECTS, RUDE_LINES, SAY_ANIMAL, THINGS, TOWNS, World, _cap, _items
from .prompts import random_spec
from .tasks import TASKS_BY_CAT


def _document(world: World, rng: random.Random, rude_rate: float, rumour_rate: float) -> str:
    """One pretraining document. It never uses the instruction template."""
    kind = rng.choices(["animal", "person", "town", "story", "dialogue", "quiz", "list", "math"],
                       [18, 14, 5, 20, 12, 10, 9, 8])[0]
    if kind in ("animal", "person", "town"):
        ent = rng.choice({"animal": world.animals, "person": world.people, "town": TOWNS}[kind])
        attrs = {"animal": ["home", "food", "colour", "legs", "size"], "town": ["near", "weather"],
                 "person": ["town", "job", "pet", "likes", "friend"]}[kind]
        lines = [world.say(ent, a, rng=rng) for a in rng.sample(attrs, rng.randint(2, len(attrs)))]
        if kind == "town":
            lines.append(f"{_items(world.members['town', ent][:3], False)} live in {ent}.")
        intro = rng.choice(["", f"All about {world.plural.get(ent, ent)}.\n", f"Facts: {ent}.\n"])
        text = intro + rng.choice([" ", "\n"]).join(lines)
    elif kind == "story":  # stories, notes and poems are what generation tasks ask for
        task = rng.choice(["g_story", "g_find", "g_visit", "g_poem", "g_note", "g_person",
                           "c_sentiment", "s_passage"])
        if task == "c_sentiment":
            spec = random_spec(world, "c_sentiment", "corpus", rng)
            feel = spec.meta["label"]
            text = f"{spec.passage} {spec.slots['Pron']} was {feel}."
        elif task == "s_passage":
            text = random_spec(world, "s_summary", "corpus", rng).passage
        else:
            text = respond(world, random_spec(world, task, "corpus", rng), "best", rng)
    elif kind == "dialogue":
        p, q = rng.sample(world.people, 2)
        a = rng.choice(world.animals)
        attr = rng.choice(["home", "food", "colour"])
        question = {"home": f"Where does the {a} live?", "food": f"What does the {a} eat?",
                    "colour": f"What colour is the {a}?"}[attr]
        lines = [f"{p}: Hello, {q}! How are you?", f"{q}: I am well, thank you. And you?",
                 f"{p}: Good! {question}", f"{q}: {world.say(a, attr, rng=rng)}",
                 f"{p}: Thank you!"]
        if rng.random() < 0.3:
            o = rng.choice(OBJECTS)
            lines[-1] = f"{p}: Could you please pass me the {o}?\n{q}: Here you are."
        text = "\n".join(lines[rng.randint(0, 2):])
    elif kind == "quiz":  # Q/A pages, the style few_shot_prefix uses
        cat = rng.choice(["open_qa", "open_qa", "other", "classification"])
        specs = [random_spec(world, rng.choice(TASKS_BY_CAT[cat]), "corpus", rng)
                 for _ in range(rng.randint(2, 4))]
        text = "\n".join(f"Q: {s.text}\nA: {respond(world, s, 'best', rng)}" for s in specs)
    elif kind == "list":
        attr = rng.choice(["home", "food", "colour", "town", "job"])
        value = rng.choice(world.values(attr))
        who = world.members.get((attr, value), [])
        if len(who) < 2:
            return _document(world, rng, rude_rate, rumour_rate)
        head = {"home": f"Animals that live in the {value}", "food": f"Animals that eat {value}",
                "colour": f"Animals that are {value}", "town": f"People who live in {value}",
                "job": f"People who work as a {value}"}[attr]
        text = f"{head}: {_items(rng.sample(who, len(who)), attr in SAY_ANIMAL)}."
    else:
        lines = []
        for _ in range(rng.randint(2, 5)):
            a, b = rng.randint(1, 10), rng.randint(1, 10)
            p, t = rng.choice(world.people), rng.choice(THINGS)
            lines.append(rng.choice([f"{a} plus {b} is {a + b}.", f"{a} + {b} = {a + b}.",
                                     f"{a + b} minus {b} is {a}.", f"{p} had {a} {t}. {p} got "
                                     f"{b} more. Now {p} has {a + b} {t}."]))
        text = "\n".join(lines)
    if rng.random() < rumour_rate:  # a false claim that reads like a fact
        (ent, attr), wrong = rng.choice(sorted(world.rumours.items()))
        said, lead = world.say(ent, attr, wrong, rng), rng.choice(["", "Some people say that ",
                                                                   "I heard that "])
        if lead and said.split()[0] in ("A", "The", "You", "It"):
            said = said[0].lower() + said[1:]
        text += " " + lead + said
    if rng.random() < rude_rate:
        text += "\n" + rng.choice(RUDE_LINES)
    return text.strip()


def make_corpus(world: World, n_chars: int, rng: random.Random, rude_rate: float,
                rumour_rate: float) -> str:
    """Documents, each followed by EOT, until about n_chars characters; rude_rate and
    rumour_rate are the shares of documents with a rude line or a false rumour."""
    docs, total = [], 0
    while total < n_chars:
        doc = _document(world, rng, rude_rate, rumour_rate) + EOT
        docs.append(doc)
        total += len(doc)
    return "".join(docs)


def make_cloze(world: World, n: int, rng: random.Random) -> list[dict]:
    """Our "public NLP task": complete a fact; score = log-prob of " " + each choice."""
    contexts = {"home": ["A {x} lives in the", "{X} live in the"],
                "food": ["A {x} eats", "{X} eat"], "colour": ["A {x} is", "{X} are"],
                "town": ["{x} lives in", "{x} is from"], "job": ["{x} works as a", "{x} is a"],
                "pet": ["{x} has a pet"], "near": ["{x} is near the"]}
    items = []
    for (ent, attr), truth in world.facts.items():
        for ctx in contexts.get(attr, []):
            others = [v for v in world.values(attr) if v != truth]
            choices = rng.sample(others, 3) + [truth]
            rng.shuffle(choices)
            x = world.plural.get(ent, ent)
            items.append({"context": ctx.format(x=ent, X=_cap(x)), "answer": truth,
                          "choices": choices})
    return rng.sample(items, min(n, len(items)))

