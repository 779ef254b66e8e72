"""collect.py: the comparisons of InstructGPT's step 2, K samples of the SFT model per prompt
ranked by a labeler, written to out/comparisons.jsonl for the reward model (reward.py).

Paper: Ouyang et al. 2022, sections 3.4-3.5: for each prompt, labelers rank K = 4..9 outputs.
Ours are the SFT model's samples at temperature 1, and of each prompt's K, `off_prompt` are its
answers to other prompts (reward.py, deviation 7); the simulated training labelers rank them
(world/labelers.py; reward.py, deviation 2). The fields it reads are reward.Config's:

    python reward.py --out runs/cpu --collect_only   # sft.pt, rm_prompts.jsonl -> comparisons
"""

import itertools
import random
import sys
import time
from pathlib import Path

import torch

import data
import gpt
import stage
import world

DATA_CMD = "python -m world --out {out}"
SFT_CMD = "python sft.py --out {out}"


def load_sft(cfg):
    """The model to start from (paper: SFT), with the RM's dropout; returns (GPT, enc, ckpt)."""
    path = Path(cfg.init) if cfg.init.endswith(".pt") else Path(cfg.out) / f"{cfg.init}.pt"
    model, ck = stage.load_model(path, SFT_CMD.format(out=cfg.out), dropout=cfg.dropout)
    return model, stage.load_encoding(cfg.out, ck["tokenizer"]), ck


@stage.locked  # one run at a time per run directory
def collect(cfg) -> dict:
    """Sample K ~ U{k_min..k_max} responses per RM prompt from the SFT model, have a training
    labeler rank them, and write out/comparisons.jsonl. Returns a summary that includes the
    labelers' agreement on these very samples: the ceiling for the RM's accuracy."""
    if not 2 <= cfg.k_min <= cfg.k_max <= 9:
        raise ValueError(f"K must lie in 2..9 with k_min <= k_max (paper: 4..9), got "
                         f"k_min={cfg.k_min}, k_max={cfg.k_max}")
    t0, out = time.time(), Path(cfg.out)
    device = stage.pick_device(cfg.device)
    prompts = data.read_prompts(stage.need(out / "rm_prompts.jsonl", DATA_CMD.format(out=out)))
    prompts = prompts[:cfg.n_prompts] if cfg.n_prompts > 0 else prompts
    policy, enc, _ = load_sft(cfg)
    policy.to(device).eval()
    ids, n_cut = gpt.encode_prompts(enc, [data.format_prompt(p["prompt"]) for p in prompts],
                                    policy.config.block_size, cfg.max_new_tokens)
    rng = random.Random(cfg.seed)
    ks = [rng.randint(cfg.k_min, cfg.k_max) for _ in prompts]
    rows = [i for i, k in enumerate(ks) for _ in range(k)]  # the prompt of every sample
    gen = torch.Generator(device).manual_seed(cfg.seed)
    texts, ended = [], 0
    from tqdm import tqdm
    bar = tqdm(total=len(rows), desc="collect", file=sys.stdout, dynamic_ncols=True, leave=False)
    for s in range(0, len(rows), cfg.gen_batch):  # many prompts x K rows per call: speed only
        chunk = rows[s:s + cfg.gen_batch]
        with stage.autocast(device, cfg.dtype, sampling=True):
            toks, _, resp = policy.generate([ids[i] for i in chunk], cfg.max_new_tokens,
                                            temperature=cfg.temperature, eot_id=enc.eot_token,
                                            generator=gen)
        for text, end in gpt.decode_responses(enc, toks, resp):
            texts.append(text)
            ended += end
        bar.update(len(chunk))
    bar.close()
    labelers = world.make_labelers(world.PRESETS[cfg.preset])
    rank_rng, records, start = random.Random(f"{cfg.seed}-rank"), [], 0
    first = [0, *itertools.accumulate(ks)][:-1]  # index of each prompt's first sample
    off_rng = random.Random(f"{cfg.seed}-off")
    for i, (p, k) in enumerate(zip(prompts, ks, strict=True)):
        responses, start = texts[start:start + k], start + k
        for slot in range(k - min(cfg.off_prompt, k - 2) if len(prompts) > 1 else k, k):
            j = (i + 1 + off_rng.randrange(len(prompts) - 1)) % len(prompts)  # j != i
            responses[slot] = texts[first[j]]  # deviation 7: an answer to another prompt
        ranking = labelers[i % len(labelers)].rank(p["prompt"], responses, rank_rng)
        records.append({"prompt": p["prompt"], "responses": responses, "ranking": ranking,
                        "category": p["category"]})
    data.write_jsonl(out / "comparisons.jsonl", records)
    agree = world.agreement(labelers, [(r["prompt"], r["responses"]) for r in records],
                            random.Random(f"{cfg.seed}-agreement"))
    summary = {"prompts": len(records), "samples": len(texts),
               "pairs": sum(k * (k - 1) // 2 for k in ks), "ended": ended / max(1, len(texts)),
               "prompts_cut": n_cut, "agreement": agree, "seconds": time.time() - t0}
    print(f"collected {summary['prompts']} rankings ({summary['samples']} samples, "
          f"{summary['pairs']} pairs, {summary['ended']:.0%} ended, {n_cut} prompts cut) in "
          f"{summary['seconds']:.0f}s | labeler agreement {agree:.1%} (the RM's ceiling)")
    return summary
