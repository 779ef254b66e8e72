"""Shared test setup: one torch thread (the tests' models are tiny, where a second thread buys
little, and on a busy 2-core machine competing OpenMP threads made steps ~8x slower), and one
finished run of the tiny preset that tests read or copy, never change."""

import pytest
import torch

import pipeline

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(run directory, results) of the whole tiny pipeline, run once per test session."""
    d = tmp_path_factory.mktemp("tiny")
    return d, pipeline.run("tiny", str(d))
