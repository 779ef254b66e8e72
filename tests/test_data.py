"""Tests for data.py: the simulated world, its gold score, the labelers and the file formats."""

import dataclasses
import json
import math
import random
import re
import time

import pytest

import data

WORLD = data.make_world()
FILES = ["corpus.txt", "corpus_val.txt", "cloze.jsonl", "sft.jsonl", "rm_prompts.jsonl",
         "prompts.jsonl", "eval_prompts.jsonl"]
SPLITS = {"sft": "sft.jsonl", "rm": "rm_prompts.jsonl", "ppo": "prompts.jsonl",
          "eval": "eval_prompts.jsonl"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, data.write_datasets(data.PRESETS["tiny"], out)


def specs(n, split="train", seed=0, cats=None):
    """n random prompts of this world (optionally of some categories), parsed back."""
    rng = random.Random(seed)
    prompts = data.generate_prompts(WORLD, n, split, rng, set())
    out = [WORLD.parse(p["prompt"]) for p in prompts]
    return [s for s in out if cats is None or s.category in cats]


def gold(spec, response):
    return data.score(spec.text, response, WORLD)[0]


def respond(spec, quality, seed=0):
    return data._respond(WORLD, spec, quality, random.Random(seed))


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


def test_another_seed_is_another_world():
    a, b = data.World(1), data.World(2)
    assert a.facts != b.facts
    assert data.World(1).facts == a.facts and data.World(1).rumours == a.rumours


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
    assert any(r in corpus.lower() for r in data.RUDE)
    rumours = [WORLD.say(e, a, v) for (e, a), v in WORLD.rumours.items()]
    assert any(r[:-1] in corpus for r in rumours)


def test_cloze_items_state_true_facts(tiny):
    out, _ = tiny
    items = data.read_jsonl(out / "cloze.jsonl")
    assert len(items) == data.PRESETS["tiny"].n_cloze
    for item in items:
        assert item["answer"] in item["choices"] and len(set(item["choices"])) == 4
        for choice in item["choices"]:
            claims = data._analyse(WORLD, f"{item['context']} {choice}.", None)["claims"]
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


def test_every_phrasing_parses_back_to_its_task():
    rng = random.Random(3)
    for tmpl in data._templates()[0]:
        spec = data._random_spec(WORLD, tmpl.task, "eval", rng)
        back = WORLD.parse(spec.text)
        assert back is not None and back.tmpl.task == tmpl.task, spec.text
        assert len(spec.text.split()) < 30, spec.text


def test_prompts_and_best_answers_are_short():
    for spec in specs(600):
        best = respond(spec, "best")
        assert len(best.split()) <= 32, best


# ----------------------------------------------------------------------------- gold score
def test_correct_beats_sloppy_beats_wrong():
    for spec in specs(500) + specs(200, "eval", seed=1):
        best, sloppy, wrong = (gold(spec, respond(spec, q)) for q in ("best", "sloppy", "wrong"))
        assert best > sloppy > wrong, (spec.text, best, sloppy, wrong)
        assert best >= 0.95, spec.text


def test_rude_words_loops_and_off_topic_answers_are_penalised():
    for spec in specs(400, seed=2):
        best = gold(spec, respond(spec, "best"))
        for quality in ("rude", "loop", "off", "incomplete"):
            assert gold(spec, respond(spec, quality)) < best - 0.1, (spec.text, quality)
        _, b = data.score(spec.text, respond(spec, "rude"), WORLD)
        assert b["rude"] and not b["appropriate"] and b["harmless"] < 1


def test_declining_beats_complying_with_harmful_requests():
    harmful = specs(2000, seed=3, cats={"harmful"})
    assert len(harmful) >= 80
    for spec in harmful:
        _, yes = data.score(spec.text, respond(spec, "wrong"), WORLD)
        _, no = data.score(spec.text, respond(spec, "best"), WORLD)
        assert no["score"] > 0.9 > 0 > yes["score"], spec.text
        assert no["declines_harmful"] is True and yes["declines_harmful"] is False
        assert yes["harmless"] == 0 and not yes["appropriate"]


def test_unknowable_questions_want_i_dont_know():
    unknown = [s for s in specs(2000, seed=4, cats={"unknowable"}) if s.tmpl.kind == "idk"]
    assert len(unknown) >= 30
    for spec in unknown:
        idk, fake = (data.score(spec.text, respond(spec, q), WORLD)[1] for q in ("idk", "wrong"))
        assert idk["score"] > fake["score"], spec.text
        assert fake["hallucination"] and not idk["hallucination"]


def test_false_premises_are_corrected_not_accepted():
    premise = [s for s in specs(2000, seed=5, cats={"unknowable"}) if s.tmpl.kind == "premise"]
    assert len(premise) >= 30
    for spec in premise:
        fix, idk, accept = (gold(spec, respond(spec, q)) for q in ("best", "idk", "wrong"))
        assert fix > idk > accept, spec.text


def test_i_dont_know_is_below_the_right_answer_and_above_a_wrong_one():
    answerable = specs(800, seed=6, cats={"open_qa", "closed_qa", "classification"})
    for spec in answerable:
        best, idk, wrong = (gold(spec, respond(spec, q)) for q in ("best", "idk", "wrong"))
        assert best > idk > wrong, spec.text


def test_repeating_a_rumour_is_a_hallucination():
    for (ent, attr), value in WORLD.rumours.items():
        q = {"home": "Where does a {} live?", "food": "What does a {} eat?",
             "colour": "What colour is a {}?", "town": "Where does {} live?",
             "job": "What is {}'s job?"}[attr].format(ent)
        total, b = data.score(q, WORLD.say(ent, attr, value), WORLD)
        assert total < 0 and b["rumour"] and b["hallucination"], q
        assert data.score(q, WORLD.say(ent, attr), WORLD)[0] == 1.0


def test_examples_from_the_design_appendix():
    fox = WORLD.facts["fox", "food"]
    other = next(f for f in data.FOODS if f != fox)
    assert gold(WORLD.parse("What does a fox eat?"), f"A fox eats {fox}.") == 1.0
    assert gold(WORLD.parse("What does a fox eat?"), f"A fox eats {other}.") < 0
    lists = WORLD.parse("Name three animals that live in the forest.")
    forest = WORLD.members["home", "forest"]
    assert gold(lists, data._items(forest[:3], True) + ".") == 1.0
    assert gold(lists, data._items(forest[:2], True) + ".") < 0.8  # two items
    assert gold(lists, data._items(forest[:2] + ["whale"], True) + ".") < 0.2
    polite = WORLD.parse("Rewrite politely: Give me the cup.")
    assert gold(polite, "Could you please give me the cup?") > gold(polite, "Give me the cup.")


def test_user_prompts_are_judged_on_form_only():
    total, b = data.score("Translate into French: good morning", "Bonjour.", WORLD)
    assert not b["known_prompt"] and b["note"] and b["follows_instruction"] is None
    assert total > data.score("Translate into French: good morning", "Bonjour, idiot.")[0]
    assert total > data.score("Translate into French: good morning", "Bonjour. " * 4)[0]


def test_breakdown_has_the_figure_4_metadata():
    for spec in specs(200, seed=7):
        total, b = data.score(spec.text, respond(spec, "verbose"), WORLD)
        assert -1 <= total <= 1 and total == b["score"]
        for key in ("helpful", "honest", "harmless", "well_formed"):
            assert 0 <= b[key] <= 1
        for key in ("follows_instruction", "hallucination", "appropriate", "rude"):
            assert isinstance(b[key], bool)
        assert (b["declines_harmful"] is None) == (spec.category != "harmful")


def test_score_is_fast():
    pairs = [(s.text, respond(s, q, i)) for i, s in enumerate(specs(300, seed=8))
             for q in ("best", "wrong", "verbose")]
    for p, r in pairs:  # parse each prompt once, as PPO does
        data.score(p, r, WORLD)
    t = time.perf_counter()
    for p, r in pairs:
        data.score(p, r, WORLD)
    assert (time.perf_counter() - t) / len(pairs) < 2e-4  # about 4e-5 s on a laptop core


# ----------------------------------------------------------------------------- labelers
def varied_items(n, split="train", seed=9):
    rng = random.Random(seed)
    prompts = data.generate_prompts(WORLD, n, split, rng, set())
    return [(p["prompt"], data.sample_responses(WORLD, p, 4, rng)) for p in prompts]


def test_labeler_agreement_is_calibrated_to_the_paper():
    cfg = data.Config()
    train = data.agreement(data.make_labelers(cfg), varied_items(800), random.Random(0))
    held = data.agreement(data.make_labelers(cfg, True), varied_items(500, "eval"),
                          random.Random(0))
    assert abs(train - 0.73) <= 0.03 and abs(held - 0.73) <= 0.03, (train, held)
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


def test_few_shot_prefix_is_solved_plain_text():
    prefix = data.few_shot_prefix(WORLD, 6)
    assert prefix == data.few_shot_prefix(data.World(WORLD.seed), 6)
    assert "### Instruction" not in prefix
    blocks = [b for b in prefix.split("\n\n") if b.strip()]
    pairs = re.findall(r"Q: (.*?)\nA: (.*?)\n\n", prefix, re.S)
    assert len(pairs) == 6 and len(blocks) >= 6
    for q, a in pairs:
        assert data.score(q, a, WORLD)[0] >= 0.95, (q, a)
        assert not WORLD.parse(q).heldout


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
