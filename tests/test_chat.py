"""chat.py with the models the repository commits (results/cpu/models): they load without a
run, are the run's weights in half precision, and know the world better than chance."""

import random

import pytest
import torch

import alignment_tax
import chat
import evaluate
import responses
import stage
import world
from world.corpus import make_cloze
from world.prompts import random_spec
from world.tasks import TASKS_BY_CAT

M = chat.COMMITTED


@pytest.fixture(scope="module")
def committed():
    models, enc, rm = chat.load(M, ["sft", "ppo_ptx"])
    return models, enc, rm


def test_committed_models_are_small_and_complete(committed):
    models, enc, rm = committed
    assert set(models) == {"sft", "ppo_ptx"} and rm is not None
    for n in ("sft", "ppo_ptx", "rm"):
        assert (M / f"{n}.pt").stat().st_size < 3e6  # half precision, weights only
        ck = stage.load_checkpoint(M / f"{n}.pt")
        assert "optimizer" not in ck and "log" not in ck
        assert {str(v.dtype) for v in ck["model"].values() if v.numel() > 1} == {"torch.float16"}
    sft = models["sft"]  # loading casts back to fp32, the unembedding still tied
    assert sft.lm_head.weight.dtype == torch.float32
    assert sft.lm_head.weight.data_ptr() == sft.transformer.wte.weight.data_ptr()


def test_committed_models_know_the_world_better_than_chance(committed):
    """A four-way cloze over the world's facts (chance 25%), and open questions answered
    greedily: right for their own question far more often than for another one's."""
    models, enc, _ = committed
    sim = world.make_world()
    items = make_cloze(sim, 120, random.Random(0))
    rng = random.Random(1)
    questions = [random_spec(sim, rng.choice(TASKS_BY_CAT["open_qa"]), "eval", rng).text
                 for _ in range(60)]

    def right(q, a):
        g, b = world.score(q, a)
        return g > 0 and not b["hallucination"]

    for name, model in models.items():
        assert alignment_tax.cloze_accuracy(model, enc, items) > 0.8, name
        said = [r["response"] for r in responses.answer(
            model, enc, questions, evaluate.Config(temperature=0.0))]
        own = sum(right(q, a) for q, a in zip(questions, said, strict=True)) / len(questions)
        other = sum(right(q, a) for q, a in zip(questions, said[1:] + said[:1],
                                                  strict=True)) / len(questions)
        assert own > other + 0.3 and own > 0.5, (name, own, other)


def test_chat_without_out_talks_to_the_committed_models(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/cpu here
    assert chat.default_out() == M
    chat.main(["--prompt", "Where does a bear live?", "--samples", "2"])
    out = capsys.readouterr().out
    assert out.count("[sft] (RM ") == 2 and out.count("[ppo_ptx] (RM ") == 2
    assert "[ppo]" not in out  # not committed, and not asked for by default


def test_export_keeps_the_answers(committed, tmp_path):
    """Exporting again what was exported changes nothing the models say (fp16 -> fp16)."""
    models, enc, _ = committed
    chat.export(M, tmp_path / "again")
    again, _, _ = chat.load(tmp_path / "again", ["sft"])
    q = ["Where does a bear live?", "Write two sentences about the deer."]
    cfg = evaluate.Config(temperature=0.0)
    assert [r["response"] for r in responses.answer(again["sft"], enc, q, cfg)] == \
        [r["response"] for r in responses.answer(models["sft"], enc, q, cfg)]
