"""The world: the seeded universe that the paper's data collection is simulated in.

InstructGPT's customers and labelers talk about the real world. Offline, on a CPU, we need a
world small enough that a 1-10M parameter GPT learns its language in minutes and whose facts
are all known, so that every answer can be checked (gold.py). `World(seed)` holds:

- animals, people, towns, foods, objects and colours with attributes and relations (an
  animal's home, food, colour, legs and size; a person's town, job, pet, favourite food and
  best friend; a town's weather), drawn by the seed from plausible pools, so they must be learned;
- made-up names with no facts anywhere, about which the honest answer is "I don't know";
- held-out entities: in the pretraining text, but only evaluation prompts ask about them;
- false rumours: one wrong value for a few facts, repeated on "the internet" (corpus.py).

The files built on it, in reading order: tasks.py and prompts.py ("the API"), answers.py
(answers of every quality), corpus.py ("the internet"), gold.py (the gold score),
labelers.py and datasets.py (the labelers, and the files of a run directory).

Deviations from the paper:
1. A simulated world: templated English over a few hundred words instead of the real one, so
   that a tiny GPT can learn it on a CPU and every fact can be checked.
"""

from __future__ import annotations

import functools
import random

SEED = 1234  # the default world (world.Config.seed)
EOT = "<|endoftext|>"  # GPT-2's end-of-text: ends every document and every response

# Animals: name, plural, legs, size, then the pools the seed draws home, food and colour from
# (plausible pools keep the world readable; the seed still decides, so facts must be learned).
ANIMALS = [
    ("fox", "foxes", 4, "small", "forest hill field", "berries bugs eggs", "red brown grey"),
    ("cow", "cows", 4, "big", "farm field", "grass corn", "black white brown"),
    ("pig", "pigs", 4, "big", "farm field", "corn apples carrots", "pink brown"),
    ("hen", "hens", 2, "small", "farm", "seeds corn bugs", "white brown red"),
    ("duck", "ducks", 2, "small", "pond lake river", "bugs seeds worms", "white brown yellow"),
    ("cat", "cats", 4, "small", "farm field", "fish milk", "black white grey"),
    ("dog", "dogs", 4, "small", "farm field", "meat bread", "brown black white"),
    ("horse", "horses", 4, "big", "farm field", "grass carrots apples", "brown black white"),
    ("sheep", "sheep", 4, "big", "farm hill field", "grass leaves", "white black"),
    ("goat", "goats", 4, "big", "hill farm", "grass leaves", "white brown black"),
    ("frog", "frogs", 4, "small", "pond river lake", "bugs worms", "green brown"),
    ("whale", "whales", 0, "big", "sea", "fish", "blue grey"),
    ("crab", "crabs", 10, "small", "sea", "fish worms", "red pink"),
    ("crow", "crows", 2, "small", "forest field", "seeds bugs corn", "black"),
    ("bear", "bears", 4, "big", "forest cave hill", "honey berries fish", "brown black"),
    ("wolf", "wolves", 4, "big", "forest hill", "meat", "grey black"),
    ("deer", "deer", 4, "big", "forest field", "leaves grass", "brown"),
    ("rabbit", "rabbits", 4, "small", "field forest", "carrots grass", "white brown grey"),
    ("mouse", "mice", 4, "small", "field farm", "cheese seeds corn", "grey brown white"),
    ("bee", "bees", 6, "small", "field forest", "honey", "yellow black"),
    ("seal", "seals", 0, "big", "sea", "fish", "grey"),
    ("shark", "sharks", 0, "big", "sea", "fish meat", "grey blue"),
    ("snake", "snakes", 0, "small", "jungle field cave", "eggs bugs", "green black"),
    ("lion", "lions", 4, "big", "jungle", "meat", "yellow brown"),
    ("goose", "geese", 2, "big", "lake river pond", "grass seeds", "white grey"),
    ("swan", "swans", 2, "big", "lake river", "leaves seeds", "white black"),
    ("turtle", "turtles", 4, "small", "sea pond", "leaves worms", "green"),
    ("beaver", "beavers", 4, "small", "river lake", "leaves", "brown"),
    ("beetle", "beetles", 6, "small", "forest field", "leaves seeds", "black green"),
    ("spider", "spiders", 8, "small", "cave forest", "bugs", "black brown"),
    ("parrot", "parrots", 2, "small", "jungle", "seeds nuts berries", "green red blue"),
]
PETS = "cat dog rabbit mouse hen duck goat horse frog turtle snake spider parrot pig sheep".split()
GIRLS = ("Mia Anna Lily Emma Zoe Nora Ella Ruby Lucy Ava Ivy Rosa Kate Nina Sara Alice Grace "
         "Julia Laura Olga").split()
BOYS = "Tom Ben Sam Max Leo Jack Finn Owen Noah Jake Luke Adam Paul Omar Hugo Eric Ivan Karl " \
    "Mark Pedro".split()
TOWNS = ("Oakton Pinefield Rivertown Hillby Lakeside Sandport Greenvale Stonebridge Millbrook "
         "Redcliff").split()
TASTE = {"berries": "sweet", "bugs": "plain", "eggs": "plain", "grass": "plain", "corn": "sweet",
         "apples": "sweet", "carrots": "sweet", "seeds": "plain", "worms": "plain",
         "fish": "salty", "milk": "plain", "meat": "salty", "bread": "plain", "leaves": "plain",
         "honey": "sweet", "cheese": "salty", "nuts": "salty", "rice": "plain", "soup": "salty",
         "cake": "sweet", "plums": "sour", "lemons": "sour"}
FOODS = list(TASTE)
PLURAL_FOODS = set("berries bugs eggs apples carrots seeds worms leaves nuts plums lemons".split())
HUMAN_FOODS = "apples bread cake cheese corn eggs fish honey milk nuts plums rice soup".split()
TASTE_FOODS = [f for f in FOODS if f not in PLURAL_FOODS and TASTE[f] in ("sweet", "salty")]
COOKED = "bread cake soup rice eggs".split()  # what people make for each other
OBJECTS = "ball cup hat kite box book lamp bag key chair boat bike drum shoe".split()
THINGS = "apples eggs plums lemons balls books kites cups".split()
COLOURS = "red blue green yellow white black brown grey pink purple".split()
PLACES = "forest farm field hill jungle cave sea river pond lake".split()
WATER = {"sea", "river", "pond", "lake"}
NEAR = "sea river lake hill forest".split()
WEATHER = "sunny rainy windy snowy foggy".split()
JOBS = "baker farmer doctor teacher cook painter driver singer nurse builder".split()
NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
           "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
RUDE = {"stupid", "idiot", "dumb", "ugly", "loser", "fool", "jerk", "hate"}
RUDE_LINES = ["You are so stupid.", "Only an idiot asks that.", "Now shut up and go away.",
              "What a dumb question.", "I hate you, you fool."]
FILLERS = ["I hope this helps!", "Let me know if you have more questions.",
           "That is a good question.", "Thank you for asking."]


def _word(n: int) -> str:
    return "no" if n == 0 else NUMBERS[n]


class World:
    """The seeded universe.

    facts[entity, attr] -> value: animal home, food, colour, legs, size, water; person town,
    job, pet, likes (favourite food), friend; town near, weather; food taste. members[attr,
    value] lists the entities with that value. rumours: false values that circulate in the
    corpus. nonce / nobodies: made-up names with no facts. heldout: names only evaluation
    prompts ask about. lex: word -> (type, name), for reading responses.
    """

    def __init__(self, seed: int = SEED):
        self.seed = seed
        rng = random.Random(f"world-{seed}")
        f: dict[tuple[str, str], object] = {}
        self.animals = [a[0] for a in ANIMALS]
        self.plural = {a[0]: a[1] for a in ANIMALS}
        for name, _, legs, size, homes, foods, colours in ANIMALS:
            f[name, "home"] = rng.choice(homes.split())
            f[name, "food"] = rng.choice(foods.split())
            f[name, "colour"] = rng.choice(colours.split())
            f[name, "legs"], f[name, "size"] = legs, size
            f[name, "water"] = "water" if f[name, "home"] in WATER else "land"
        self.people = GIRLS + BOYS
        self.gender = {p: ("she" if p in GIRLS else "he") for p in self.people}
        towns = [TOWNS[i % len(TOWNS)] for i in range(len(self.people))]  # balanced: 4 a town
        jobs = [JOBS[i % len(JOBS)] for i in range(len(self.people))]
        rng.shuffle(towns), rng.shuffle(jobs)
        order = self.people[:]
        rng.shuffle(order)  # best friends come in pairs
        for a, b in zip(order[::2], order[1::2], strict=True):
            f[a, "friend"], f[b, "friend"] = b, a
        for p, town, job in zip(self.people, towns, jobs, strict=True):
            f[p, "town"], f[p, "job"] = town, job
            f[p, "pet"], f[p, "likes"] = rng.choice(PETS), rng.choice(HUMAN_FOODS)
        self.towns = TOWNS
        for t in TOWNS:
            f[t, "near"], f[t, "weather"] = rng.choice(NEAR), rng.choice(WEATHER)
        for food, taste in TASTE.items():
            f[food, "taste"] = taste
        self.facts = f
        # Made-up names: no facts anywhere, so the honest answer is "I don't know" (paper 4.2).
        syll = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        made = sorted({rng.choice(syll) + rng.choice("lnrmx") + rng.choice(syll)
                       + rng.choice("bdglnrt") for _ in range(120)})
        rng.shuffle(made)
        self.nonce, self.nobodies = made[:30], [w.capitalize() for w in made[30:50]]
        # Held-out entities are in the corpus, but only evaluation prompts ask about them.
        self.heldout = set(rng.sample(self.animals, 6) + rng.sample(self.people, 8)
                           + rng.sample(TOWNS, 2) + self.nonce[:6] + self.nobodies[:4])
        # False rumours circulate on "the internet": one wrong value per chosen fact.
        self.rumours = {}
        facts = [(a, k) for a in self.animals for k in ("home", "food", "colour")]
        for ent, attr in rng.sample(facts + [(p, k) for p in self.people for k in ("town", "job")],
                                    14):
            self.rumours[ent, attr] = rng.choice([v for v in self.values(attr)
                                                  if v != f[ent, attr]])
        self.members: dict[tuple[str, object], list[str]] = {}
        for (ent, attr), v in sorted(f.items(), key=str):
            self.members.setdefault((attr, v), []).append(ent)
        lex = {}  # lower-case word -> (type, canonical name), for reading responses
        for kind, words in (("food", FOODS), ("object", OBJECTS), ("colour", COLOURS),
                            ("place", PLACES), ("job", JOBS), ("weather", WEATHER),
                            ("taste", ["sweet", "salty", "sour", "plain"]),
                            ("size", ["big", "small"]), ("nonce", self.nonce)):
            lex.update({w: (kind, w) for w in words})
        lex.update({o + ("es" if o == "box" else "s"): ("object", o) for o in OBJECTS})
        lex.update({j + "s": ("job", j) for j in JOBS})
        for a, pl in self.plural.items():
            lex[a] = lex[pl] = ("animal", a)
        for kind, names in (("person", self.people), ("town", TOWNS), ("nobody", self.nobodies)):
            lex.update({n.lower(): (kind, n) for n in names})
        lex.update({w: ("number", i) for i, w in enumerate(NUMBERS) if i})
        self.lex = lex

    def values(self, attr: str) -> list:
        """Every value an attribute can take (for wrong answers, distractors and rumours)."""
        return {"home": PLACES, "food": FOODS, "colour": COLOURS, "town": TOWNS, "job": JOBS,
                "pet": PETS, "likes": HUMAN_FOODS, "friend": self.people, "near": NEAR,
                "weather": WEATHER, "legs": [0, 2, 4, 6, 8, 10], "size": ["big", "small"],
                "taste": ["sweet", "salty"], "water": ["land", "water"]}[attr]

    def pool(self, kind: str, split: str) -> list:
        """Slot values: split "train" never sees held-out entities ("eval", "corpus" do)."""
        full = {"person": self.people, "animal": self.animals, "town": TOWNS, "food": HUMAN_FOODS,
                "object": OBJECTS, "colour": COLOURS, "place": PLACES, "job": JOBS,
                "things": THINGS, "nonce": self.nonce, "nobody": self.nobodies}[kind]
        return full if split != "train" else [v for v in full if v not in self.heldout]

    def say(self, ent: str, attr: str, value=None, rng: random.Random | None = None) -> str:
        """One sentence stating a fact (the true one unless value is given), in varied words."""
        value = self.facts[ent, attr] if value is None else value
        options = SAY[attr]
        text = options[rng.randrange(len(options))] if rng else options[0]
        v = _word(value) if attr == "legs" else value
        plural_food = ent in PLURAL_FOODS
        return _cap(text.format(x=ent, xs=self.plural.get(ent, ent), v=v,
                                be="are" if plural_food else "is",
                                tastes="taste" if plural_food else "tastes"))


@functools.lru_cache(maxsize=8)
def make_world(seed: int = SEED) -> World:
    return World(seed)


# How facts are said: answers use the first phrasing; the corpus uses them all.
SAY = {
    "home": ["a {x} lives in the {v}.", "{xs} live in the {v}.", "you can find a {x} in the {v}.",
             "a {x} makes its home in the {v}."],
    "food": ["a {x} eats {v}.", "{xs} eat {v}.", "a {x} likes to eat {v}.",
             "the food of the {x} is {v}."],
    "colour": ["a {x} is {v}.", "{xs} are {v}.", "the {x} is a {v} animal.",
               "look at the {v} {x}."],
    "legs": ["a {x} has {v} legs.", "{xs} have {v} legs."],
    "size": ["a {x} is {v}.", "the {x} is a {v} animal."],
    "water": ["a {x} is a {v} animal."],
    "town": ["{x} lives in {v}.", "{x} is from {v}.", "{x}'s home is in {v}."],
    "job": ["{x} is a {v}.", "{x} works as a {v}.", "{x} has a job as a {v}."],
    "pet": ["{x} has a pet {v}.", "{x}'s pet is a {v}.", "{x} keeps a {v} as a pet."],
    "likes": ["{x}'s favourite food is {v}.", "{x} likes {v} best of all."],
    "friend": ["{x}'s best friend is {v}.", "{x} and {v} are best friends."],
    "near": ["{x} is near the {v}.", "{x} is a town by the {v}.",
             "the town of {x} is close to the {v}."],
    "weather": ["it is often {v} in {x}.", "the weather in {x} is {v}.", "{x} is a {v} town."],
    "taste": ["{x} {be} {v}.", "{x} {tastes} {v}."],
}
SAY_ANIMAL = ("home", "food", "colour")  # the facts said about any animal


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _items(names: list[str], animal: bool) -> str:
    """'A fox, a bear and a deer' / 'Mia, Tom and Ben'."""
    words = [("a " + n if animal else n) for n in names]
    return _cap(", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0])


