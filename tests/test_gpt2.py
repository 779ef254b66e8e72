"""gpt2.py: GPT-2's weights loaded into our GPT equal Hugging Face's GPT-2 on the same
checkpoint (logits and greedy generation), from safetensors and from a torch .bin, offline on a
small random checkpoint written here; and its errors name what is wrong."""

import json

import pytest
import torch

import gpt2


def hf_gpt2(tmp_path, safetensors=True):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hcfg = transformers.GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2,
                                   n_head=4, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    hf = transformers.GPT2LMHeadModel(hcfg).eval()
    with torch.no_grad():  # random, non-trivial biases and norms so every weight matters
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    if safetensors:
        hf.save_pretrained(tmp_path)
    else:
        hcfg.save_pretrained(tmp_path)
        torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    return hf


@pytest.mark.parametrize("safetensors", [True, False])
def test_from_pretrained_equals_huggingface(tmp_path, safetensors):
    hf = hf_gpt2(tmp_path, safetensors)
    ours = gpt2.from_pretrained(str(tmp_path)).eval()
    assert ours.config.gelu == "tanh"  # GPT-2's approximation, as its weights were trained
    idx = torch.randint(0, 97, (3, 40))
    with torch.no_grad():
        want = hf(idx).logits
        got, _ = ours(idx)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    prompt = idx[:1, :5]
    with torch.no_grad():
        hf_tokens = hf.generate(prompt, max_new_tokens=20, do_sample=False, min_new_tokens=20,
                                pad_token_id=0)
    our_tokens, _, _ = ours.generate(prompt, 20, temperature=0)
    assert our_tokens.tolist() == hf_tokens.tolist()


def test_from_pretrained_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(gpt2, "hub_download", lambda name: (_ for _ in ()).throw(
        FileNotFoundError(f"{name!r} is not a local directory")))
    with pytest.raises(FileNotFoundError, match="not a local directory"):
        gpt2.from_pretrained(str(tmp_path / "nowhere"))
    hf_gpt2(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["n_embd"], cfg["n_head"] = 64, 4
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="has shape"):
        gpt2.from_pretrained(str(tmp_path))
