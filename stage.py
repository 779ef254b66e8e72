"""stage.py: what every stage of the recipe shares to run, written once.

Each stage (pretrain.py, sft.py, reward.py, ppo.py, evaluate.py) is a script with a `Config`
dataclass, an entry function (`train`, `collect`, `evaluate`) and a run directory it reads and
writes. What they need beside the model (gpt.py) and the paper's math (their own files) lives
here, as nanoGPT's train.py holds what its model.py does not:

    config_from_args         the CLI: one --flag per Config field, its help the field's comment
    run_cli                  a command's errors as one line (traceback with --debug or
                             INSTRUCTGPT_DEBUG=1), Ctrl-C as a clean stop saying how to resume
    pick_device, autocast    the device, and bf16 autocast where it is supported (speed only;
                             uses_bf16 says whether it is on)
    save_checkpoint, ...     checkpoints written atomically (a full disk leaves the old one and
                             says so) and loaded safely (weights_only), with errors that name
                             the command that makes a missing or broken file
    digest                   what a file holds, a checkpoint by what the next stage loads
    Log                      a stage's JSONL log, written with its checkpoints and stored in
                             them: a failed run never leaves a new log beside an old model
    lock, locked             one run at a time per run directory
    make_optimizer, lr_at    AdamW with decay on matrices only, warmup + cosine schedule
    optimizer_step           one clipped step that refuses a non-finite loss (no checkpoint
                             is ever overwritten by a NaN)
    get_batch, load_corpus   random windows of the pretraining corpus (step 0 and the ptx terms)

Nothing here is from the paper; every stage's docstring says what it adds.
"""

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import os
import re
import sys
from pathlib import Path

import torch

import data
import tokenizer as tok
from gpt import GPT, GPTConfig

try:
    import fcntl
except ImportError:  # Windows: no flock; the run directory is then not locked
    fcntl = None

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


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags, so fp32
        return ""


@functools.cache  # autocast asks at every step
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512_BF16 or AMX, Linux's flags) and
    PyTorch may use it: there bf16 matmuls run about 2.5x faster than fp32's; elsewhere bf16 is
    emulated, and slower. Kernels held below AVX-512 (ATEN_CPU_CAPABILITY=avx2, or oneDNN's
    ONEDNN_MAX_CPU_ISA=AVX2, as an AVX2 laptop is imitated) count as no bf16."""
    flags = _cpuinfo().split()
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "")
    held = isa.upper() in ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                           "AVX512_CORE_VNNI")  # oneDNN's ISAs without bf16 matmuls
    return (("avx512_bf16" in flags or "amx_bf16" in flags) and not held
            and torch.backends.cpu.get_cpu_capability() == "AVX512")


def machine() -> dict:
    """What a timing was measured on: CPU model, its AVX-512 flags, threads, torch, bf16."""
    model = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.M)
    return {"cpu": model.group(1).strip() if model else "unknown", "threads":
            torch.get_num_threads(), "torch": torch.__version__, "bf16": cpu_has_bf16(),
            "avx512": sorted(set(re.findall(r"\bavx512\w*", _cpuinfo())))}


def autocast(device: str, dtype: str = "auto", sampling: bool = False):
    """bf16 autocast where the device computes bf16 natively (cuda with bf16, a CPU with
    cpu_has_bf16), else a no-op context: fp32. On a CPU, "auto" keeps sampling in fp32: one
    token at a time the matmuls are small and bf16's casts cost more than they save
    (docs/EXPERIMENTS.md, speed). Weights, optimizer states and every loss stay fp32;
    tests/test_gpt.py bounds what bf16 changes in log-probs and losses."""
    kind = str(device).split(":")[0]  # "cuda:0" -> "cuda"
    return torch.autocast(device_type=kind, dtype=torch.bfloat16,
                          enabled=uses_bf16(device, dtype, sampling))


def uses_bf16(device: str, dtype: str = "auto", sampling: bool = False) -> bool:
    """Whether autocast(device, dtype, sampling) computes in bf16."""
    kind = str(device).split(":")[0]
    native = (kind == "cuda" and torch.cuda.is_bf16_supported()) or (
        kind == "cpu" and cpu_has_bf16() and not sampling)
    return dtype == "bf16" or (dtype == "auto" and native)


# ----------------------------------------------------------------------- checkpoints and resume


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names it and the command that makes it."""


def save_checkpoint(obj: dict, path, log: "Log | None" = None) -> None:
    """Atomic: write a temp file, then rename, so a crash never leaves half a checkpoint (and a
    full disk leaves the old one and no temp file). With a log, its records go into the
    checkpoint and the log file is rewritten from them right after: a stage's model and its log
    change together, and only at its checkpoints."""
    if log is not None:
        obj = {**obj, "log": list(log.records)}
    data.write_atomic(path, lambda tmp: torch.save(obj, tmp))
    if log is not None:
        log.publish()


def load_checkpoint(path, make_cmd: str = "python pretrain.py --data FILE --out DIR",
                    enc=None, mmap: bool = False):
    """torch.load(weights_only=True) with clear errors; checks the tokenizer when enc given.
    mmap: tensors are read from the file only when used."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; it is made by: {make_cmd}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # truncated zip, a pickle of arbitrary objects, random bytes...
        # torch's own message advises weights_only=False, which would run whatever code a
        # malicious file holds: it is not passed on
        why = ("it holds Python objects that no checkpoint of this project holds, and those "
               "are never loaded" if "unsupported global" in str(e).lower()
               else "it is corrupt or truncated, or not a checkpoint")
        raise CheckpointError(f"{path} cannot be loaded: {why}; delete it and re-run: "
                              f"{make_cmd}") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise CheckpointError(f"{path} is not a checkpoint of this project (no model/config); "
                              f"delete it and re-run: {make_cmd}")
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


def digest(path: Path, _memo: dict = {}) -> str | None:  # noqa: B006 (a deliberate memo)
    """What a file holds, as a SHA-256 prefix (None if absent), remembered while its size and
    time stand. A checkpoint's is that of what the next stage loads from it (its config,
    tokenizer and tensors), not of its bytes: it also stores the run's log, whose timings differ
    from run to run, and a stage made again identical must re-run nothing after it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        try:  # mmap: only the tensors hashed are read, not the optimizer's state
            ck = load_checkpoint(path, mmap=True) if path.suffix == ".pt" else None
        except CheckpointError:
            ck = None  # unreadable: its bytes stand for it
        if ck is None:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(json.dumps([ck["config"], ck.get("tokenizer"), ck.get("bias")],
                                sort_keys=True).encode())
            for name, t in sorted(ck["model"].items()):
                h.update(name.encode() + t.detach().cpu().contiguous().view(-1).view(
                    torch.uint8).numpy().tobytes())
        _memo[key] = h.hexdigest()[:16]
    return _memo[key]


# ----------------------------------------------------------------------------- logs


class Log:
    """A stage's JSONL log, one record per logged step. Records gather in memory and reach the
    file only with a checkpoint (`save_checkpoint(..., log=)`), which stores them too: a model
    and its log change together (a run that fails before its first checkpoint leaves the
    previous pair as it was), and a resume takes the log from the checkpoint, never from a file
    a crash may have torn."""

    def __init__(self, path, checkpoint: dict | None = None):
        self.path = Path(path)
        self.records = list((checkpoint or {}).get("log", []))
        if checkpoint is not None and "log" in checkpoint:  # resuming: the file says what
            self.publish()  # the checkpoint says (an older checkpoint without a log: as is)

    def append(self, record: dict) -> None:
        self.records.append(record)

    def publish(self) -> None:
        if writer():  # under torchrun every rank keeps the records, rank 0 alone writes them
            data.write_jsonl(self.path, self.records)

    def history(self, *keys) -> dict[str, list]:
        """The records as columns, {key: [values]}: every key, or the keys given (a stage's
        train() returns this; it is derived, so checkpoints store the records only)."""
        keys = keys or tuple(dict.fromkeys(k for r in self.records for k in r))
        return {k: [r[k] for r in self.records if k in r] for k in keys}


# ----------------------------------------------------------------------------- one run at a time


def writer() -> bool:
    """Whether this process writes the run directory's files: always, but under torchrun
    (RANK in the environment, parallel.py) rank 0 alone."""
    return os.environ.get("RANK", "0") == "0"


_HELD: dict[str, int] = {}  # run directory -> the lock file's descriptor, held by this process
HELD_BY_PARENT = "INSTRUCTGPT_LOCK_HELD"  # the run directory whose lock the parent holds


@contextlib.contextmanager
def lock(out):
    """One run at a time per run directory: an exclusive lock (flock) on out/.lock, released by
    the operating system when the process ends however it ends, so a lock left by a dead process
    never blocks. Re-entrant in one process (the pipeline calls the stages); under torchrun rank
    0 holds it for all ranks, and a stage the pipeline starts with torchrun runs under the
    pipeline's lock (its environment names the run directory: HELD_BY_PARENT)."""
    key = str(Path(out).resolve())
    if (key in _HELD or fcntl is None  # held already here; or no flock (Windows): no lock
            or not writer()  # torchrun's rank 0 holds it for its ranks
            or os.environ.get(HELD_BY_PARENT) == key):  # the pipeline that started torchrun
        yield
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(out) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise Busy(f"{out}/ is in use by {holder}: one run at a time per run directory; wait "
                   f"for it to finish or stop it, or use another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv)[:200]})".encode(), 0)
    _HELD[key] = fd
    try:
        yield
    finally:
        del _HELD[key]
        os.close(fd)  # releases the lock


class Busy(RuntimeError):
    """Another process holds the run directory's lock."""


def locked(fn):
    """fn(cfg, ...) run while holding the lock of cfg.out."""
    @functools.wraps(fn)
    def run(cfg, *args, **kwargs):
        if not Path(cfg.out).is_dir():  # nothing to guard: the stage names its missing input
            return fn(cfg, *args, **kwargs)
        with lock(cfg.out):
            return fn(cfg, *args, **kwargs)
    return run


# ----------------------------------------------------------------------------- the command line


# Errors a user can act on: printed as one line (the traceback with --debug, or with the
# environment variable INSTRUCTGPT_DEBUG=1)
USER_ERRORS = (data.DataError, OSError, ValueError, FloatingPointError, CheckpointError, Busy)


def run_cli(main, resume: str = "run the same command with --resume") -> None:
    """Run main(argv) as a command: a user's error prints one line and exits 1; Ctrl-C stops
    cleanly (exit 130), saying how to continue."""
    debug = "--debug" in sys.argv or os.environ.get("INSTRUCTGPT_DEBUG", "") not in ("", "0")
    argv = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        main(argv)
    except KeyboardInterrupt:
        print(f"\ninterrupted; to continue, {resume}", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


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
    text = data.read_text(p)
    if not text.strip():
        raise data.DataError(f"{p}:1: the file is empty: nothing to train on")
    return text
