"""parallel.py: every training stage on several processes at once, with PyTorch's own data
parallelism (torch.distributed, DistributedDataParallel), started by torchrun.

    torchrun --standalone --nproc_per_node 2 pretrain.py --out runs/cpu
    python pipeline.py --nproc 2                  # every training stage that way

Each process (a rank) holds a whole copy of the model and takes its share of every global
batch; DistributedDataParallel averages the gradients over the ranks during backward, so each
optimizer step sees the gradient of the global batch. What makes the result not depend on the
number of ranks N (up to the order of floating-point sums):

- The global batch is drawn as in one process, from a generator seeded alike on every rank,
  and rank r takes its rows r, r + N, r + 2N, ... (`Ranks.share`).
- A loss that is a mean over items whose count differs between ranks (response tokens, a
  batch that does not divide by N) is rescaled so that the average of the ranks' gradients is
  the gradient of the mean over all of them (`Ranks.rescale`).
- What is random per row is drawn by each rank from its own stream, seeded seed + rank (PPO's
  roll-outs, dropout), so one process draws what it always drew; a model's initial weights
  are rank 0's, which DistributedDataParallel sends to every rank. (Dropout masks are thus
  draws that depend on N; the cpu preset trains without dropout.)
- Only rank 0 evaluates, logs and writes files; the others wait at the next step.

Without torchrun (no WORLD_SIZE in the environment) this file does nothing: one process, the
model unwrapped, every number as before. On a CPU the ranks talk over gloo, on GPUs over
nccl with one GPU per rank (cuda:LOCAL_RANK). Nothing here is from the paper (which trained on
many GPUs without saying how); its batches are global batches, which is what N keeps fixed.

The other way to use several cores (`beside`): stages that do not read each other's files
(the four PPO runs) as separate processes at once, each on its share of the threads (the
pipeline's --jobs). On a 2-core CPU that is the faster way: a small model's steps keep two
threads only partly busy, while two one-thread processes keep both cores busy.
"""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import stage


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks: rank r of size (0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates, logs and writes."""
        return self.rank == 0

    def share(self, rows):
        """This rank's rows of a global batch (a tensor or a list): r, r + N, ..."""
        return rows if self.size == 1 else rows[self.rank::self.size]

    def sum(self, x):
        """x (a number or a tensor) summed over the ranks; x itself on one rank."""
        if self.size == 1:
            return x
        t = torch.as_tensor(x, dtype=torch.float64).clone()
        dist.all_reduce(t)
        return t if torch.is_tensor(x) else t.item()

    def rescale(self, loss, n):
        """loss: the mean over this rank's n items. Returns loss * n * N / (n summed over the
        ranks): DistributedDataParallel averages gradients over the N ranks, so the step sees
        the gradient of the mean over every rank's items, as one process computes it. A rank
        with n = 0 contributes a zero gradient. On one rank: loss, untouched."""
        if self.size == 1:
            return loss
        return loss * (n * self.size / max(self.sum(float(n)), 1.0))

    def gather(self, obj) -> list:
        """Every rank's obj, in rank order (all ranks must call it)."""
        if self.size == 1:
            return [obj]
        objs = [None] * self.size
        dist.all_gather_object(objs, obj)
        return objs

    def gather_rows(self, batch: dict) -> dict:
        """Every rank's rows of a dict of tensors, in rank order, on every rank (all must call
        it): tensors (B_r,) as they are, (B_r, T_r) and (B_r, T_r - 1) padded on the right
        with zeros to the longest T (PPO's roll-outs: zeros there are padding, masked out of
        every sum and never attended to)."""
        if self.size == 1:
            return batch
        parts = self.gather({k: v.cpu() for k, v in batch.items()})
        T = max(p["tokens"].shape[1] for p in parts)

        def pad(v, t):  # (B, t) or (B, t - 1) -> (B, T) or (B, T - 1)
            return v if v.dim() == 1 else torch.nn.functional.pad(v, (0, T - t))

        dev = batch["tokens"].device
        return {k: torch.cat([pad(p[k], p["tokens"].shape[1]) for p in parts]).to(dev)
                for k in batch}

    def average(self, records: list[dict]) -> list[dict]:
        """Each rank's list of stat records (the same keys, in the same order), averaged over
        the ranks entry by entry (all must call it); on one rank the records themselves."""
        if self.size == 1:
            return records
        return [{k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}
                for rs in zip(*self.gather(records), strict=True)]

    def states(self, state):
        """A generator's state for a checkpoint (all ranks must call it): the state itself on
        one rank, else {"ranks": every rank's, in rank order}."""
        return state if self.size == 1 else {"ranks": self.gather(state)}

    def own(self, saved):
        """This rank's state from what `states` stored; None for a rank that has none, when the
        checkpoint was written by another number of ranks (rank 0 then continues rank 0's
        stream, and the caller starts a new one for every other rank)."""
        per = saved["ranks"] if isinstance(saved, dict) else [saved]
        if len(per) == self.size:
            return per[self.rank]
        return per[0] if self.main else None

    def progress(self, total: int, initial: int, desc: str):
        """A stage's progress bar (tqdm, on stdout), drawn by rank 0 alone; TQDM_DISABLE=1 in
        the environment hides it as tqdm's own setting does (the notebooks set it)."""
        from tqdm import tqdm  # imported when a stage starts training, not with this file
        return tqdm(total=total, initial=initial, desc=desc, file=sys.stdout, dynamic_ncols=True,
                    leave=False, **({} if self.main else {"disable": True}))

    def wait(self) -> None:
        """All ranks meet here (rank 0 has finished writing what the others read)."""
        if self.size > 1:
            dist.barrier()


def init(device: str) -> tuple[Ranks, str]:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE, RANK,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on a CPU, nccl on GPUs, each rank on its own GPU.
    Returns (ranks, this rank's device); without torchrun (Ranks(), device)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return Ranks(), device
    if str(device).startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size()), device


def finish() -> None:
    """Leave the process group, all ranks together (a stage's command ends with it: a rank
    that tore its group down while another still wrote could abort)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model, ranks: Ranks, device: str):
    """The model as DistributedDataParallel (which also starts every rank from rank 0's
    weights), or the model itself on one rank. Train through what this returns; evaluate and
    save the model itself."""
    if ranks.size == 1:
        return model
    ids = [torch.device(device).index] if str(device).startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def need_divisible(n: int, what: str, ranks: Ranks) -> None:
    """A count that every rank must share equally (a batch of corpus windows)."""
    if n % ranks.size:
        raise ValueError(f"{what} = {n} does not divide over {ranks.size} ranks; use a "
                         f"multiple of {ranks.size}")


def rng_states(ranks: Ranks) -> dict:
    """What an exact resume restores besides weights, optimizer and a stage's own generators:
    the global generators (dropout) of every rank, CUDA's if present (all ranks must call it)."""
    state = {"torch": ranks.states(torch.get_rng_state())}
    if torch.cuda.is_available():
        state["cuda"] = ranks.states(torch.cuda.get_rng_state_all())
    return state


def set_rng_states(state: dict, ranks: Ranks, seed: int) -> None:
    """Restore this rank's streams: exactly when the checkpoint was written with the same number
    of ranks; with another number, rank 0 continues rank 0's and rank r > 0 starts a new one
    (seed + r): dropout draws differ from an uninterrupted run, every batch does not."""
    own = ranks.own(state["torch"])
    if own is None:
        torch.manual_seed(seed + ranks.rank)
    else:
        torch.set_rng_state(own)
    cuda = ranks.own(state["cuda"]) if "cuda" in state else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def arguments(cfg) -> list[str]:
    """Every field of a stage's Config as its script's command-line flags."""
    return [f"--{'' if v else 'no-'}{k}" if isinstance(v, bool) else f"--{k}={v}"
            for k, v in dataclasses.asdict(cfg).items()]


def command(script: str, cfg, nproc: int, extra=()) -> list[str]:
    """torchrun's command line for a stage's script with every field of its Config."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", str(Path(__file__).parent / script), *arguments(cfg),
            *extra]


def child_env(out, **more) -> dict:
    """The environment of a stage's own process: this one's, plus the run directory whose lock
    the pipeline holds for it (stage.HELD_BY_PARENT), plus more."""
    return {**os.environ, stage.HELD_BY_PARENT: str(Path(out).resolve()), **more}


def launch(script: str, cfg, nproc: int, out, extra=()) -> None:
    """Run a stage on nproc ranks (the pipeline's --nproc), under the lock the caller holds on
    out/ (stage.HELD_BY_PARENT); a rank's failure stops the pipeline, pointing to the rank's
    own one-line error, which torchrun's report follows."""
    res = subprocess.run(command(script, cfg, nproc, extra), env=child_env(out))
    if res.returncode:
        raise SystemExit(f"error: {script} on {nproc} ranks failed (exit {res.returncode}); "
                         f"the rank's own error is printed above, before torchrun's report")


def beside(name: str, script: str, cfg, out, threads: int) -> None:
    """A stage as its own process (its script with every field of cfg) on `threads` threads,
    while another runs beside it (the pipeline's --jobs), under the lock the caller holds on
    out/; its lines are printed whole, each after its name, and its progress bar is off."""
    env = child_env(out, TQDM_DISABLE="1", OMP_NUM_THREADS=str(threads),
                    MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(Path(__file__).parent / script), *arguments(cfg)]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        for line in proc.stdout:  # (lines that name their run already are left as they are)
            print(f"    {'' if line.startswith(name + ':') else name + ': '}{line}", end="",
                  flush=True)
    if proc.returncode:
        raise SystemExit(f"error: {name} ({script}) failed (exit {proc.returncode}); its own "
                         f"error is printed above")
