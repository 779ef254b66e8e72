"""sft.py: the response-only loss, learning, end-of-text, exact resume, errors."""

import json
import math
import shutil

import pytest
import torch
from conftest import copy_of

import data
import gpt
import sft
import stage
import tokenizer as tok
import world


@pytest.fixture(scope="module")
def run(tiny_base, tmp_path_factory):
    """A tiny run directory: the tiny world's datasets and a small pretrained base.pt."""
    return copy_of(tiny_base, tmp_path_factory.mktemp("sft") / "run")


@pytest.fixture(scope="module")
def tuned(run):
    """SFT on the tiny run's 300 demonstrations: (config, history)."""
    cfg = sft.Config(out=str(run), epochs=4, lr=2e-3, batch_size=16, eval_interval=18,
                     n_eval_prompts=32, max_new_tokens=40, n_samples=5,
                     ptx_fraction=0.0)  # demonstrations alone (the mix: the resume test)
    return cfg, sft.train(cfg)


def small_run(run, dst, n=48):
    """A copy of the run directory with only n demonstrations, for the fast tests."""
    dst.mkdir()
    for f in ("base.pt", "tokenizer.tiktoken", "eval_prompts.jsonl", "corpus.txt"):
        shutil.copy(run / f, dst / f)
    data.write_jsonl(dst / "sft.jsonl", data.read_sft(run / "sft.jsonl")[:n])
    return dst


# ----------------------------------------------------------------------------- the loss


class FixedLogits(torch.nn.Module):
    """A stand-in model whose logits are given: GPT.forward's cross-entropy on them."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, tokens, attention_mask=None, targets=None):
        V = self.logits.size(-1)
        return None, torch.nn.functional.cross_entropy(self.logits.view(-1, V),
                                                       targets.view(-1), ignore_index=-100)


def test_sft_loss_by_hand():
    # columns: padding, prompt, response, end-of-text; vocabulary of 3
    tokens = torch.tensor([[0, 1, 2, 0]])
    response_mask = torch.tensor([[0, 0, 1, 1]])
    ln2, ln3 = math.log(2), math.log(3)
    logits = torch.tensor([[[9.0, -9.0, 5.0],  # predicts the prompt token: excluded
                            [0.0, 0.0, ln2],  # p(2) = 2/4
                            [ln3, 0.0, 0.0],  # p(0) = 3/5
                            [-7.0, 8.0, 1.0]]])  # after the end: no target
    assert sft.sft_targets(tokens, response_mask).tolist() == [[-100, 2, 0, -100]]
    loss, stats = sft.sft_loss(FixedLogits(logits), tokens, None, response_mask)
    want = (-math.log(2 / 4) - math.log(3 / 5)) / 2
    assert loss.item() == pytest.approx(want, abs=1e-6)
    assert stats["tokens"] == 2 and stats["loss/sft"] == pytest.approx(want, abs=1e-6)


def test_prompt_targets_change_neither_loss_nor_gradient():
    torch.manual_seed(0)
    pairs = [(torch.randint(1, 50, (n,)).tolist(), p) for n, p in ((12, 7), (9, 3), (5, 4))]
    tokens, _, resp = gpt.batch_pairs(pairs, pad_id=0)  # (3, 12), left-padded
    logits = torch.randn(*tokens.shape, 50, requires_grad=True)

    def loss_and_grad(toks):
        logits.grad = None
        loss, _ = sft.sft_loss(FixedLogits(logits), toks, None, resp)
        loss.backward()
        return loss.detach(), logits.grad.clone()

    loss, grad = loss_and_grad(tokens)
    other = torch.where(resp.bool(), tokens, torch.randint(1, 50, tokens.shape))
    assert not torch.equal(other, tokens)  # prompt and padding tokens did change
    loss2, grad2 = loss_and_grad(other)
    assert torch.equal(loss, loss2) and torch.equal(grad, grad2)
    # the gradient lives only where a response token is the next target
    targets_response = torch.zeros_like(resp, dtype=torch.bool)
    targets_response[:, :-1] = resp[:, 1:].bool()
    assert grad[~targets_response].abs().max() == 0 and grad[targets_response].abs().min() > 0
    # and a response token's target does count
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 50
    assert not torch.equal(loss_and_grad(changed)[0], loss)


# ----------------------------------------------------------------------------- data


def test_long_prompt_cut_from_the_left_response_kept(run):
    enc = tok.load_tokenizer(run / "tokenizer.tiktoken")
    long = {"prompt": "What does a fox eat? " * 40 + "Tell me now.", "response": "Berries."}
    short = {"prompt": "Hi!", "response": "Hello. How can I help you?"}
    pairs, n_cut = sft.encode_demos([short, long, short], enc, 64)
    assert n_cut == 1
    ids, n_prompt = pairs[1]
    response = tok.encode(enc, "Berries.") + [enc.eot_token]
    assert len(ids) == 64 and ids[n_prompt:] == response  # the response whole, at the end
    templated = tok.encode(enc, data.format_prompt(long["prompt"]))
    assert ids[:n_prompt] == templated[-n_prompt:]  # the prompt's end, i.e. "### Response:"
    assert pairs[0] == pairs[2] and len(pairs[0][0]) < 64  # short pairs untouched
    with pytest.raises(data.DataError, match=r"sft.jsonl:2: response of"):
        sft.encode_demos([short, {"prompt": "Hi", "response": "la " * 80}], enc, 64)


def test_missing_base_names_the_command(tmp_path):
    data.write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "Hi", "response": "Hello."}])
    with pytest.raises(FileNotFoundError, match=r"base.pt not found.*python pretrain.py --data"):
        sft.train(sft.Config(out=str(tmp_path)))


def test_init_from_gpt2_weights(run, tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    d = small_run(run, tmp_path / "hf")
    (d / "base.pt").unlink()  # the weights come from the Hugging Face directory instead
    enc = tok.load_tokenizer(d / "tokenizer.tiktoken")
    monkeypatch.setattr(tok, "get_encoding", lambda name: enc)  # offline stand-in for GPT-2's
    torch.manual_seed(0)
    hcfg = transformers.GPT2Config(vocab_size=enc.n_vocab, n_positions=128, n_embd=32,
                                   n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(hcfg).save_pretrained(tmp_path / "gpt2")
    hist = sft.train(sft.Config(out=str(d), init=str(tmp_path / "gpt2"), epochs=2, lr=3e-3,
                                batch_size=8, n_eval_prompts=2, max_new_tokens=8,
                                ptx_fraction=0.0))
    assert hist["loss/val"][-1] < hist["loss/val"][0] - 0.2  # from random weights: slowly
    ck = stage.load_checkpoint(d / "sft.pt", enc=enc)
    assert (ck["config"]["n_embd"], ck["config"]["block_size"]) == (32, 128)


# ----------------------------------------------------------------------------- learning


def test_sft_learns_and_writes_its_files(run, tuned):
    cfg, hist = tuned
    assert hist["step"][0] == 0 and hist["step"][-1] == 4 * math.ceil(285 / 16)
    assert hist["loss/val"][-1] < hist["loss/val"][0] - 0.3
    assert hist["loss/train"][-1] < hist["loss/train"][0] - 0.3
    assert hist["gold/score"][-1] > hist["gold/score"][0] + 0.2  # better answers, too
    ck = stage.load_checkpoint(run / "sft.pt")
    assert ck["step"] == hist["step"][-1] and ck["config"]["dropout"] == 0.0
    assert ck["tokenizer"] == stage.load_checkpoint(run / "base.pt")["tokenizer"]
    logged = [json.loads(x) for x in (run / "sft_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == hist["step"]
    samples = data.read_jsonl(run / "sft_samples.jsonl")
    assert len(samples) == cfg.n_samples
    for s in samples:
        assert s["score"] == world.score(s["prompt"], s["response"])[0]


def test_sft_answers_follow_the_template_and_end(run, tuned):
    enc = tok.load_tokenizer(run / "tokenizer.tiktoken")
    prompts = data.read_prompts(run / "eval_prompts.jsonl")[:48]
    ended = {}
    for name in ("base", "sft"):
        model, _ = stage.load_model(run / f"{name}.pt", enc=enc)
        rows = sft.answer(model.eval(), enc, prompts, 40)
        ended[name] = sum(r["ended"] for r in rows) / len(rows)
        if name == "sft":  # answers, not a next "### Instruction:" block
            assert all("###" not in r["response"] for r in rows)
    assert ended["sft"] >= 0.8 and ended["sft"] >= ended["base"] + 0.5, ended


def test_resume_equals_uninterrupted(run, tmp_path, monkeypatch):
    def cfg(name, **kw):  # 43 train demonstrations, 6 steps per epoch, dropout and ptx on
        return sft.Config(out=str(small_run(run, tmp_path / name)), epochs=2, batch_size=8,
                          dropout=0.1, val_fraction=0.1, ptx_fraction=0.25, eval_interval=5,
                          n_eval_prompts=4, max_new_tokens=8, n_samples=2, **kw)

    straight_hist = sft.train(cfg("straight"))
    straight = stage.load_checkpoint(tmp_path / "straight" / "sft.pt")

    real, calls = stage.lr_at, {"n": 0}

    def crash(*a, **kw):  # once per training step: dies in step 9, in the second epoch
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(stage, "lr_at", crash)
    c2 = cfg("crashed")
    with pytest.raises(KeyboardInterrupt):
        sft.train(c2)
    assert stage.load_checkpoint(tmp_path / "crashed" / "sft.pt")["step"] == 5  # mid-epoch
    monkeypatch.setattr(stage, "lr_at", real)
    c2.resume = True
    hist = sft.train(c2)
    resumed = stage.load_checkpoint(tmp_path / "crashed" / "sft.pt")
    assert resumed["step"] == straight["step"] == 12 and hist == straight_hist
    for k in straight["model"]:
        assert torch.equal(straight["model"][k], resumed["model"][k]), k

    # a non-finite loss stops the run and keeps the last good checkpoint
    before = (tmp_path / "crashed" / "sft.pt").read_bytes()
    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr(sft, "sft_loss", lambda *a: (nan * 1.0, {}))
    c2.epochs = 3
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        sft.train(c2)
    assert (tmp_path / "crashed" / "sft.pt").read_bytes() == before
