"""Tests for the world's datasets (world/datasets.py) and labelers (world/labelers.py): the files
a run directory starts from, their Table 1 mix and held-out split, and the labelers' calibration."""

import dataclasses
import math
import random
import re

import pytest

import data
import world
from world.__main__ import main as world_main
from world.facts import RUDE
from world.gold import analyse

WORLD = world.make_world()
FILES = ["corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
         "prompts.jsonl", "eval_prompts.jsonl"]
SPLITS = {"sft": "sft.jsonl", "rm": "rm_prompts.jsonl", "ppo": "prompts.jsonl",
          "eval": "eval_prompts.jsonl"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, world.write_datasets(world.PRESETS["tiny"], out)


def gold(spec, response):
    return world.score(spec.text, response, WORLD)[0]


def respond(spec, quality, seed=0):
    return world.respond(WORLD, spec, quality, random.Random(seed))


# ----------------------------------------------------------------------------- files
def test_write_datasets_is_deterministic_and_readable(tiny, tmp_path):
    out, summary = tiny
    world.write_datasets(world.PRESETS["tiny"], tmp_path)
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    cfg = world.PRESETS["tiny"]
    assert len(data.read_sft(out / "sft.jsonl")) == cfg.n_sft
    assert len(data.read_prompts(out / "rm_prompts.jsonl")) == cfg.n_rm
    assert len(data.read_prompts(out / "prompts.jsonl")) == cfg.n_ppo
    assert len(data.read_prompts(out / "eval_prompts.jsonl")) == cfg.n_eval
    assert summary["files"]["sft.jsonl"]["lines"] == cfg.n_sft
    assert not (out / "comparisons.jsonl").exists()  # reward.py writes it from SFT samples


def test_corpus_is_plain_text_about_the_whole_world(tiny):
    out, _ = tiny
    corpus = (out / "corpus.txt").read_text(encoding="utf-8")
    assert 250_000 <= len(corpus) <= 350_000
    docs = corpus.split(world.EOT)
    assert docs[-1] == "" and all(d.strip() for d in docs[:-1])
    assert "### Instruction" not in corpus and "### Response" not in corpus
    words = set(re.findall(r"[a-z]+", corpus.lower()))
    assert len(words) < 600  # a small vocabulary a tiny GPT can learn
    for name in sorted(WORLD.heldout):  # held-out entities: known from the corpus...
        made_up = name in WORLD.nonce or name in WORLD.nobodies
        assert (name.lower() in words) != made_up, name  # ...made-up names: never
    assert any(r in corpus.lower() for r in RUDE)
    rumours = [WORLD.say(e, a, v) for (e, a), v in WORLD.rumours.items()]
    assert any(r[:-1] in corpus for r in rumours)


def test_cloze_items_state_true_facts(tiny):
    out, _ = tiny
    items = data.read_jsonl(out / "cloze.jsonl")
    assert len(items) == world.PRESETS["tiny"].n_cloze
    for item in items:
        assert item["answer"] in item["choices"] and len(set(item["choices"])) == 4
        for choice in item["choices"]:
            claims = analyse(WORLD, f"{item['context']} {choice}.", None)["claims"]
            assert len(claims) == 1 and (claims[0][4] == "true") == (choice == item["answer"])


# ----------------------------------------------------------------------------- prompts
def test_prompt_sets_are_disjoint_and_eval_is_held_out(tiny):
    out, _ = tiny
    sets = {k: [p["prompt"] for p in data.read_prompts(out / f)] for k, f in SPLITS.items()}
    for a in sets:
        assert len(set(sets[a])) == len(sets[a])
        for b in sets:
            assert a == b or not set(sets[a]) & set(sets[b]), (a, b)
    for split, prompts in sets.items():
        for p in prompts:
            spec = world.parse(WORLD, p)
            assert spec is not None, p
            # training prompts never name a held-out entity nor use a held-out phrasing
            assert spec.heldout == (split == "eval"), p
            assert not (split != "eval" and set(re.findall(r"\w+", p)) & WORLD.heldout), p


@pytest.mark.parametrize("split", list(SPLITS))
def test_category_mix_follows_table_1(tiny, split):
    out, _ = tiny
    cats = [p["category"] for p in data.read_prompts(out / SPLITS[split])]
    table = sum(world.TABLE1.values())
    in_table = [c for c in cats if c in world.TABLE1]
    for cat, pct in world.TABLE1.items():
        assert abs(100 * in_table.count(cat) / len(in_table) - 100 * pct / table) <= 2, cat
    for cat in ("harmful", "unknowable"):
        assert abs(cats.count(cat) / len(cats) - 0.05) <= 0.02, cat


# ----------------------------------------------------------------------------- labelers
def varied_items(n, split="train", seed=9, qualities=None):
    """n prompts with 4 responses each: of every quality, or of the qualities given."""
    rng = random.Random(seed)
    prompts = world.generate_prompts(WORLD, n, split, rng, set())
    if qualities is None:
        return [(p["prompt"], world.sample_responses(WORLD, p, 4, rng)) for p in prompts]
    return [(p["prompt"], [world.respond(WORLD, world.parse(WORLD, p["prompt"]), q, rng)
                           for q in qualities]) for p in prompts]


def test_labeler_agreement_is_calibrated_to_the_paper():
    cfg = world.Config()
    train = world.agreement(world.make_labelers(cfg), varied_items(800, qualities=world.SFT_LIKE),
                            random.Random(0))
    held = world.agreement(world.make_labelers(cfg, True),
                           varied_items(500, "eval", qualities=world.SFT_LIKE), random.Random(0))
    assert abs(train - 0.73) <= 0.05 and abs(held - 0.73) <= 0.05, (train, held)
    # Answers of every quality are easier to order: the team agrees more on them.
    assert world.agreement(world.make_labelers(cfg), varied_items(300), random.Random(0)) > train
    noisy = dataclasses.replace(cfg, labeler_noise=3.0)  # a noisier team agrees less
    assert world.agreement(world.make_labelers(noisy), varied_items(200), random.Random(0)) < 0.6


def test_heldout_labelers_are_other_people():
    cfg = world.Config()
    train, held = world.make_labelers(cfg), world.make_labelers(cfg, heldout=True)
    assert len(train) == cfg.n_labelers and len(held) == cfg.n_heldout_labelers
    assert not {lab.name for lab in train} & {lab.name for lab in held}
    assert len({tuple(lab.weights.values()) for lab in train + held}) == len(train + held)


def test_rank_samples_plackett_luce():
    lab = world.make_labelers(world.Config())[0]
    spec = world.parse(WORLD, "What does a fox eat?")
    responses = [respond(spec, q) for q in ("wrong", "best", "sloppy")]
    rng, firsts = random.Random(0), [0, 0, 0]
    for _ in range(2000):
        order = lab.rank(spec.text, responses, rng)
        assert sorted(order) == [0, 1, 2]
        firsts[order[0]] += 1
    u = [lab.utility(spec.text, r) / lab.temperature for r in responses]
    expect = [math.exp(x) / sum(math.exp(y) for y in u) for x in u]
    for got, want in zip(firsts, expect, strict=True):  # P(first) = softmax(utility / T)
        assert abs(got / 2000 - want) < 0.03
    a, b = responses[1], responses[2]
    p = sum(lab.compare(spec.text, a, b, rng) for _ in range(2000)) / 2000
    assert abs(p - 1 / (1 + math.exp(-(u[1] - u[2])))) < 0.03  # Bradley-Terry


def test_labelers_like_length_more_than_the_gold_score_does():
    spec = world.parse(WORLD, "What does a fox eat?")
    best, verbose = respond(spec, "best"), respond(spec, "verbose")
    assert gold(spec, best) > gold(spec, verbose)
    fond = dataclasses.replace(world.make_labelers(world.Config())[0], length_taste=0.5)
    assert fond.utility(spec.text, verbose) > fond.utility(spec.text, best)


def test_demonstrations_are_good_but_leave_room(tiny):
    out, summary = tiny
    sft = data.read_sft(out / "sft.jsonl")
    demo = [world.score(r["prompt"], r["response"], WORLD)[0] for r in sft]
    best = [gold(world.parse(WORLD, r["prompt"]), respond(world.parse(WORLD, r["prompt"]), "best"))
            for r in sft]
    assert 0.6 < sum(demo) / len(demo) < sum(best) / len(best) - 0.1
    assert 0.4 < sum(d >= 0.95 for d in demo) / len(demo) < 0.85  # most are the labeler's best
    assert not any(r["response"].endswith(world.EOT) for r in sft)
    assert summary["demo_gold"] < summary["best_gold"]


def test_best_response_gets_full_marks_on_every_category(tiny):
    rng = random.Random(0)
    for split in ("prompts", "eval_prompts"):
        for p in data.read_prompts(tiny[0] / f"{split}.jsonl"):
            assert world.score(p["prompt"], world.best_response(WORLD, p["prompt"], rng))[0] == 1.0
    with pytest.raises(ValueError, match="not a prompt of this world"):
        world.best_response(WORLD, "Translate this into French.", rng)


def test_cli_lists_every_config_field(capsys):
    with pytest.raises(SystemExit):
        world_main(["--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(world.Config):
        assert f"--{field.name}" in text
    assert "--preset" in text and "--out" in text
    flat = " ".join(text.split())  # argparse wraps the help lines
    assert "~73% agreement on SFT samples (cpu preset: 0.2)" in flat  # a literal % survives


def test_cli_writes_a_run_directory(tmp_path, capsys):
    summary = world_main(["--preset", "tiny", "--out", str(tmp_path), "--n_eval", "50"])
    assert len(data.read_prompts(tmp_path / "eval_prompts.jsonl")) == 50
    assert sum(summary["mix"]["eval"].values()) == 50
    assert len(data.read_sft(tmp_path / "sft.jsonl")) == world.PRESETS["tiny"].n_sft
