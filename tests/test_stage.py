"""stage.py: what every stage shares. The CLI built from a Config, the learning-rate schedule,
the optimizer's parameter groups, and checkpoints that are atomic and safe to load."""

import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import pretrain
import reward
import stage
from gpt import GPT, GPTConfig


@pytest.mark.parametrize("module", ["pretrain", "sft", "reward", "ppo", "bench"])
def test_cli_lists_every_field_with_its_comment(module, capsys):
    cls = importlib.import_module(module).Config
    with pytest.raises(SystemExit):
        stage.config_from_args(cls, ["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    for f in cls.__dataclass_fields__:
        assert f"--{f}" in text
    assert "(default: " in text  # help text comes from the comments beside the fields


def test_cli_parses_types_and_booleans():
    cfg = stage.config_from_args(pretrain.Config, ["--n_layer", "3", "--compile", "--lr", "0.5"])
    assert cfg.n_layer == 3 and cfg.compile is True and cfg.lr == 0.5
    cfg = stage.config_from_args(reward.Config, ["--k_min", "2", "--collect_only", "--lr", "0.5"])
    assert cfg.k_min == 2 and cfg.collect_only is True and cfg.lr == 0.5


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    lr = [stage.lr_at(s, 1.0, 10, 110) for s in range(120)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)  # linear warmup
    assert lr[10] == pytest.approx(1.0) and lr[60] == pytest.approx(0.55)  # cosine midpoint
    assert lr[110] == pytest.approx(0.1) and lr[119] == pytest.approx(0.1)  # then stays
    assert all(a >= b for a, b in zip(lr[9:], lr[10:], strict=False))


def test_optimizer_decays_matrices_only():
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=8))
    opt = stage.make_optimizer(model, 1e-3, 0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())


REAL_CPU_HAS_BF16 = stage.cpu_has_bf16.__wrapped__  # uncached, and taken before conftest
# holds every test to fp32


def test_bf16_counts_only_where_the_kernels_may_use_it(monkeypatch):
    """Native bf16 by the CPU's flags, unless PyTorch's kernels are held below AVX-512
    (ATEN_CPU_CAPABILITY=avx2) or oneDNN's below its bf16 ISAs (ONEDNN_MAX_CPU_ISA)."""
    monkeypatch.setattr(stage, "_cpuinfo", lambda: "flags\t: fpu avx2 avx512f avx512_bf16")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert REAL_CPU_HAS_BF16()
    for isa, want in (("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                      ("AVX512_CORE_AMX", True), ("ALL", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert REAL_CPU_HAS_BF16() == want, isa
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")  # its older name
    assert not REAL_CPU_HAS_BF16()
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not REAL_CPU_HAS_BF16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(stage, "_cpuinfo", lambda: "flags\t: fpu avx2 avx512f avx512bw")
    assert not REAL_CPU_HAS_BF16()


def test_bf16_autocast_only_where_the_cpu_has_it(monkeypatch):
    for native in (False, True):
        monkeypatch.setattr(stage, "cpu_has_bf16", lambda n=native: n)
        for dtype, want in (("auto", native), ("fp32", False), ("bf16", True)):
            with stage.autocast("cpu", dtype):
                assert torch.is_autocast_enabled("cpu") == want, (native, dtype)
        with stage.autocast("cpu", "auto", sampling=True):  # sampling stays fp32 on a CPU
            assert not torch.is_autocast_enabled("cpu")
    m = stage.machine()
    assert m["threads"] >= 1 and isinstance(m["avx512"], list) and m["torch"] == torch.__version__


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "a.pt"
    stage.save_checkpoint({"config": {}, "model": {"w": torch.ones(2)}}, path)

    def fail(obj, f):  # a crash in the middle of writing
        raise OSError("simulated")
    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError):
        stage.save_checkpoint({"config": {}, "model": {"w": torch.zeros(2)}}, path)
    assert torch.equal(stage.load_checkpoint(path)["model"]["w"], torch.ones(2))  # the old one


def test_a_full_disk_is_said_and_leaves_the_old_checkpoint_and_no_temp_file(tmp_path,
                                                                             monkeypatch):
    path = tmp_path / "sft.pt"
    stage.save_checkpoint({"config": {}, "model": {"w": torch.ones(2)}}, path)

    def full(obj, f):  # what torch.save does when the disk fills: half a file, a zip error
        Path(f).write_bytes(b"PK" + b"\0" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(free=0))
    with pytest.raises(OSError, match=r"sft\.pt: no space left on device; the partial "
                                      r"sft\.pt\.tmp was removed"):
        stage.save_checkpoint({"config": {}, "model": {"w": torch.zeros(2)}}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.pt"]
    assert torch.equal(stage.load_checkpoint(path)["model"]["w"], torch.ones(2))


class Payload:  # a pickle that would run code when loaded unsafely
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_malicious_or_corrupt_checkpoint_is_refused_without_unsafe_advice(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"config": {}, "model": Payload()}, evil)
    with pytest.raises(stage.CheckpointError, match="holds Python objects") as e:
        stage.load_checkpoint(evil, "python sft.py --out DIR")
    assert "weights_only" not in str(e.value) and "python sft.py --out DIR" in str(e.value)
    assert "this must never run" not in capsys.readouterr().out
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02junk" * 40)
    with pytest.raises(stage.CheckpointError, match="corrupt or truncated") as e:
        stage.load_checkpoint(junk)
    assert "weights_only" not in str(e.value)


def test_the_log_reaches_its_file_only_with_a_checkpoint(tmp_path):
    path, ckpt = tmp_path / "x_log.jsonl", tmp_path / "x.pt"
    path.write_text('{"step": 1, "old": true}\n')  # the previous run's log
    log = stage.Log(path)
    log.append({"step": 1})
    assert path.read_text() == '{"step": 1, "old": true}\n'  # untouched until a checkpoint
    stage.save_checkpoint({"config": {}, "model": {}}, ckpt, log)
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"step": 1}]
    log.append({"step": 2})
    path.write_text('{"step": 1}\n{"step": 2, "tor')  # a crash tore the last line
    resumed = stage.Log(path, stage.load_checkpoint(ckpt))
    assert resumed.records == [{"step": 1}] and path.read_text() == '{"step": 1}\n'


def test_a_resumed_log_is_written_by_rank_0_alone(tmp_path, monkeypatch):
    ck = {"log": [{"step": 1}, {"step": 2}]}  # every rank resumes from the same checkpoint
    monkeypatch.setenv("RANK", "1")  # torchrun's rank 1: two ranks renaming one file would race
    log = stage.Log(tmp_path / "log.jsonl", ck)
    assert log.records == ck["log"] and not (tmp_path / "log.jsonl").exists()
    monkeypatch.setenv("RANK", "0")
    stage.Log(tmp_path / "log.jsonl", ck)
    assert [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()] == ck["log"]
