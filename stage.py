"""stage.py: what every stage of the recipe shares to run, written once.

Each stage (pretrain.py, sft.py, reward.py, ppo.py, evaluate.py) is a script with a `Config`
dataclass, an entry function (`train`, `collect`, `evaluate`) and a run directory it reads and
writes. What they need beside the
model (gpt.py) and the paper's math (their own files) lives here, as nanoGPT's train.py
holds what its model.py does not:

    config_from_args         the CLI: one --flag per Config field, its help the field's comment
    pick_device, autocast    the device, and bf16 autocast where it is supported (speed only)
    save_checkpoint, ...     checkpoints written atomically and loaded safely (weights_only),
                             with errors that name the command that makes a missing file
    rng_state, trim_log      what an exact resume restores: RNG streams, the log up to it
    make_optimizer, lr_at    AdamW with decay on matrices only, warmup + cosine schedule
    optimizer_step           one clipped step that refuses a non-finite loss (no checkpoint
                             is ever overwritten by a NaN)
    get_batch, load_corpus   random windows of the pretraining corpus (step 0 and the ptx terms)

Nothing here is from the paper; every stage's docstring says what it adds.
"""

import argparse
import dataclasses
import inspect
import json
import math
import os
import re
import sys
from pathlib import Path

import torch

import tokenizer as tok
from gpt import GPT, GPTConfig

# ----------------------------------------------------------------------------- the command line


def config_from_args(cls, argv=None, **defaults):
    """An argparse CLI generated from a Config dataclass: one --flag per field, its help the
    comment beside the field."""
    p = argparse.ArgumentParser(description=(sys.modules[cls.__module__].__doc__ or "")
                                .split("\n")[0])
    helps = dict(re.findall(r"^\s+(\w+): [^=]+=.*?#\s*(.+)$", inspect.getsource(cls), re.M))
    for f in dataclasses.fields(cls):
        d = defaults.get(f.name, f.default)
        h = f"{helps.get(f.name, '')} (default: {d})".replace("%", "%%")
        if f.type in (bool, "bool"):
            p.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=d,
                           help=helps.get(f.name, "").replace("%", "%%"))
        else:
            typ = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            p.add_argument(f"--{f.name}", type=typ, default=d, help=h)
    return cls(**vars(p.parse_args(argv)))


# ----------------------------------------------------------------------------- device and precision


def pick_device(name="auto") -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def autocast(device: str, dtype: str = "auto"):
    """bf16 autocast where the device supports it (cuda with bf16), else a no-op context."""
    kind = str(device).split(":")[0]  # "cuda:0" -> "cuda"
    use = dtype == "bf16" or (dtype == "auto" and kind == "cuda"
                              and torch.cuda.is_bf16_supported())
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=use)


# ----------------------------------------------------------------------- checkpoints and resume


def save_checkpoint(obj: dict, path) -> None:
    """Atomic: write a temp file, then rename, so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, make_cmd: str = "python pretrain.py --data FILE --out DIR",
                    enc=None):
    """torch.load(weights_only=True) with clear errors; checks the tokenizer when enc given."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; it is made by: {make_cmd}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong pickle, random bytes...
        raise RuntimeError(f"{path} is corrupt or truncated ({type(e).__name__}: {e}); "
                           f"delete it and re-run: {make_cmd}") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise RuntimeError(f"{path} is not a checkpoint of this project (no model/config)")
    if enc is not None and ck.get("tokenizer") != tok.tokenizer_id(enc):
        raise ValueError(f"{path} was trained with tokenizer {ck.get('tokenizer')!r}, "
                         f"but the run uses {tok.tokenizer_id(enc)!r}")
    return ck


def load_model(path, make_cmd=None, enc=None, device="cpu", dropout=None):
    """A GPT from a checkpoint written by any stage ({"config", "model", ...}); dropout
    overrides the checkpoint's (SFT trains with residual dropout, paper C.1)."""
    ck = load_checkpoint(path, make_cmd or "python pretrain.py --data FILE --out DIR", enc)
    cfg = GPTConfig.from_dict(ck["config"])
    model = GPT(cfg if dropout is None else dataclasses.replace(cfg, dropout=dropout))
    model.load_state_dict(ck["model"])
    return model.to(device), ck


def need(path, make_cmd: str) -> Path:
    """The path, or a FileNotFoundError that names the command that makes it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} not found; it is made by: {make_cmd}")
    return Path(path)


def load_encoding(out, tokenizer_id: str):
    """The tokenizer a checkpoint was trained with: GPT-2's, or the run's out/tokenizer.tiktoken,
    checked against the id the checkpoint recorded (two runs mixed in one directory)."""
    if tokenizer_id == "gpt2":
        return tok.get_encoding("gpt2")
    path = need(Path(out) / "tokenizer.tiktoken", f"python pretrain.py --out {out}")
    enc = tok.load_tokenizer(path)
    if tok.tokenizer_id(enc) != tokenizer_id:
        raise ValueError(f"{path} is {tok.tokenizer_id(enc)!r}, but the checkpoint was trained "
                         f"with {tokenizer_id!r}: two runs are mixed in {out}")
    return enc


def rng_state() -> dict:
    """The global generators a resume must restore (dropout draws): CPU, and CUDA if present."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- logs


def log_jsonl(path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def trim_log(path, key: str, last) -> None:
    """On resume: drop the log records written after the checkpoint, before the crash."""
    p = Path(path)
    if p.exists():
        keep = [line for line in p.read_text().splitlines() if json.loads(line)[key] <= last]
        p.write_text("".join(line + "\n" for line in keep))


# ----------------------------------------------------------------------- optimizer and schedule


def lr_at(step, lr, warmup, total):
    """Linear warmup, then cosine decay to lr/10 (nanoGPT's schedule)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr / 10 + 0.5 * (1 + math.cos(math.pi * frac)) * (lr - lr / 10)


def optimizer_step(model, opt, loss, grad_clip, step, ckpt) -> None:
    """One AdamW step on loss, gradients norm-clipped; a non-finite loss stops the run before
    anything is written, so the last good checkpoint survives."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {step}; stopped without "
                                 f"saving, the last good checkpoint ({ckpt}) is kept. "
                                 f"Try a lower --lr")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def make_optimizer(model, lr, weight_decay, betas=(0.9, 0.95)):
    """AdamW; decay on 2-D weights (matmuls, embeddings), none on biases and LayerNorms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)  # fused: speed only


# ----------------------------------------------------------------------------- corpus windows


def get_batch(data, block_size, batch_size, gen):
    """Random windows of a 1-D token tensor: x (B, T) and targets shifted by one."""
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=gen)
    x = torch.stack([data[i:i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])
    return x.long(), y.long()


def load_corpus(path) -> str:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found; the default world's corpus is made by: "
                                f"python -m world --out {p.parent}")
    text = p.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{p} is empty: nothing to train on")
    return text
