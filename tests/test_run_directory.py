"""The run directory stays true: edits re-run what depends on them, one run at a time, a failed
stage loses nothing, bad input gets one clear error. Each test is a probe of a hostile but fair
user on the tiny preset (one shared finished run, copied per test)."""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import chat
import data
import objective
import pipeline
import ppo
import stage

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(tiny, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny[0], d)  # a copy of the session's finished tiny run
    return d


def ran(out: str) -> set:
    return set(re.findall(r"^\[\d+/\d+\] (\S+) +(?:running|resuming)", out, re.M))


def snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}


def test_an_edited_dataset_reruns_what_reads_it(run, capsys):
    lines = (run / "sft.jsonl").read_text().splitlines(keepends=True)
    (run / "sft.jsonl").write_text("".join(lines[:200]))  # fewer demonstrations
    first = ("data", "pretrain", "sft", "collect", "rm")  # (the rest follows the same rule)
    pipeline.run("tiny", str(run), only=first)
    out = capsys.readouterr().out
    assert "sft.jsonl changed since this stage wrote it: used as it is" in out
    assert ran(out) == {"sft", "collect", "rm"}  # rm reads sft.jsonl too (normalisation)
    assert (run / "sft.jsonl").read_text() == "".join(lines[:200])  # never rewritten
    pipeline.run("tiny", str(run), only=first)
    assert not ran(capsys.readouterr().out)  # and now they are up to date


def test_a_dataset_that_no_longer_parses_stops_before_anything_is_written(run):
    with open(run / "prompts.jsonl", "a") as f:
        f.write('{"prompt": "What does a fox eat?", "category": 3}\n')
    before = snapshot(run)
    n = (run / "prompts.jsonl").read_text().count("\n")
    with pytest.raises(data.DataError, match=rf"prompts\.jsonl:{n}: field 'category'"):
        pipeline.run("tiny", str(run))
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k != "pipeline.json"} == \
        {k: v for k, v in before.items() if k != "pipeline.json"}


def test_a_broken_checkpoint_is_made_again_and_one_swapped_in_is_used(run, capsys):
    (run / "sft.pt").write_bytes((run / "sft.pt").read_bytes()[:5000])  # truncated
    pipeline.run("tiny", str(run), only=("sft", "collect"))
    out = capsys.readouterr().out
    assert "sft.pt no longer loads: made again" in out
    assert ran(out) == {"sft"}  # made again identical: nothing after it runs again
    ck = stage.load_checkpoint(run / "base.pt")  # another run's base model: other weights
    ck["model"] = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
                   for k, v in ck["model"].items()}
    torch.save(ck, run / "base.pt")
    pipeline.run("tiny", str(run), only=("pretrain", "sft", "collect"))
    out = capsys.readouterr().out
    assert "base.pt changed since this stage wrote it: used as it is" in out
    assert ran(out) == {"sft", "collect"}


def test_one_run_at_a_time_and_a_dead_holder_never_blocks(run):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, stage\n"
         f"with stage.lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(stage.Busy, match=rf"in use by process {holder.pid}"):
            pipeline.run("tiny", str(run))
        with pytest.raises(stage.Busy):  # a stage run alone is refused the same way
            ppo.train(ppo.Config(out=str(run), iterations=1))
    finally:
        holder.kill()  # dies holding the lock: the operating system releases it
        holder.wait()
    t0 = time.time()
    with stage.lock(run):
        with stage.lock(run):  # re-entrant within one process
            pass
    assert time.time() - t0 < 5


def test_a_failed_stage_keeps_the_previous_model_and_its_log(run, monkeypatch):
    before = {f: (run / f).read_bytes() for f in ("ppo.pt", "ppo_log.jsonl")}
    real = objective.ppo_policy_loss
    monkeypatch.setattr(objective, "ppo_policy_loss",
                        lambda *a, **k: (real(*a, **k)[0] * float("nan"), real(*a, **k)[1]))
    cfg = ppo.Config(out=str(run), iterations=8, batch_size=32, lr=3e-4, max_new_tokens=32,
                     log_every=4)
    with pytest.raises(FloatingPointError, match="the last checkpoint is kept"):
        ppo.train(cfg)
    assert {f: (run / f).read_bytes() for f in before} == before
    (run / "prompts.jsonl").write_text("")  # an empty input: named, and nothing is lost
    with pytest.raises(data.DataError, match=r"prompts\.jsonl:1: no records"):
        ppo.train(cfg)
    assert {f: (run / f).read_bytes() for f in before} == before


def test_empty_eval_prompts_are_named(run):
    import evaluate
    (run / "eval_prompts.jsonl").write_text("\n")
    with pytest.raises(data.DataError, match=r"eval_prompts\.jsonl:1: no records"):
        evaluate.evaluate(evaluate.Config(out=str(run), n_prompts=5, max_new_tokens=8))


def test_a_torn_log_line_does_not_block_resume(run):
    cfg = ppo.Config(out=str(run), name="again", iterations=8, batch_size=32, lr=3e-4,
                     max_new_tokens=32, log_every=4)
    ppo.train(cfg)
    log = run / "again_log.jsonl"
    full = log.read_text()
    with open(log, "a") as f:
        f.write('{"iteration": 9, "rlhf/sc')  # power lost in the middle of a line
    ppo.train(dataclasses.replace(cfg, resume=True))
    assert log.read_text() == full  # rewritten from the checkpoint


def test_chat_names_the_command_that_makes_a_broken_checkpoint(run):
    (run / "ppo.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(stage.CheckpointError, match=r"python ppo\.py --out"):
        chat.load(run, ["sft", "ppo"])


def test_errors_are_one_line_and_ctrl_c_says_how_to_continue(run, capsys, monkeypatch):
    (run / "prompts.jsonl").write_text("{oops\n")
    r = subprocess.run([sys.executable, "ppo.py", "--out", str(run), "--iterations", "1"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {run}/prompts.jsonl:1: invalid JSON: Expecting property name enclosed in "
        f"double quotes (column 2)"]
    def bad(argv):
        raise data.DataError("x.jsonl:3: invalid JSON")
    with pytest.raises(SystemExit) as e:
        stage.run_cli(bad)
    assert e.value.code == 1 and capsys.readouterr().err == "error: x.jsonl:3: invalid JSON\n"
    monkeypatch.setenv("INSTRUCTGPT_DEBUG", "1")  # the traceback, on request
    with pytest.raises(data.DataError):
        stage.run_cli(bad)
    monkeypatch.delenv("INSTRUCTGPT_DEBUG")

    def interrupted(argv):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit) as e:
        stage.run_cli(interrupted)
    assert e.value.code == 130
    assert capsys.readouterr().err.strip() == (
        "interrupted; to continue, run the same command with --resume")


def test_the_record_holds_what_each_stage_read_and_wrote(tiny):
    record = json.loads((tiny[0] / "pipeline.json").read_text())["stages"]
    assert all(v["status"] == "done" for v in record.values())
    assert record["sft"]["reads"]["sft.jsonl"] == record["data"]["writes"]["sft.jsonl"]
    assert record["evaluate"]["reads"]["ppo.pt"] == record["ppo"]["writes"]["ppo.pt"]


def test_a_file_you_changed_is_never_written_over(run, capsys):
    lines = (run / "sft.jsonl").read_text().splitlines(keepends=True)
    (run / "sft.jsonl").write_text("".join(lines[:200]))
    pipeline.run("tiny", str(run), only=("data",))  # adopted: used as it is
    (run / "corpus_val.txt").unlink()  # now `data` must run again, and would rewrite it
    with pytest.raises(SystemExit, match=r"would write over sft\.jsonl, which you changed"):
        pipeline.run("tiny", str(run), only=("data",))
    assert (run / "sft.jsonl").read_text() == "".join(lines[:200])


def test_a_failed_pretraining_keeps_the_tokenizer_its_models_need(run):
    keep = {f: (run / f).read_bytes() for f in ("tokenizer.tiktoken", "base.pt")}
    (run / "corpus.txt").write_text((run / "corpus.txt").read_text()[:300])
    with pytest.raises(ValueError, match="too little text"):
        pipeline.run("tiny", str(run), only=("data", "pretrain"))
    assert {f: (run / f).read_bytes() for f in keep} == keep
    enc = stage.load_encoding(run, stage.load_checkpoint(run / "sft.pt")["tokenizer"])
    stage.load_checkpoint(run / "base.pt", enc=enc)  # still a matching pair


def test_your_data_deleted_is_made_again_and_a_damaged_record_is_named(tiny, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    for f in pipeline.DATA_FILES:
        shutil.copy(tiny[0] / f, d / f)
    pipeline.run("tiny", str(d), only=("data",))  # yours
    for f in pipeline.DATA_FILES:
        (d / f).unlink()
    pipeline.run("tiny", str(d), only=("data",))  # none left: the world writes them
    assert all((d / f).exists() for f in pipeline.DATA_FILES)
    (d / "pipeline.json").write_text("[]")
    with pytest.raises(SystemExit, match=r"pipeline\.json is not a record of this pipeline"):
        pipeline.run("tiny", str(d), only=("data",))


def test_resume_only_from_a_checkpoint_of_the_same_settings(run, monkeypatch):
    record = json.loads((run / "pipeline.json").read_text())
    record["stages"]["ppo"]["status"] = "started"  # interrupted; and meanwhile someone ran
    (run / "pipeline.json").write_text(json.dumps(record))  # ppo.py with other settings:
    ck = stage.load_checkpoint(run / "ppo.pt")
    ck["train_config"]["lr"] *= 2
    torch.save(ck, run / "ppo.pt")
    seen, real = [], ppo.train
    monkeypatch.setattr(ppo, "train", lambda cfg: seen.append(cfg.resume) or real(cfg))
    pipeline.run("tiny", str(run), only=("ppo",))
    assert seen == [False]  # run anew, not resumed from the other run's checkpoint
    (run / "tokenizer.tiktoken").write_text("not a tokenizer\n")
    assert not pipeline.loads(run / "tokenizer.tiktoken")
