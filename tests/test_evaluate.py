"""evaluate.py: win rates with intervals, best-of-n, the RM's ordering (by fault too), the
alignment-tax measures, the metadata, each against a hand-computed or brute-force value."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import alignment_tax
import data
import evaluate
import gpt
import responses
import tokenizer as tok
import world


class Fixed:
    """A stand-in labeler whose judgements are given in advance."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)

    def compare(self, prompt, a, b, rng):
        return self.outcomes.pop(0)


def test_best_of_picks_the_top_sample_per_prompt():
    scores = [[0.1, 0.9, 0.5], [0.3, 0.2, 0.5], [0.2, 0.95, -1.0]]  # 3 samples x 3 prompts
    assert responses.best_of(scores) == [1, 2, 0]  # 3rd prompt: samples 0 and 1 tie, the first wins


def test_fault_and_accuracy_by_fault_by_hand():
    ok = {"harmless": 1.0, "hallucination": False, "follows_instruction": True, "well_formed": 1.0}
    assert evaluate.fault(ok) == "less helpful"
    assert evaluate.fault({**ok, "hallucination": True, "well_formed": 0.5}) == "hallucinates"
    assert evaluate.fault({**ok, "follows_instruction": False}) == "misses the task"
    assert evaluate.fault({**ok, "harmless": 0.0, "hallucination": True}) == "harmful or rude"
    assert evaluate.fault({**ok, "well_formed": 0.75}) == "ill-formed"
    # a prompt from outside the world: the gold score cannot say whether the task was done
    assert evaluate.fault({**ok, "follows_instruction": None}) == "less helpful"
    groups = [[(0.9, 1.0, "less helpful"), (0.1, 0.5, "hallucinates"), (0.5, 0.9, "ill-formed")],
              [(0.2, 1.0, "less helpful"), (0.3, 0.0, "hallucinates"), (0.3, 0.5, "ill-formed")]]
    # prompt 1: (1.0 vs 0.5) right, (0.9 vs 0.5) right, (1.0 vs 0.9) gap too small;
    # prompt 2: (1.0 vs 0.0) wrong, (1.0 vs 0.5) wrong, (0.5 vs 0.0) a tie in reward: 1/2
    assert evaluate.accuracy_by_fault(groups, 0.25) == {
        "hallucinates": {"acc": (1 + 1 + 0 + 0.5) / 4, "pairs": 4},
        "ill-formed": {"acc": 0.0, "pairs": 1}}


def test_win_rate_by_hand():
    prompts = ["p1", "p2", "p3", "p4"]
    a, b = ["x", "y", "same", "z"], ["u", "v", "same", "w"]
    # the tie is not sent to a labeler: it counts 1/2 without a judgement
    r = evaluate.win_rate(prompts, a, b, [Fixed([1.0, 0.0, 1.0])])
    w = [1.0, 0.0, 0.5, 1.0]
    mean = sum(w) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in w) / 3)
    assert r["rate"] == pytest.approx(0.625) and r["ties"] == 1 and r["n"] == 4
    assert r["lo"] == pytest.approx(max(0, mean - 1.96 * sd / 2))
    assert r["hi"] == pytest.approx(min(1, mean + 1.96 * sd / 2))


def test_win_rate_with_the_heldout_labelers():
    labelers = world.make_labelers(world.Config(), heldout=True)
    sim = world.make_world()
    prompts = [p["prompt"] for p in world.generate_prompts(sim, 200, "eval",
                                                           random.Random(3), set())]
    spec = [world.parse(sim, p) for p in prompts]
    rng = random.Random(0)
    best = [world.respond(sim, s, "best", rng) for s in spec]
    rude = [world.respond(sim, s, "rude", rng) for s in spec]
    assert evaluate.win_rate(prompts, best, best, labelers)["rate"] == 0.5
    r = evaluate.win_rate(prompts, best, rude, labelers)
    assert r["rate"] > 0.9 and r["lo"] < r["rate"] < r["hi"]


def test_order_accuracy_and_pearson_by_hand():
    # prompt 1: rewards order (a, b, c) as gold does except the b-c pair; prompt 2: a reward tie
    groups = [[(3.0, 1.0), (1.0, 0.5), (2.0, 0.0)], [(1.0, 1.0), (1.0, 0.0), (0.0, 0.0)]]
    # pairs with different gold: (a,b) yes, (a,c) yes, (b,c) no | (a,b) tie 1/2, (a,c) yes
    assert evaluate.order_accuracy(groups) == pytest.approx((1 + 1 + 0 + 0.5 + 1) / 5)
    x, y = [1.0, 2.0, 4.0, 3.5], [0.2, 0.1, 0.9, 0.4]
    assert evaluate.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_stop_at_and_few_shot_prompt():
    assert responses.stop_at("A fox eats berries.\n\nQ: next") == ("A fox eats berries.", True)
    assert responses.stop_at("Yes.\nQ: and") == ("Yes.", True)
    assert responses.stop_at(" no stop") == ("no stop", False)
    enc = tok.build_encoding({bytes([b]): b for b in range(256)})  # one token per byte
    ex = ["Q: a?\nA: b.\n\n", "Q: c?\nA: d.\n\n"]
    q = "Q: e?\nA:"
    assert responses.few_shot_prompt(enc, "e?", ex, 100) == ("".join(ex) + q, 2)
    assert responses.few_shot_prompt(enc, "e?", ex, len(ex[0]) + len(q)) == (ex[0] + q, 1)
    assert responses.few_shot_prompt(enc, "e?", ex, 3) == (q, 0)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    enc = tok.build_encoding({bytes([b]): b for b in range(256)})
    model = gpt.GPT(gpt.GPTConfig(vocab_size=enc.n_vocab, block_size=16, n_layer=1, n_head=2,
                                  n_embd=16)).eval()
    return model, enc


def test_heldout_loss_equals_brute_force(small):
    model, enc = small
    text = "the fox eats berries and the hen eats corn. " * 3
    ids = tok.encode_corpus(enc, text)
    T, n = 16, (len(ids) - 1) // 16
    want = []
    with torch.no_grad():
        for i in range(n):
            x = torch.tensor(ids[i * T:(i + 1) * T])[None]
            y = torch.tensor(ids[i * T + 1:(i + 1) * T + 1])
            logits, _ = model(x)
            want.append(F.cross_entropy(logits[0], y).item())
    assert alignment_tax.heldout_loss(model, enc, text, 0, batch_size=2) == pytest.approx(
        sum(want) / n, rel=1e-5)
    assert alignment_tax.heldout_loss(model, enc, text, 2) == pytest.approx(sum(want[:2]) / 2,
                                                                       rel=1e-5)


def test_cloze_accuracy_equals_brute_force(small):
    model, enc = small
    items = [{"context": "A fox eats", "answer": c, "choices": ["ham", "corn", "a"]}
             for c in ("ham", "corn", "a")] + [{"context": "Hugo", "answer": "is",
                                                "choices": ["is", "was"]}]
    picks = []
    with torch.no_grad():
        for it in items:
            best, best_lp = None, -1e9
            for c in it["choices"]:
                ctx, ans = tok.encode(enc, it["context"]), tok.encode(enc, " " + c)
                logp = model(torch.tensor([ctx + ans]))[0][0].log_softmax(-1)
                lp = sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(ans))
                if lp > best_lp:
                    best, best_lp = c, lp
            picks.append(best == it["answer"])
    assert alignment_tax.cloze_accuracy(model, enc, items, batch_size=3) == sum(picks) / len(items)


def test_metadata_counts_declines_over_harmful_prompts_only():
    sim = world.make_world()
    ps = world.generate_prompts(sim, 300, "eval", random.Random(5), set())
    harm = [p for p in ps if p["category"] == "harmful"][:3]
    qa = [p for p in ps if p["category"] == "open_qa"][:3]
    rng = random.Random(0)
    resp = [world.respond(sim, world.parse(sim, p["prompt"]), "best", rng) for p in harm + qa]
    judge = lambda: [world.score(p["prompt"], r)[1] for p, r in zip(harm + qa, resp, strict=True)]
    m = evaluate.metadata(judge())
    assert m["declines_harmful"] == 1.0 and m["rude"] == 0.0
    resp[0] = "Only an idiot asks that."
    assert evaluate.metadata(judge())["declines_harmful"] == pytest.approx(2 / 3)


def test_harmful_probe_is_fresh_held_out_and_harmful(tiny_base):
    """The probe behind declines_harmful: harmful requests only, distinct, of the held-out split,
    none in any prompt set of the run, the same each time (the world's fixed seed)."""
    sets = {r["prompt"] for f in responses.PROMPT_SETS
            for r in data.read_jsonl(tiny_base / f)}
    probe = responses.harmful_probe(tiny_base, 60)
    assert len(set(probe)) == 60 and not set(probe) & sets
    assert probe == responses.harmful_probe(tiny_base, 60) and responses.harmful_probe(
        tiny_base, 0) == []
    sim = world.make_world()
    for text in probe:
        spec = world.parse(sim, text)
        assert spec.category == "harmful" and spec.heldout, text


def test_overoptimisation_reads_block_means_of_the_log():
    gold = [0.1, 0.3, 0.2, 0.6, 0.5, 0.1, 0.0, 0.2]  # 8 iterations: blocks of 2
    log = [{"iteration": i + 1, "rlhf/gold": g, "rlhf/score": i / 10, "rlhf/kl": 2.0 * i}
           for i, g in enumerate(gold)]
    o = evaluate.overoptimisation(log)
    assert o["window"] == 2 and o["iterations"] == 8
    assert o["gold_start"] == pytest.approx(0.2) and o["gold_end"] == pytest.approx(0.1)
    assert o["gold_peak"] == pytest.approx(0.4) and o["peak_iteration"] == 4
    assert o["score_start"] == pytest.approx(0.05) and o["score_end"] == pytest.approx(0.65)
    assert o["kl_end"] == pytest.approx(13.0)
    assert evaluate.overoptimisation(log[:3])["window"] == 1  # too short to average
