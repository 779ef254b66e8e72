"""The simulated world: the paper's API users and labelers, offline (paper 3.2-3.4, Figure 4).

It stands in for what the paper had and we do not: the internet GPT-3 read, the API's prompts,
about 40 labelers, and a ground truth to check the findings against. No training loss reads it
(but PPO's ablation `ppo.py --reward gold`, which measures what a perfect reward gives), and
data.py (the file formats) never loads it. Files in
reading order, which is their import order (README.md in this folder says more):

    facts.py     the world: entities, facts, made-up names, rumours
    tasks.py     the instruction families: one table row per task, in Table 1's categories
    prompts.py   "the API": prompts in Table 1's use-case mix, and parsing them back
    answers.py   answers of every quality, from the best to the broken
    corpus.py    "the internet": pretraining text and a cloze task
    gold.py      the gold score and its Figure 4 breakdown
    labelers.py  the labelers: gold score + taste + noise; rankings and demonstrations
    datasets.py  the run directory's datasets; `python -m world` writes them

The recipe's files use only the names below: `reward.py` has the labelers rank SFT samples
and measures their agreement; `sft.py`, `ppo.py`, `evaluate.py` and `chat.py` ask the gold score
for the reader's logs and findings, and `evaluate.py` has the held-out labelers judge.
"""

from .answers import best_response, few_shot_prefix, respond, sample_responses
from .datasets import PRESETS, SFT_LIKE, Config, write_datasets
from .facts import EOT, SEED, World, make_world
from .gold import score
from .labelers import Labeler, agreement, make_labelers
from .prompts import TABLE1, generate_prompts, parse

__all__ = ["World", "make_world", "SEED", "EOT", "TABLE1", "generate_prompts", "parse",
           "respond", "best_response", "sample_responses", "few_shot_prefix", "score",
           "Labeler", "make_labelers", "agreement", "Config", "PRESETS", "SFT_LIKE",
           "write_datasets"]
