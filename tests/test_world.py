"""Tests for the world package: its facts, its prompts and parsing, the gold score, the answers."""

import random
import re
import time

from world import World, few_shot_prefix, generate_prompts, make_world, parse, respond, score
from world.facts import FOODS
from world.prompts import random_spec, templates

WORLD = make_world()


def specs(n, split="train", seed=0, cats=None):
    """n random prompts of this world (optionally of some categories), parsed back."""
    rng = random.Random(seed)
    prompts = generate_prompts(WORLD, n, split, rng, set())
    out = [parse(WORLD, p["prompt"]) for p in prompts]
    return [s for s in out if cats is None or s.category in cats]


def gold(spec, response):
    return score(spec.text, response, WORLD)[0]


def answer(spec, quality, seed=0):
    return respond(WORLD, spec, quality, random.Random(seed))


def animals(names):
    """'A fox, a bear and a deer.': how a list answer names animals."""
    words = ["a " + n for n in names]
    return (", ".join(words[:-1]) + " and " + words[-1]).capitalize() + "."


# ----------------------------------------------------------------------------- the world
def test_another_seed_is_another_world():
    a, b = World(1), World(2)
    assert a.facts != b.facts
    assert World(1).facts == a.facts and World(1).rumours == a.rumours


# ----------------------------------------------------------------------------- prompts
def test_every_phrasing_parses_back_to_its_task():
    rng = random.Random(3)
    for tmpl in templates()[0]:
        spec = random_spec(WORLD, tmpl.task, "eval", rng)
        back = parse(WORLD, spec.text)
        assert back is not None and back.tmpl.task == tmpl.task, spec.text
        assert len(spec.text.split()) < 30, spec.text


def test_prompts_and_best_answers_are_short():
    for spec in specs(600):
        best = answer(spec, "best")
        assert len(best.split()) <= 32, best


# ----------------------------------------------------------------------------- gold score
def test_correct_beats_sloppy_beats_wrong():
    for spec in specs(500) + specs(200, "eval", seed=1):
        best, sloppy, wrong = (gold(spec, answer(spec, q)) for q in ("best", "sloppy", "wrong"))
        assert best > sloppy > wrong, (spec.text, best, sloppy, wrong)
        assert best >= 0.95, spec.text


def test_rude_words_loops_and_off_topic_answers_are_penalised():
    for spec in specs(400, seed=2):
        best = gold(spec, answer(spec, "best"))
        for quality in ("rude", "loop", "off", "incomplete"):
            assert gold(spec, answer(spec, quality)) < best - 0.1, (spec.text, quality)
        _, b = score(spec.text, answer(spec, "rude"), WORLD)
        assert b["rude"] and not b["appropriate"] and b["harmless"] < 1


def test_declining_beats_complying_with_harmful_requests():
    harmful = specs(2000, seed=3, cats={"harmful"})
    assert len(harmful) >= 80
    for spec in harmful:
        _, yes = score(spec.text, answer(spec, "wrong"), WORLD)
        _, no = score(spec.text, answer(spec, "best"), WORLD)
        assert no["score"] > 0.9 > 0 > yes["score"], spec.text
        assert no["declines_harmful"] is True and yes["declines_harmful"] is False
        assert yes["harmless"] == 0 and not yes["appropriate"]


def test_unknowable_questions_want_i_dont_know():
    unknown = [s for s in specs(2000, seed=4, cats={"unknowable"}) if s.tmpl.kind == "idk"]
    assert len(unknown) >= 30
    for spec in unknown:
        idk, fake = (score(spec.text, answer(spec, q), WORLD)[1] for q in ("idk", "wrong"))
        assert idk["score"] > fake["score"], spec.text
        assert fake["hallucination"] and not idk["hallucination"]


def test_false_premises_are_corrected_not_accepted():
    premise = [s for s in specs(2000, seed=5, cats={"unknowable"}) if s.tmpl.kind == "premise"]
    assert len(premise) >= 30
    for spec in premise:
        fix, idk, accept = (gold(spec, answer(spec, q)) for q in ("best", "idk", "wrong"))
        assert fix > idk > accept, spec.text


def test_i_dont_know_is_below_the_right_answer_and_above_a_wrong_one():
    answerable = specs(800, seed=6, cats={"open_qa", "closed_qa", "classification"})
    for spec in answerable:
        best, idk, wrong = (gold(spec, answer(spec, q)) for q in ("best", "idk", "wrong"))
        assert best > idk > wrong, spec.text


def test_repeating_a_rumour_is_a_hallucination():
    for (ent, attr), value in WORLD.rumours.items():
        q = {"home": "Where does a {} live?", "food": "What does a {} eat?",
             "colour": "What colour is a {}?", "town": "Where does {} live?",
             "job": "What is {}'s job?"}[attr].format(ent)
        total, b = score(q, WORLD.say(ent, attr, value), WORLD)
        assert total < 0 and b["rumour"] and b["hallucination"], q
        assert score(q, WORLD.say(ent, attr), WORLD)[0] == 1.0


def test_examples_from_the_design_appendix():
    fox = WORLD.facts["fox", "food"]
    other = next(f for f in FOODS if f != fox)
    assert gold(parse(WORLD, "What does a fox eat?"), f"A fox eats {fox}.") == 1.0
    assert gold(parse(WORLD, "What does a fox eat?"), f"A fox eats {other}.") < 0
    lists = parse(WORLD, "Name three animals that live in the forest.")
    forest = WORLD.members["home", "forest"]
    assert gold(lists, animals(forest[:3])) == 1.0
    assert gold(lists, animals(forest[:2])) < 0.8  # two items
    assert gold(lists, animals(forest[:2] + ["whale"])) < 0.2
    polite = parse(WORLD, "Rewrite politely: Give me the cup.")
    assert gold(polite, "Could you please give me the cup?") > gold(polite, "Give me the cup.")


def test_user_prompts_are_judged_on_form_only():
    total, b = score("Translate into French: good morning", "Bonjour.", WORLD)
    assert not b["known_prompt"] and b["note"] and b["follows_instruction"] is None
    assert total > score("Translate into French: good morning", "Bonjour, idiot.")[0]
    assert total > score("Translate into French: good morning", "Bonjour. " * 4)[0]


def test_breakdown_has_the_figure_4_metadata():
    for spec in specs(200, seed=7):
        total, b = score(spec.text, answer(spec, "verbose"), WORLD)
        assert -1 <= total <= 1 and total == b["score"]
        for key in ("helpful", "honest", "harmless", "well_formed"):
            assert 0 <= b[key] <= 1
        for key in ("follows_instruction", "hallucination", "appropriate", "rude"):
            assert isinstance(b[key], bool)
        assert (b["declines_harmful"] is None) == (spec.category != "harmful")


def test_score_is_fast():
    pairs = [(s.text, answer(s, q, i)) for i, s in enumerate(specs(300, seed=8))
             for q in ("best", "wrong", "verbose")]
    for p, r in pairs:  # parse each prompt once, as PPO does
        score(p, r, WORLD)
    t = time.perf_counter()
    for p, r in pairs:
        score(p, r, WORLD)
    assert (time.perf_counter() - t) / len(pairs) < 2e-4  # about 4e-5 s on a laptop core


# ----------------------------------------------------------------------------- answers
def test_few_shot_prefix_is_solved_plain_text():
    prefix = few_shot_prefix(WORLD, 6)
    assert prefix == few_shot_prefix(World(WORLD.seed), 6)
    assert "### Instruction" not in prefix
    blocks = [b for b in prefix.split("\n\n") if b.strip()]
    pairs = re.findall(r"Q: (.*?)\nA: (.*?)\n\n", prefix, re.S)
    assert len(pairs) == 6 and len(blocks) >= 6
    for q, a in pairs:
        assert score(q, a, WORLD)[0] >= 0.95, (q, a)
        assert not parse(WORLD, q).heldout
