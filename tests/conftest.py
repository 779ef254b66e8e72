"""Shared test setup: one torch thread (the tests' models are tiny, where a second thread buys
little, and on a busy 2-core machine competing OpenMP threads made steps ~8x slower), fp32 on
every CPU (so a test computes the same numbers on every machine; the tests that are about
bf16 ask for it), temporary files under pytest's own temporary directory (which keeps the
last three sessions' only), and one finished run of the tiny preset that tests read or copy,
never change."""

import shutil
import tempfile

import pytest
import torch

import pipeline
import pretrain
import stage
import world

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def fp32_on_every_cpu():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "cpu_has_bf16", lambda: False)
        yield


@pytest.fixture(autouse=True, scope="session")
def temporary_files_in_pytest_tmp(tmp_path_factory):
    """What the code under test puts in the system's temporary directory (the notebooks' run
    directories, torch.multiprocessing's error files) goes under this session's pytest
    directory, here and in the processes the tests start, instead of piling up in /tmp."""
    d = str(tmp_path_factory.mktemp("tmp"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", d)
        mp.setattr(tempfile, "tempdir", d)
        yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(run directory, results) of the whole tiny pipeline, run once per test session."""
    d = tmp_path_factory.mktemp("tiny")
    return d, pipeline.run("tiny", str(d))


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """The tiny world's datasets and a small pretrained base.pt (2 layers, 64 wide, context
    128): what the SFT and RM tests start from. Made once; tests work on copies."""
    d = tmp_path_factory.mktemp("tiny_base")
    world.write_datasets(world.PRESETS["tiny"], d)
    pretrain.train(pretrain.Config(data=str(d / "corpus.txt"), out=str(d), vocab_size=512,
                                   n_layer=2, n_head=2, n_embd=64, block_size=128, batch_size=16,
                                   max_iters=150, lr=3e-3, warmup_iters=10, eval_interval=150,
                                   eval_iters=2))
    return d


def copy_of(src, dst):
    shutil.copytree(src, dst)
    return dst
