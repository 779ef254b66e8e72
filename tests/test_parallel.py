"""parallel.py: two ranks (gloo, on this CPU) train what one process trains with the same global
batch; resume works with another number of ranks; rank 0 alone writes; torchrun's command line
runs a stage."""

import copy
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import copy_of
from test_ppo import run_dir  # noqa: F401  (a fixture)

import objective
import parallel
import ppo
import pretrain
import reward
import sft
import stage

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"pretrain": pretrain, "sft": sft, "reward": reward, "ppo": ppo}


def spawn(fn, size, *args):
    """fn(rank, size, port, *args) on `size` processes, started as torchrun starts its ranks:
    the store they meet at is held here, by the parent (torchrun's agent), so that it outlives
    every rank (hosted by rank 0, a rank 1 still leaving could lose it and abort)."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(fn, args=(size, store.port, *args), nprocs=size)


def join(rank, size, port):
    """The environment torchrun gives rank `rank` of `size`, its store at the agent's port."""
    os.environ.update(WORLD_SIZE=str(size), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      TORCHELASTIC_USE_AGENT_STORE="True")


def _rank_main(rank, size, port, module, cfg, crash_at):
    """One rank, set up as torchrun sets one up (the environment), running module.train(cfg);
    crash_at: every rank dies as step crash_at begins."""
    join(rank, size, port)
    torch.set_num_threads(1)
    stage.cpu_has_bf16 = lambda: False  # fp32, as in every test
    if crash_at:
        real = stage.lr_at

        def crash(step, *a):
            if step == crash_at:
                raise RuntimeError("interrupted")  # (spawn would swallow a KeyboardInterrupt)
            return real(step, *a)
        stage.lr_at = crash
    STAGES[module].train(cfg)  # (a rank that fails exits, and spawn stops the others)
    parallel.finish()


def on_ranks(size, module, cfg, crash_at=0):
    spawn(_rank_main, size, module, cfg, crash_at)


def weights(path, key="model"):
    return stage.load_checkpoint(path)[key]


def assert_same(a, b, rtol=1e-5, atol=1e-5, skip=()):
    """Every weight within fp32 tolerance, but the attention's key bias: its gradient is zero in
    exact arithmetic (it adds q . b_k to every score of a row, which softmax ignores), so Adam,
    which divides a gradient by its own scale, turns the rounding left in it into steps of about
    lr whose sign depends on the order of sums."""
    assert a.keys() == b.keys()
    for k in set(a) - set(skip):
        x, y = a[k].float(), b[k].float()
        if k.endswith("attn.c_attn.bias"):  # (q, k, v) biases: drop k's
            n = len(x) // 3
            x, y = torch.cat([x[:n], x[2 * n:]]), torch.cat([y[:n], y[2 * n:]])
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=k)


def test_ranks_share_and_rescale_on_one_process():
    one = parallel.Ranks()
    assert one.share([1, 2, 3]) == [1, 2, 3] and one.sum(2.5) == 2.5 and one.gather(7) == [7]
    loss = torch.tensor(1.5)
    assert one.rescale(loss, 0) is loss  # one process: untouched
    assert parallel.Ranks(1, 3).share(list(range(8))) == [1, 4, 7]
    with pytest.raises(ValueError, match="does not divide over 2 ranks"):
        parallel.need_divisible(5, "--batch_size", parallel.Ranks(0, 2))


def pretrained_alone(tmp_path, **kw):
    """A tiny pretraining in one process (run/): its weights, and the same run's Config for
    two/, which holds the tokenizer the first trained."""
    from test_pretrain import tiny_cfg
    cfg = tiny_cfg(tmp_path, **kw)
    pretrain.train(cfg)
    two = dataclasses.replace(cfg, out=str(tmp_path / "two"))
    Path(two.out).mkdir()
    shutil.copy(tmp_path / "run" / "tokenizer.tiktoken", tmp_path / "two")
    return weights(tmp_path / "run" / "base.pt"), two


def test_pretraining_on_two_ranks_equals_one(tmp_path):
    one, two = pretrained_alone(tmp_path, max_iters=12, eval_interval=6, batch_size=8)
    on_ranks(2, "pretrain", two)
    assert_same(one, weights(tmp_path / "two" / "base.pt"))
    log = (tmp_path / "two" / "pretrain.jsonl").read_text().splitlines()
    assert len(log) == 2  # rank 0 alone logs: one record per evaluation
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        ".lock", "base.pt", "pretrain.jsonl", "tokenizer.tiktoken"]  # no second writer's files


def test_interrupted_on_two_ranks_resumed_on_one_equals_uninterrupted(tmp_path):
    straight, two = pretrained_alone(tmp_path, max_iters=12, eval_interval=4, batch_size=8,
                                     eval_iters=2)
    with pytest.raises(Exception, match="interrupted|Connection closed"):  # a rank, or its peer
        on_ranks(2, "pretrain", two, crash_at=7)  # after the checkpoint of step 4
    assert stage.load_checkpoint(tmp_path / "two" / "base.pt")["step"] == 4
    pretrain.train(dataclasses.replace(two, resume=True))  # one process finishes it
    assert_same(straight, weights(tmp_path / "two" / "base.pt"))


def test_interrupted_on_two_ranks_resumed_on_two_is_exact(tmp_path):
    """With dropout, each rank's own stream is stored and restored: the same weights, bit for
    bit, as an uninterrupted 2-rank run."""
    from test_pretrain import tiny_cfg
    cfg = tiny_cfg(tmp_path, max_iters=12, eval_interval=4, batch_size=8, eval_iters=2,
                   dropout=0.1)
    for d in ("straight", "resumed"):
        (tmp_path / d).mkdir()
        pretrain.train(dataclasses.replace(cfg, out=str(tmp_path / d), max_iters=1))  # BPE
        (tmp_path / d / "base.pt").unlink()
    on_ranks(2, "pretrain", dataclasses.replace(cfg, out=str(tmp_path / "straight")))
    resumed = dataclasses.replace(cfg, out=str(tmp_path / "resumed"))
    with pytest.raises(Exception, match="interrupted|Connection closed"):
        on_ranks(2, "pretrain", resumed, crash_at=7)
    on_ranks(2, "pretrain", dataclasses.replace(resumed, resume=True))
    a, b = (weights(tmp_path / d / "base.pt") for d in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def sft_run(tiny_base, tmp_path_factory):
    from test_sft import small_run
    return small_run(tiny_base, tmp_path_factory.mktemp("par") / "sft", n=40)


def test_sft_on_two_ranks_equals_one(sft_run, tmp_path):
    """Demonstrations of different lengths (the token mean over both ranks), an epoch's last
    batch of 5 (uneven shares) and the pretraining mix (corpus windows shared equally)."""
    cfg = sft.Config(out=str(copy_of(sft_run, tmp_path / "one")), epochs=1, batch_size=11,
                     ptx_fraction=0.2, eval_interval=2, n_eval_prompts=4, n_samples=2,
                     max_new_tokens=8, lr=2e-3)
    sft.train(cfg)
    two = dataclasses.replace(cfg, out=str(copy_of(sft_run, tmp_path / "two")))
    on_ranks(2, "sft", two)
    assert_same(weights(tmp_path / "one" / "sft.pt"), weights(tmp_path / "two" / "sft.pt"))
    assert ((tmp_path / "one" / "sft_log.jsonl").read_text().count("\n")
            == (tmp_path / "two" / "sft_log.jsonl").read_text().count("\n"))


def test_reward_model_on_two_ranks_equals_one(tiny, tmp_path):
    """Each prompt's C(K,2) pairs stay on one rank; 5 prompts a step split 3 + 2."""
    src, _ = tiny
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        for f in ("sft.pt", "tokenizer.tiktoken", "comparisons.jsonl", "sft.jsonl"):
            (tmp_path / d / f).write_bytes((src / f).read_bytes())
    cfg = reward.Config(out=str(tmp_path / "one"), preset="tiny", batch_size=5, epochs=1,
                        eval_interval=10, lr=1e-3)
    reward.train(cfg)
    on_ranks(2, "reward", dataclasses.replace(cfg, out=str(tmp_path / "two")))
    one, two = (stage.load_checkpoint(tmp_path / d / "rm.pt") for d in ("one", "two"))
    # Eq. 1 reads differences of rewards only: what shifts every reward alike (the head's bias,
    # the last LayerNorm's bias, read through the head alone) has no gradient (as the key bias,
    # see assert_same), and the normalisation subtracts whatever the shift became
    assert_same(one["model"], two["model"],
                skip=("head.bias", "bias", "gpt.transformer.ln_f.bias"))
    assert two["normalized"]
    shift = [ck["model"]["head.bias"] + ck["model"]["head.weight"][0]
             @ ck["model"]["gpt.transformer.ln_f.bias"] - ck["model"]["bias"] for ck in (one, two)]
    torch.testing.assert_close(shift[0], shift[1], rtol=0, atol=1e-4)  # the normalised reward


def _gather_rank(rank, size, port, result):
    join(rank, size, port)
    ranks, _ = parallel.init("cpu")
    part = _part(rank)
    whole = ranks.gather_rows(part)
    if ranks.main:
        torch.save({"whole": whole, "white": objective.whiten(whole["adv"], whole["mask"])}, result)
    parallel.finish()


def _part(rank):
    """Rank r's roll-outs: 3 + r rows, 5 + 2r columns, a random response mask."""
    g = torch.Generator().manual_seed(rank)
    B, T = 3 + rank, 5 + 2 * rank
    return {"tokens": torch.randint(1, 9, (B, T), generator=g),
            "mask": (torch.rand(B, T - 1, generator=g) > 0.3).float(),
            "adv": torch.randn(B, T - 1, generator=g), "score": torch.randn(B, generator=g)}


def test_gathered_roll_outs_whiten_as_the_concatenated_batch(tmp_path):
    """PPO's whitening over 2 ranks: each rank's episodes gathered (padded to one length) give
    the statistics of the whole batch, as one process computes them."""
    spawn(_gather_rank, 2, tmp_path / "g.pt")
    got = torch.load(tmp_path / "g.pt")
    a, b = _part(0), _part(1)
    assert got["whole"]["tokens"].shape == (7, 7) and got["whole"]["score"].shape == (7,)
    torch.testing.assert_close(got["whole"]["tokens"][3:], b["tokens"])
    adv = torch.cat([x["adv"][x["mask"] > 0] for x in (a, b)])  # every response token
    want = (adv - adv.mean()) / adv.var(unbiased=False).add(1e-8).sqrt()
    torch.testing.assert_close(got["white"][got["whole"]["mask"] > 0], want)
    assert not got["white"][got["whole"]["mask"] == 0].any()  # padding stays 0


def _ppo_update_rank(rank, size, port, out, result):
    """PPO's update of one scored batch on this rank's share, through DistributedDataParallel."""
    join(rank, size, port)
    torch.set_num_threads(1)
    stage.cpu_has_bf16 = lambda: False  # fp32, as in every test
    ranks, _ = parallel.init("cpu")
    policy, value_model, batch, cfg, ptx_ids = _ppo_case(out)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (policy, value_model)]  # see above
    net = parallel.wrap(ppo.Losses(policy, value_model, cfg, ranks), ranks, "cpu")
    ppo.update(policy, value_model, opts, batch, cfg, torch.Generator().manual_seed(3),
               ptx_ids, net=net)
    if ranks.main:
        torch.save({"policy": policy.state_dict(), "value": value_model.state_dict()}, result)
    parallel.finish()


def _ppo_case(out):
    from test_ppo import one_batch, small_cfg
    enc = stage.load_encoding(out, stage.load_checkpoint(Path(out) / "sft.pt")["tokenizer"])
    cfg = small_cfg(out, minibatch_size=7, ptx_coef=2.0, ptx_batch_size=4)  # 18 = 7 + 7 + 4
    policy, _, value_model, batch = one_batch(enc, cfg)
    ids = torch.tensor(stage.tok.encode_corpus(enc, (Path(out) / "corpus.txt").read_text()))
    return policy, value_model, batch, cfg, ids


def test_ppo_update_on_two_ranks_equals_one(run_dir, tmp_path):  # noqa: F811
    """Minibatches of 7 episodes (4 + 3 a rank; the last, 4, as 2 + 2), token means over
    both ranks, ptx windows halved: the same steps as one process. With SGD, so that the
    weights differ as the gradients do (Adam's first steps are lr times the gradient's sign,
    which rounding flips wherever a gradient is near zero)."""
    out, _ = run_dir
    policy, value_model, batch, cfg, ids = _ppo_case(out)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (policy, value_model)]  # see above
    ppo.update(policy, value_model, opts, copy.deepcopy(batch), cfg,
               torch.Generator().manual_seed(3), ids)
    spawn(_ppo_update_rank, 2, str(out), tmp_path / "two.pt")
    two = torch.load(tmp_path / "two.pt")
    assert_same(policy.state_dict(), two["policy"], rtol=1e-4, atol=1e-5)
    assert_same(value_model.state_dict(), two["value"], rtol=1e-4, atol=1e-5)


def test_ppo_runs_on_two_ranks(run_dir, tmp_path):  # noqa: F811
    """Each rank samples its half of the episodes; the log holds the whole batch's figures."""
    out, _ = run_dir
    two = copy_of(out, tmp_path / "two")
    cfg = ppo.Config(out=str(two), device="cpu", iterations=2, batch_size=8, minibatch_size=4,
                     max_new_tokens=8, lr=1e-3, warmup=0, log_every=1, ptx_coef=1.0,
                     ptx_batch_size=2)
    on_ranks(2, "ppo", cfg)
    log = stage.load_checkpoint(two / "ppo_ptx.pt")["log"]
    assert [r["episodes"] for r in log] == [8, 16]
    assert all(abs(r["rlhf/kl"]) < 10 and "loss/ptx" in r for r in log)


def test_torchrun_command_line(tmp_path):
    """The documented command: torchrun starts two ranks of pretrain.py."""
    from test_pretrain import tiny_cfg
    cfg = tiny_cfg(tmp_path, max_iters=4, eval_interval=4, batch_size=4, eval_iters=1)
    args = [f"--{k}={v}" for k, v in dataclasses.asdict(cfg).items()
            if not isinstance(v, bool)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(ROOT / "pretrain.py"), *args, "--dtype=fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 ranks" in res.stdout
    assert stage.load_checkpoint(tmp_path / "run" / "base.pt")["step"] == 4


def test_pipeline_on_ranks_that_do_not_divide_the_batch_says_so(tmp_path, capfd):
    """--nproc 3 with the tiny preset's 16 windows a step: the rank's one-line error, then a
    stop that points to it."""
    import pipeline
    with pytest.raises(SystemExit, match="pretrain.py on 3 ranks failed"):
        pipeline.run("tiny", str(tmp_path / "run"), nproc=3)
    assert "error: --batch_size = 16 does not divide over 3 ranks" in capfd.readouterr().err


@pytest.mark.slow
def test_pipeline_with_two_ranks(tmp_path, capsys):
    """`python pipeline.py --preset tiny --nproc 2`: every training stage under torchrun; the
    pretrained model is the one process's up to the order of sums (PPO samples per rank)."""
    import pipeline
    one, two = tmp_path / "one", tmp_path / "two"
    pipeline.run("tiny", str(one))
    res = pipeline.run("tiny", str(two), nproc=2)
    assert set(res["models"]) >= {"sft", "ppo", "ppo_ptx"}
    val = [stage.load_checkpoint(d / "base.pt")["log"][-1]["loss/val"] for d in (one, two)]
    assert val[1] == pytest.approx(val[0], abs=5e-3)
    capsys.readouterr()
    pipeline.run("tiny", str(two), nproc=2)  # a second run: nothing to do
    assert "every stage up to date" in capsys.readouterr().out
