"""Shared test setup: one torch thread. The tests' models are tiny, where a second thread
buys little, and on a busy 2-core machine competing OpenMP threads made steps ~8x slower."""

import torch

torch.set_num_threads(1)
