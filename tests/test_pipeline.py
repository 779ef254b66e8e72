"""pipeline.py: the tiny preset end to end, skipping, re-running downstream, resuming, and the
gpt2 preset's path on a tiny random GPT-2 (offline stand-ins for its weights and encoding)."""

import copy
import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import tiktoken
import torch

import chat
import evaluate
import gpt
import gpt2
import pipeline
import ppo
import responses
import reward
import stage
import tokenizer as tok
import world

MODELS = ("base", "sft", "ppo", "ppo_ptx", "sweep_beta_0.002")


def ran(out: str) -> set:
    """The stages a pipeline run's printout says it ran (or resumed)."""
    return set(re.findall(r"^\[\d+/\d+\] (\S+) +(?:running|resuming)", out, re.M))


def test_tiny_end_to_end(tiny):
    d, res = tiny
    for f in pipeline.DATA_FILES + ("tokenizer.tiktoken", "comparisons.jsonl", "results.md",
                                    "pipeline.json", "ppo_log.jsonl", "ppo_ptx_log.jsonl"):
        assert (d / f).stat().st_size > 0, f
    enc = tok.load_tokenizer(d / "tokenizer.tiktoken")
    for n in MODELS:
        stage.load_model(d / f"{n}.pt", enc=enc)
    reward.load_reward_model(d / "rm.pt", enc)
    assert res == json.loads((d / "results.json").read_text())
    assert set(res["models"]) == set(evaluate.MODELS)
    for m in res["models"].values():
        assert {"gold", "win_rate_vs_sft", "rm_score", "heldout_loss", "cloze_acc", "metadata",
                "words", "ended"} <= set(m)
        assert 0 <= m["win_rate_vs_sft"]["lo"] <= m["win_rate_vs_sft"]["rate"] <= 1
        assert m["metadata_n"]["declines_harmful"] == 20  # the harmful probe's, every model
    assert res["models"]["sft"]["win_rate_vs_sft"]["rate"] == 0.5  # against itself: all ties
    assert 0 <= res["models"]["base_few_shot"]["few_shot_examples"] <= 3  # Config.few_shot
    ref = res["reference"]  # the world's own answers: full marks, and the judges' ceiling
    assert set(ref) == set(evaluate.REFERENCE) and ref["best"]["gold"] == 1.0
    # the same 8 samples per prompt: picking by gold can only match or beat picking by the RM
    assert ref["sft_best_of_n_gold"]["gold"] >= ref["sft_best_of_n_rm"]["gold"]
    assert ref["sft_best_of_n_rm"]["label"] == "the best of 8 SFT samples by the reward model"
    assert ref["sft_best_of_n_rm"]["win_rate_vs_sft"]["ties"] < res["n_prompts"]  # own samples
    assert res["reward_model"]["by_fault"]["samples"] == 8
    assert ref["best"]["win_rate_vs_sft"]["rate"] > max(
        m["win_rate_vs_sft"]["rate"] for m in res["models"].values())
    assert {"acc", "agreement", "eval_answers_gold_corr"} <= set(res["reward_model"])
    assert set(res["overoptimisation"]) == {"ppo", "ppo_ptx", "sweep_beta_0.002"}
    assert list(res["sweeps"]["beta"]) == ["0.002"]
    always = {"ppo_win_rate_vs_sft", "sft_win_rate_vs_few_shot_base", "rm_accuracy_vs_agreement",
              "ppo_alignment_tax", "ppo_ptx_tax_recovered", "ppo_ptx_win_rate_minus_ppo",
              "rm_best_of_n_win_rate_vs_sft", "ppo_ptx_win_rate_vs_sft", "ppo_ptx_metadata_vs_sft",
              "gold_rises_then_falls"}
    by_fault = {f"rm_orders_{f.split()[0]}_pairs"  # only the faults this tiny run's samples show
                for f in res["reward_model"]["by_fault"]["faults"]
                if f in ("hallucinates", "harmful or rude")}
    assert set(res["targets"]) == always | by_fault
    assert set(res["stages"]) == {s.name for s in pipeline.stages("tiny", d)}
    assert res["wall_s"] == pytest.approx(sum(res["stages"].values()), abs=1)  # one by one
    assert res["samples"] and all("ppo" in s for s in res["samples"])
    for p in ("win_rates", "reward_vs_gold", "alignment_tax", "overoptimisation", "kl_frontier",
              "metadata"):
        assert (d / "plots" / f"{p}.png").stat().st_size > 1000, p
    assert res["models"]["ppo"]["gold"] > res["models"]["sft"]["gold"]


def test_rerun_skips_and_a_checkpoint_made_again_identical_reruns_nothing_after_it(
        tiny, tmp_path, capsys):
    d = tmp_path / "run"
    shutil.copytree(tiny[0], d)
    n = len(pipeline.stages("tiny", d))
    pipeline.run("tiny", str(d))
    out = capsys.readouterr().out
    assert out.count("up to date, skipped") == n and not ran(out)
    rm = stage.load_checkpoint(d / "rm.pt")["model"]
    (d / "rm.pt").unlink()  # deleted: its stage makes the same model again
    pipeline.run("tiny", str(d))
    assert ran(capsys.readouterr().out) == {"rm"}
    again = stage.load_checkpoint(d / "rm.pt")["model"]
    assert all(torch.equal(again[k], v) for k, v in rm.items())
    (d / "ppo.pt").unlink()  # its log's timings differ when made again: evaluate still skips
    pipeline.run("tiny", str(d))
    assert ran(capsys.readouterr().out) == {"ppo"}
    (d / "references.json").write_text("[]")  # a cache, never adopted: made again, the same
    pipeline.run("tiny", str(d))
    out = capsys.readouterr().out
    assert ran(out) == {"references"} and "references.json changed, and is a cache" in out


def test_changed_settings_rerun_and_an_interrupted_stage_resumes(tiny, tmp_path, monkeypatch):
    d = tmp_path / "run"
    shutil.copytree(tiny[0], d)
    seen, real = [], ppo.train
    monkeypatch.setattr(ppo, "train", lambda cfg: seen.append((cfg.ptx_coef, cfg.resume))
                        or real(cfg))
    record = json.loads((d / "pipeline.json").read_text())
    record["stages"]["ppo"]["status"] = "started"  # as if stopped after a checkpoint
    (d / "pipeline.json").write_text(json.dumps(record))
    monkeypatch.setattr(pipeline, "PTX_COEF", 2.0)
    pipeline.run("tiny", str(d))
    assert sorted(seen) == [(0.0, True), (2.0, False)]  # ppo resumed; ppo_ptx ran anew
    assert stage.load_checkpoint(d / "ppo_ptx.pt")["train_config"]["ptx_coef"] == 2.0


def test_ppo_runs_side_by_side_with_jobs(tiny, tmp_path, capsys, monkeypatch):
    d = tmp_path / "run"
    shutil.copytree(tiny[0], d)
    for f in ("ppo_ptx.pt", "sweep_beta_0.002.pt", "references.json", "results.json"):
        (d / f).unlink()
    record = json.loads((d / "pipeline.json").read_text())
    record["stages"]["ppo"]["status"] = "started"  # as if stopped after its last checkpoint
    (d / "pipeline.json").write_text(json.dumps(record))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the runs' own processes in fp32 too
    pipeline.run("tiny", str(d), jobs=2)
    out = capsys.readouterr().out
    assert ran(out) == {"ppo", "ppo_ptx", "sweep_beta_0.002", "references", "evaluate"}
    starts = re.findall(r"^\[\d+/\d+\] (\S+) +(?:running|resuming)", out, re.M)
    assert starts.index("ppo_ptx") < starts.index("ppo")  # of runs as long, PPO-ptx's first
    # base's and SFT's answers, made in their own process: the ones made in this one
    made, here = (json.loads((p / "references.json").read_text()) for p in (d, tiny[0]))
    assert made == here
    assert "sft: answers from references.json" in out
    assert "PPO runs 2 at a time" in out
    assert re.search(r"^    ppo: resumed .*ppo\.pt at iteration 8$", out, re.M)  # --resume
    assert re.search(r"^    sweep_beta_0\.002: it +8/8 \|", out, re.M)  # after their names
    assert re.search(r"^    sweep_beta_0\.002: policy", out, re.M)  # named once
    record = json.loads((d / "pipeline.json").read_text())["stages"]
    rl = ("ppo", "ppo_ptx", "sweep_beta_0.002")
    assert all(record[n]["status"] == "done" and record[n]["beside"] for n in rl + (
        "references",))
    enc = tok.load_tokenizer(d / "tokenizer.tiktoken")
    for n in rl:  # each a whole run, written by its own process
        stage.load_model(d / f"{n}.pt", enc=enc)
        assert len((d / f"{n}_log.jsonl").read_text().splitlines()) == 8  # every iteration
    res = json.loads((d / "results.json").read_text())
    assert res["stages_beside"] == sorted(rl + ("references",))
    assert res["wall_s"] < sum(res["stages"].values())  # they overlapped
    assert "ran side by side" in (d / "results.md").read_text()
    pipeline.run("tiny", str(d), jobs=2)  # and then every stage is up to date
    assert not ran(capsys.readouterr().out)
    # a run that fails in its own process stops the pipeline, naming it
    (d / "ppo_ptx.pt").unlink()
    real = pipeline.parallel.arguments
    monkeypatch.setattr(pipeline.parallel, "arguments", lambda cfg: real(cfg) + (
        ["--no_such_flag"] if cfg.ptx_coef else []))
    with pytest.raises(SystemExit, match=r"ppo_ptx \(ppo\.py\) failed"):
        pipeline.run("tiny", str(d), jobs=2)
    assert "unrecognized arguments: --no_such_flag" in capsys.readouterr().out
    record = json.loads((d / "pipeline.json").read_text())["stages"]
    assert record["ppo_ptx"]["status"] == "started" and record["ppo"]["status"] == "done"


def test_references_are_used_only_while_their_files_and_settings_hold(tiny, tmp_path, capsys,
                                                                     monkeypatch):
    """evaluate takes base's and SFT's answers from references.json (made beside the PPO runs)
    and finds what it finds without it; made with other settings, or before the code or an
    input changed, they are not used: it answers anew."""
    d = tmp_path / "run"
    shutil.copytree(tiny[0], d)
    cfg = dataclasses.replace(pipeline.stages("tiny", d)[-1].config, n_prompts=10)
    skip = ("stages", "stage_share", "wall_s", "stages_beside", "machine")
    findings = lambda res: {k: v for k, v in res.items() if k not in skip}
    fresh = evaluate.evaluate(cfg)  # the fixture's references.json was made for 40 prompts
    assert "references.json was made from other files or settings: not used" in \
        capsys.readouterr().out
    responses.references(cfg)
    assert findings(evaluate.evaluate(cfg)) == findings(fresh)
    assert "sft: answers from references.json" in capsys.readouterr().out
    responses.references(dataclasses.replace(cfg, seed=cfg.seed + 1))  # another seed's answers
    assert findings(evaluate.evaluate(cfg)) == findings(fresh)
    assert "not used" in capsys.readouterr().out
    responses.references(cfg)
    code = tmp_path / "code.py"  # the code that makes the answers, edited since
    code.write_text("x = 1\n")
    monkeypatch.setattr(responses, "CODE", [code])
    responses.references(cfg)
    code.write_text("x = 2\n")
    evaluate.evaluate(cfg)
    assert "not used" in capsys.readouterr().out
    responses.references(cfg)
    items = (d / "cloze.jsonl").read_text().splitlines()
    (d / "cloze.jsonl").write_text("\n".join(items[:-1]) + "\n")  # an input changed since
    evaluate.evaluate(cfg)
    assert "not used" in capsys.readouterr().out


def test_wall_counts_stages_side_by_side_once():
    spans = [[0, 10], [10, 30], [12, 20], [25, 40], [50, 52]]  # on the clock: 40 + 2
    records = [{"span": s, "seconds": s[1] - s[0]} for s in spans] + [{"seconds": 5.0}]
    assert pipeline.wall(records) == 47.0  # a record from before spans: its seconds


def test_user_data_is_never_overwritten(tiny, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    for f in pipeline.DATA_FILES:  # the user's own files: a part of the world's, say
        lines = (tiny[0] / f).read_text().splitlines(keepends=True)
        (d / f).write_text("".join(lines[:len(lines) // 2 + 1]))
    mine = {f: (d / f).read_bytes() for f in pipeline.DATA_FILES}
    pipeline.run("tiny", str(d), only=("data",))
    assert {f: (d / f).read_bytes() for f in pipeline.DATA_FILES} == mine


def test_partial_user_data_and_unknown_stages_are_clear_errors(tmp_path):
    d = tmp_path / "part"
    d.mkdir()
    (d / "sft.jsonl").write_text("mine\n")
    with pytest.raises(SystemExit, match="some of .* but not all"):
        pipeline.run("tiny", str(d), only=("data",))
    assert (d / "sft.jsonl").read_text() == "mine\n"
    with pytest.raises(SystemExit, match="no stage nope"):
        pipeline.run("tiny", str(d), only=("nope",))


def test_seed_reaches_every_stage_and_only_the_stages(tmp_path):
    """--seed N: every stage's seed moves by N (another draw of training, sampling and the
    labelers' noise), the world's data stay the same, and the run has its own directory."""
    base = {st.name: st for st in pipeline.stages("cpu", tmp_path)}
    other = {st.name: st for st in pipeline.stages("cpu", tmp_path, seed=2)}
    assert other["data"].settings() == base["data"].settings()  # the same world and datasets
    for name, st in base.items():
        if name != "data":
            want = {**st.settings(), "seed": st.config.seed + 2}
            assert other[name].settings() == want, name  # nothing else differs
    assert pipeline.default_out("cpu") == pipeline.Path("runs/cpu")
    assert pipeline.default_out("cpu", 2) == pipeline.Path("runs/cpu-seed2")


def test_gpt2_preset_on_a_tiny_random_gpt2(tmp_path, monkeypatch):
    """The gpt2 preset's path: GPT-2's weights go on pretraining on the world's corpus into
    base.pt, tiktoken's GPT-2 encoding is the tokenizer, and SFT mixes in the corpus.
    Stand-ins: a 1-layer random GPT-2 saved by transformers, and an encoding named "gpt2" with
    end-of-text at 50256 (the real one downloads once), its merges learnt on the world's
    corpus, which is written first (and then used as the user's own data)."""
    transformers = pytest.importorskip("transformers")
    d = tmp_path / "run"
    world.write_datasets(dataclasses.replace(world.PRESETS["tiny"], corpus_chars=100_000,
                                             val_chars=10_000, n_cloze=12, n_sft=48, n_rm=12,
                                             n_ppo=40, n_eval=12), d)
    ranks = tok.train_bpe((d / "corpus.txt").read_text(), 600)
    # GPT-2's 50,257 ids all decode: the rest are control bytes the world never writes
    ranks.update({b"\x00" + i.to_bytes(3, "big"): i for i in range(len(ranks), 50256)})
    fake = tiktoken.Encoding("gpt2", pat_str=tok.GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={tok.EOT_TEXT: 50256})
    monkeypatch.setattr(tok, "get_encoding", lambda name: fake)
    hf = transformers.GPT2Config(vocab_size=50257, n_positions=128, n_embd=32, n_layer=1,
                                 n_head=2)
    transformers.GPT2LMHeadModel(hf).save_pretrained(tmp_path / "gpt2")
    presets = copy.deepcopy(pipeline.PRESETS)
    small = {"batch_size": 4, "max_new_tokens": 16}
    presets["gpt2"].update({
        "pretrain": {**presets["gpt2"]["pretrain"], "block_size": 64, "batch_size": 8,
                     "max_iters": 30, "lr": 3e-3, "warmup_iters": 5, "eval_interval": 15,
                     "eval_iters": 2},
        "sft": {**presets["gpt2"]["sft"], "epochs": 1, "batch_size": 8, "n_eval_prompts": 4,
                "max_new_tokens": 16, "eval_interval": 20},
        "collect": {"n_prompts": 6, "k_min": 4, "k_max": 4, "max_new_tokens": 16},
        "rm": {"n_prompts": 6, "batch_size": 2},
        "ppo": {"iterations": 2, "batch_size": 4, "minibatch_size": 2, "max_new_tokens": 16},
        "ppo_ptx": {"iterations": 2, "batch_size": 4, "minibatch_size": 2, "max_new_tokens": 16,
                    "ptx_coef": 1.0, "ptx_batch_size": 2},
        "evaluate": {"n_prompts": 6, "n_tax_windows": 4, **small}})
    monkeypatch.setattr(pipeline, "PRESETS", presets)
    res = pipeline.run("gpt2", str(d), gpt2_weights=str(tmp_path / "gpt2"))
    ck = stage.load_checkpoint(d / "base.pt")
    assert ck["tokenizer"] == "gpt2" and ck["config"]["vocab_size"] == 50257
    assert ck["step"] == 30 and ck["config"]["block_size"] == 128  # GPT-2's context, kept
    assert not (d / "tokenizer.tiktoken").exists()
    # it learnt the world: its held-out loss is below GPT-2's own weights'
    val = torch.tensor(tok.encode_corpus(fake, (d / "corpus_val.txt").read_text())[:15 * 64 + 1])
    x, y = val[:-1].view(15, 64), val[1:].view(15, 64)
    start = gpt2.from_pretrained(str(tmp_path / "gpt2"))
    base = gpt.GPT(gpt.GPTConfig.from_dict(ck["config"]))
    base.load_state_dict(ck["model"])
    with torch.no_grad():
        assert base(x, targets=y)[1] < start(x, targets=y)[1] - 1.0
    assert stage.load_checkpoint(d / "sft.pt")["train_config"]["ptx_fraction"] > 0
    for n in ("sft", "ppo", "ppo_ptx"):
        assert stage.load_checkpoint(d / f"{n}.pt")["tokenizer"] == "gpt2"
    assert set(res["models"]) == set(evaluate.MODELS)


def test_gpu_check_runs_its_stages_on_a_cpu(tmp_path):
    """tools/gpu_check.py's part 2 at the tiny size on a CPU: every stage runs and is timed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import gpu_check
    rep = gpu_check.main(["--device", "cpu", "--size", "tiny", "--skip_tiny", "--out",
                          str(tmp_path)])
    assert [r["stage"].split(" ")[1] for r in rep["stages"]] == [
        "pretrain", "sft", "collect", "rm", "ppo_ptx", "evaluate"]
    assert all(r["seconds"] > 0 and r["peak_gib"] is None for r in rep["stages"])
    assert json.loads((tmp_path / "gpu_check.json").read_text())["params"] == rep["params"]
    if not torch.cuda.is_available():  # its default device is cuda: it says what is missing
        with pytest.raises(SystemExit, match="no CUDA device"):
            gpu_check.main(["--out", str(tmp_path)])


def test_gpt2_preset_without_weights_says_how(tmp_path):
    with pytest.raises(SystemExit, match="--gpt2"):
        pipeline.run("gpt2", str(tmp_path / "run"))


def test_chat_answers_side_by_side(tiny, capsys):
    d = tiny[0]
    models, enc, rm = chat.load(d, ["sft", "ppo", "ppo_ptx"])
    rows = chat.reply(models, enc, rm, "What does a fox eat?", samples=2, temperature=0.0)
    assert [r["model"] for r in rows] == ["sft", "sft", "ppo", "ppo", "ppo_ptx", "ppo_ptx"]
    assert all(isinstance(r["rm"], float) and r["gold"] is not None for r in rows)
    assert rows[0]["response"] == rows[1]["response"]  # greedy: the same answer twice
    chat.main(["--out", str(d), "--prompt", "Hello! How are you today?", "--models", "sft,ppo"])
    # sampled (the default temperature, 1): two draws of one prompt, each scored
    rows = chat.reply(models, enc, rm, "What does a fox eat?", samples=2)
    assert len(rows) == 6 and all(isinstance(r["rm"], float) for r in rows)
    out = capsys.readouterr().out
    assert "[sft] (RM " in out and "[ppo] (RM " in out
    # a prompt from outside the world: no gold score, only the reward model's
    assert chat.reply(models, enc, rm, "Explain quantum gravity.")[0]["gold"] is None


def test_chat_without_a_run_says_how_to_make_one(tmp_path):
    with pytest.raises(SystemExit, match="python pipeline.py --out"):
        chat.main(["--out", str(tmp_path / "nowhere"), "--prompt", "Hi"])
