"""Tests for data.py: the files it writes (corpus, prompts, demonstrations), the labelers, I/O."""

import dataclasses
import json
import math
import random
import re

import pytest

import data
from gold import _analyse, _respond
from world import RUDE

WORLD = data.make_world()
FILES = ["corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
         "prompts.jsonl", "eval_prompts.jsonl"]
SPLITS = {"sft": "sft.jsonl", "rm": "rm_prompts.jsonl", "ppo": "prompts.jsonl",
          "eval": "eval_prompts.jsonl"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, data.write_datasets(data.PRESETS["tiny"], out)


def gold(spec, response):
    return data.score(spec.text, response, WORLD)[0]


def respond(spec, quality, seed=0):
    return _respond(WORLD, spec, quality, random.Random(seed))


# ----------------------------------------------------------------------------- files
def test_write_datasets_is_deterministic_and_readable(tiny, tmp_path):
    out, summary = tiny
    data.write_datasets(data.PRESETS["tiny"], tmp_path)
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    cfg = data.PRESETS["tiny"]
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
    docs = corpus.split(data.EOT)
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
    assert len(items) == data.PRESETS["tiny"].n_cloze
    for item in items:
        assert item["answer"] in item["choices"] and len(set(item["choices"])) == 4
        for choice in item["choices"]:
            claims = _analyse(WORLD, f"{item['context']} {choice}.", None)["claims"]
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
            spec = WORLD.parse(p)
            assert spec is not None, p
            # training prompts never name a held-out entity nor use a held-out phrasing
            assert spec.heldout == (split == "eval"), p
            assert not (split != "eval" and set(re.findall(r"\w+", p)) & WORLD.heldout), p


@pytest.mark.parametrize("split", list(SPLITS))
def test_category_mix_follows_table_1(tiny, split):
    out, _ = tiny
    cats = [p["category"] for p in data.read_prompts(out / SPLITS[split])]
    table = sum(data.TABLE1.values())
    in_table = [c for c in cats if c in data.TABLE1]
    for cat, pct in data.TABLE1.items():
        assert abs(100 * in_table.count(cat) / len(in_table) - 100 * pct / table) <= 2, cat
    for cat in ("harmful", "unknowable"):
        assert abs(cats.count(cat) / len(cats) - 0.05) <= 0.02, cat


# ----------------------------------------------------------------------------- labelers
def varied_items(n, split="train", seed=9, qualities=None):
    """n prompts with 4 responses each: of every quality, or of the qualities given."""
    rng = random.Random(seed)
    prompts = data.generate_prompts(WORLD, n, split, rng, set())
    if qualities is None:
        return [(p["prompt"], data.sample_responses(WORLD, p, 4, rng)) for p in prompts]
    return [(p["prompt"], [_respond(WORLD, WORLD.parse(p["prompt"]), q, rng)
                           for q in qualities]) for p in prompts]




def test_labeler_agreement_is_calibrated_to_the_paper():
    cfg = data.Config()
    train = data.agreement(data.make_labelers(cfg), varied_items(800, qualities=data.SFT_LIKE),
                           random.Random(0))
    held = data.agreement(data.make_labelers(cfg, True),
                          varied_items(500, "eval", qualities=data.SFT_LIKE), random.Random(0))
    assert abs(train - 0.73) <= 0.05 and abs(held - 0.73) <= 0.05, (train, held)
    # Answers of every quality are easier to order: the team agrees more on them.
    assert data.agreement(data.make_labelers(cfg), varied_items(300), random.Random(0)) > train
    noisy = dataclasses.replace(cfg, labeler_noise=3.0)  # a noisier team agrees less
    assert data.agreement(data.make_labelers(noisy), varied_items(200), random.Random(0)) < 0.6


def test_heldout_labelers_are_other_people():
    cfg = data.Config()
    train, held = data.make_labelers(cfg), data.make_labelers(cfg, heldout=True)
    assert len(train) == cfg.n_labelers and len(held) == cfg.n_heldout_labelers
    assert not {lab.name for lab in train} & {lab.name for lab in held}
    assert len({tuple(lab.weights.values()) for lab in train + held}) == len(train + held)


def test_rank_samples_plackett_luce():
    lab = data.make_labelers(data.Config())[0]
    spec = WORLD.parse("What does a fox eat?")
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
    spec = WORLD.parse("What does a fox eat?")
    best, verbose = respond(spec, "best"), respond(spec, "verbose")
    assert gold(spec, best) > gold(spec, verbose)
    fond = dataclasses.replace(data.make_labelers(data.Config())[0], length_taste=0.5)
    assert fond.utility(spec.text, verbose) > fond.utility(spec.text, best)


def test_demonstrations_are_good_but_leave_room(tiny):
    out, summary = tiny
    sft = data.read_sft(out / "sft.jsonl")
    demo = [data.score(r["prompt"], r["response"], WORLD)[0] for r in sft]
    best = [gold(WORLD.parse(r["prompt"]), respond(WORLD.parse(r["prompt"]), "best"))
            for r in sft]
    assert 0.6 < sum(demo) / len(demo) < sum(best) / len(best) - 0.1
    assert 0.4 < sum(d >= 0.95 for d in demo) / len(demo) < 0.85  # most are the labeler's best
    assert not any(r["response"].endswith(data.EOT) for r in sft)
    assert summary["demo_gold"] < summary["best_gold"]


def test_best_response_gets_full_marks_on_every_category(tiny):
    world, rng = data.make_world(), random.Random(0)
    for split in ("prompts", "eval_prompts"):
        for p in data.read_prompts(tiny[0] / f"{split}.jsonl"):
            assert data.score(p["prompt"], data.best_response(world, p["prompt"], rng))[0] == 1.0
    with pytest.raises(ValueError, match="not a prompt of this world"):
        data.best_response(world, "Translate this into French.", rng)


def test_format_prompt_uses_the_one_template():
    assert data.format_prompt("Hi?") == "### Instruction:\nHi?\n\n### Response:\n"


# ----------------------------------------------------------------------------- I/O
GOOD_CMP = {"prompt": "p", "responses": ["a", "b", "c", "d"], "ranking": [2, 0, 3, 1]}


@pytest.mark.parametrize("reader, lines, where, word", [
    (data.read_sft, ['{"prompt": "p", "response": "r"}', '{"prompt": "p", "response": '],
     2, "invalid JSON"),
    (data.read_sft, ['{"prompt": "p"}'], 1, "'response'"),
    (data.read_sft, ['{"prompt": "p", "response": 3}'], 1, "'response'"),
    (data.read_prompts, ['{"prompt": "p"}', '["p"]'], 2, "JSON object"),
    (data.read_prompts, ['{"prompt": ""}'], 1, "'prompt'"),
    (data.read_prompts, ['{"prompt": "p", "category": 1}'], 1, "'category'"),
    (data.read_prompts, ['{"prompt": "p"}', '', '{"prompt": "q"}'], 2, "blank line"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a"], ranking=[0]))], 1,
     "'responses'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a"] * 10,
                                             ranking=list(range(10))))], 1, "'responses'"),
    (data.read_comparisons, [json.dumps(GOOD_CMP),
                             json.dumps(dict(GOOD_CMP, ranking=[0, 0, 1, 2]))], 2, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, ranking=[0, 1, 2]))], 1, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, ranking="0123"))], 1, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a", 2, "c", "d"]))], 1,
     "'responses[1]'"),
])
def test_readers_name_file_line_and_field(tmp_path, reader, lines, where, word):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataError) as err:
        reader(path)
    assert isinstance(err.value, ValueError)
    assert f"{path}:{where}:" in str(err.value) and word in str(err.value)


def test_readers_accept_valid_files(tmp_path):
    path = tmp_path / "c.jsonl"
    recs = [dict(GOOD_CMP, category="x"), {"prompt": "q", "responses": ["good", "bad"],
                                          "ranking": [0, 1]},
            {"prompt": "q", "responses": list("abcdefghi"), "ranking": list(range(9))[::-1]}]
    data.write_jsonl(path, recs)
    path.write_text(path.read_text() + "\n\n")  # trailing blank lines are fine
    got = data.read_comparisons(path)
    assert [len(r["responses"]) for r in got] == [4, 2, 9] and got[0]["ranking"] == [2, 0, 3, 1]
    assert got[1]["category"] == "user"


def test_converters_bring_public_formats_in(tmp_path):
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?\n\nAssistant: 4.",
          "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?\n\nAssistant: 5."}
    src = tmp_path / "hh.jsonl"
    src.write_text(json.dumps(hh) + "\n")
    data.main(["--convert", "hh-rlhf", str(src), str(tmp_path / "cmp.jsonl")])
    [rec] = data.read_comparisons(tmp_path / "cmp.jsonl")
    assert rec["prompt"] == "Human: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?"
    assert rec["responses"] == ["4.", "5."] and rec["ranking"] == [0, 1]

    alpaca = [{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
              {"instruction": "Say hi.", "input": "", "output": "Hi!"}]
    (tmp_path / "alpaca.json").write_text(json.dumps(alpaca))  # Alpaca ships a JSON array
    assert data.convert_file(tmp_path / "alpaca.json", tmp_path / "sft.jsonl", "alpaca") == 2
    recs = data.read_sft(tmp_path / "sft.jsonl")
    assert recs[0] == {"prompt": "Add the numbers.\n\n2 and 3", "response": "5",
                       "category": "alpaca"}
    assert recs[1]["prompt"] == "Say hi."

    bad = dict(hh, rejected="\n\nHuman: Bye\n\nAssistant: 5.")
    src.write_text(json.dumps(hh) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(data.DataError, match=r"hh.jsonl:2: .*differ"):
        data.convert_file(src, tmp_path / "x.jsonl", "hh-rlhf")
    src.write_text(json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(data.DataError, match=r"hh.jsonl:1: missing field 'output'"):
        data.convert_file(src, tmp_path / "x.jsonl", "alpaca")


def test_cli_lists_every_config_field(capsys):
    with pytest.raises(SystemExit):
        data.main(["--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(data.Config):
        assert f"--{field.name}" in text
    assert "--preset" in text and "--out" in text and "--convert" in text
    flat = " ".join(text.split())  # argparse wraps the help lines
    assert "~73% agreement on SFT samples (cpu preset: 0.2)" in flat  # a literal % survives
