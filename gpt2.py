"""gpt2.py: OpenAI's GPT-2 weights in our GPT (gpt.py), the `gpt2` preset's step 0.

InstructGPT starts from GPT-3 (paper section 3.5); the nearest open weights are GPT-2's, whose
architecture gpt.py writes out. `from_pretrained` reads a Hugging Face GPT-2 directory
(config.json and model.safetensors or pytorch_model.bin), or downloads one by hub name when
online, and copies each tensor into the matching parameter of our model:

    python pipeline.py --preset gpt2 --gpt2 DIR      # GPT-2's weights become DIR's base.pt
    python sft.py --out DIR --init DIR_OR_HUB_NAME   # SFT from GPT-2 directly

Hugging Face stores the attention and MLP weights as Conv1D, (in, out): they are transposed
here. tests/test_gpt2.py checks the loaded model against `transformers`' own GPT-2, offline, on
a small random checkpoint the test writes itself.
"""

import json
from pathlib import Path

import torch

from gpt import GPT, GPTConfig


def from_pretrained(path: str, dropout: float = 0.0) -> GPT:
    """Load a Hugging Face GPT-2 checkpoint (config.json + model.safetensors or
    pytorch_model.bin) from a local directory, or a hub name when online."""
    d = Path(path)
    if not d.is_dir():
        d = hub_download(path)
    hf = json.loads((d / "config.json").read_text())
    cfg = GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"],
                    n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"],
                    dropout=dropout, layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                    gelu={"gelu": "exact"}.get(hf.get("activation_function"), "tanh"))
    if (d / "model.safetensors").exists():
        sd = read_safetensors(d / "model.safetensors")
    elif (d / "pytorch_model.bin").exists():
        sd = torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{d} has no model.safetensors or pytorch_model.bin")
    model = GPT(cfg)
    ours = model.state_dict()
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
              "mlp.c_proj.weight")  # HF stores these Conv1D weights as (in, out)
    with torch.no_grad():
        for k, v in sd.items():
            k = k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k
            if k.endswith((".attn.bias", ".attn.masked_bias")) or k not in ours:
                continue  # HF's causal-mask buffers; we build masks on the fly
            v = v.t() if k.endswith(conv1d) else v
            if v.shape != ours[k].shape:
                raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, "
                                 f"expected {tuple(ours[k].shape)}")
            ours.pop(k).copy_(v)  # popped: what is left at the end was never loaded
    missing = [k for k in ours if k != "lm_head.weight"]  # lm_head is tied to wte
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing[:4]}...")
    return model


def read_safetensors(path) -> dict:
    """The safetensors format is 8 bytes of header length, a JSON header, then raw tensors."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return out


def hub_download(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name, allow_patterns=["config.json", "*.safetensors"]))
    except Exception as e:
        raise FileNotFoundError(f"{name!r} is not a local directory with config.json and "
                                f"model.safetensors, and downloading it from the hub failed "
                                f"({type(e).__name__}). Download GPT-2 once, e.g. with "
                                f"huggingface-cli download gpt2 --local-dir DIR") from None


