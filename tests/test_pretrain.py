"""pretrain.py: the pretraining loop learns, resumes exactly, keeps its last good checkpoint
through a NaN, and names the command that makes a missing input."""

import json
import math
import random

import pytest
import torch

import gpt
import pretrain
import stage
from gpt import GPT


def world_text(n_docs=400, seed=0):
    rng = random.Random(seed)
    animals, foods = ["fox", "cat", "dog", "hen", "cow"], ["berries", "fish", "bones", "corn"]
    docs = []
    for _ in range(n_docs):
        a, f = rng.choice(animals), rng.choice(foods)
        docs.append(f"The {a} eats {f}. The {a} is happy. I like the {a}.")
    return "<|endoftext|>".join(docs)


def tiny_cfg(tmp_path, **kw):
    data = tmp_path / "corpus.txt"
    if not data.exists():
        data.write_text(world_text())
    base = dict(data=str(data), out=str(tmp_path / "run"), vocab_size=300, block_size=32,
                n_layer=2, n_head=2, n_embd=32, batch_size=16, max_iters=200, lr=3e-3,
                warmup_iters=10, eval_interval=100, eval_iters=4)
    return pretrain.Config(**{**base, **kw})


def test_pretraining_learns(tmp_path):
    hist = pretrain.train(tiny_cfg(tmp_path))
    assert hist["loss/val"][-1] < 0.5 * math.log(300)
    ck = stage.load_checkpoint(tmp_path / "run" / "base.pt")
    assert ck["step"] == 200 and ck["tokenizer"].startswith("bpe-")
    assert (tmp_path / "run" / "tokenizer.tiktoken").exists()
    lines = (tmp_path / "run" / "pretrain.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [100, 200]


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, max_iters=30, eval_interval=10, dropout=0.1)
    pretrain.train(cfg)
    straight = stage.load_checkpoint(tmp_path / "run" / "base.pt")["model"]

    real, calls = stage.get_batch, {"n": 0}

    def crash(*a, **kw):  # dies at step 22: 21 train + 2 x 4 eval batches came before
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(stage, "get_batch", crash)
    cfg2 = tiny_cfg(tmp_path, max_iters=30, eval_interval=10, dropout=0.1,
                    out=str(tmp_path / "run2"))
    with pytest.raises(KeyboardInterrupt):
        pretrain.train(cfg2)
    assert stage.load_checkpoint(tmp_path / "run2" / "base.pt")["step"] == 20
    monkeypatch.setattr(stage, "get_batch", real)
    cfg2.resume = True
    pretrain.train(cfg2)
    resumed = stage.load_checkpoint(tmp_path / "run2" / "base.pt")["model"]
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_nan_loss_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, max_iters=20, eval_interval=10)
    pretrain.train(cfg)
    ckpt = tmp_path / "run" / "base.pt"
    before = ckpt.read_bytes()
    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr(gpt, "cross_entropy", lambda *a, **kw: nan * 1.0)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        pretrain.train(tiny_cfg(tmp_path, max_iters=40, eval_interval=10, resume=True))
    assert ckpt.read_bytes() == before


def test_checkpoint_errors(tmp_path):
    pretrain.train(tiny_cfg(tmp_path, max_iters=10, eval_interval=10))
    ckpt = tmp_path / "run" / "base.pt"
    with pytest.raises(FileNotFoundError, match="python pretrain.py"):
        stage.load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match="corrupt or truncated"):
        stage.load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(RuntimeError, match="corrupt or truncated"):
        stage.load_checkpoint(garbage)
    import tokenizer as tok
    other = tok.build_encoding(tok.train_bpe("completely different words here " * 50, 270))
    with pytest.raises(ValueError, match="tokenizer"):
        stage.load_checkpoint(ckpt, enc=other)
    model, _ = stage.load_model(ckpt)
    assert isinstance(model, GPT)


def test_bad_data_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m world"):
        pretrain.train(tiny_cfg(tmp_path, data=str(tmp_path / "nope.txt")))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        pretrain.train(tiny_cfg(tmp_path, data=str(empty)))
