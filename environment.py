"""environment.py: the setting of InstructGPT's step 3, what PPO trains in and starts from.

Paper: Ouyang et al. 2022, section 3.5 "Reinforcement learning (RL)": "The environment is a
bandit environment which presents a random customer prompt and expects a response to the
prompt. Given the prompt and response, it produces a reward determined by the reward model and
ends the episode. [...] The value function is initialized from the RM." This file is that
setting; ppo.py is the algorithm that learns in it (its [Dn] tags are explained there):

    prompt_indices     the random customer prompts, an endless stream of shuffles
    rm_reward          the reward: the RM's score at the response's end-of-text [D1], and a
                       penalty instead for a response that never ends [D10]
    gold_reward        an ablation's reward: the world's gold score itself (ppo.py --reward
                       gold), what PPO reaches when the reward model is perfect
    make_value_model   the value function, initialised from the RM [D4]
    load_models        the policy and the frozen reference (both the SFT model), the value
                       model and the RM, from a run directory

Deviations from the paper:
1. A response cut off at the length cap gets a fixed penalty, not the RM's score (Ziegler et
   al. 2019): the RM never saw an unfinished answer.
"""

import copy
from pathlib import Path

import torch
import torch.nn as nn

import gpt
import reward
import stage

# ----------------------------------------------------------------------------- the bandit


def prompt_indices(n_prompts, pos, n, seed):
    """n prompt indices from position pos of an endless stream of shuffles (epoch e shuffled
    with seed + e), so that resuming needs the position only."""
    order = lambda e: torch.randperm(n_prompts, generator=torch.Generator().manual_seed(seed + e))
    return [order(p // n_prompts)[p % n_prompts].item() for p in range(pos, pos + n)]


def response_end(response_mask):
    """Column of each row's final response token: response_mask (B, T) -> (B,)."""
    return response_mask.shape[1] - 1 - response_mask.flip(-1).argmax(-1)


def ended(tokens, response_mask, eot_id):
    """(B,) bool: the response's final token is the end-of-text (it did not hit the cap)."""
    return tokens.gather(1, response_end(response_mask)[:, None]).squeeze(1) == eot_id


def rm_reward(rm: reward.RewardModel, eot_id: int, no_eot_penalty: float):
    """The default reward_fn(tokens, attention_mask, response_mask) -> score (B,): the RM's
    normalised reward, read at each response's end-of-text [D1]; no_eot_penalty for responses
    that never ended [D10]."""
    def reward_fn(tokens, attention_mask, response_mask):
        score = rm(tokens, attention_mask, response_mask)  # read at each row's last token
        return torch.where(ended(tokens, response_mask, eot_id), score, no_eot_penalty)
    return reward_fn


def gold_reward(gold: list[float], eot_id: int, no_eot_penalty: float):
    """An ablation's reward_fn for one batch: its rows' gold scores (world.score, which ppo.py
    computes for its log anyway), the truth that the RM only estimates (Gao et al. 2022 train
    against their gold reward model the same way); no_eot_penalty for responses that never
    ended [D10], as rm_reward. Not the paper's recipe: it measures what PPO itself can reach."""
    def reward_fn(tokens, attention_mask, response_mask):
        score = torch.tensor(gold, device=tokens.device)
        return torch.where(ended(tokens, response_mask, eot_id), score, no_eot_penalty)
    return reward_fn


# ------------------------------------------------------------------ the models PPO starts from


class ValueModel(nn.Module):
    """[D4] V(x, y_<t): a GPT body and a scalar head read at every position (the RM reads one)."""

    def __init__(self, body: gpt.GPT, head: nn.Linear):
        super().__init__()
        self.gpt, self.head = body, head

    def forward(self, tokens, attention_mask=None):
        """tokens, attention_mask (B, T) -> values (B, T); entry t sees tokens <= t."""
        return self.head(self.gpt.body(tokens, attention_mask)).squeeze(-1).float()


def make_value_model(init: str, rm: reward.RewardModel, sft: gpt.GPT) -> ValueModel:
    """[D4] The paper's value function starts as the RM; "sft" and "fresh" are ablations."""
    if init not in ("rm", "sft", "fresh"):
        raise ValueError(f"value_init must be rm, sft or fresh, got {init!r}")
    # a trainable copy: the RM itself is frozen during PPO, its copy here must not be
    body = copy.deepcopy(sft if init == "sft" else rm.gpt).requires_grad_(True)
    head = nn.Linear(body.config.n_embd, 1)
    with torch.no_grad():
        if init == "rm":
            head.load_state_dict(rm.head.state_dict())
            head.bias -= rm.bias  # the RM's normalisation, folded in: V starts as r_theta - bias
        else:  # a zero head: V = 0 until it learns
            head.weight.zero_()
            head.bias.zero_()
    return ValueModel(body, head)


def load_models(out, policy_init: str = "sft", value_init: str = "rm", device="cpu"):
    """policy, ref (frozen SFT), value model, RM and tokenizer of a run directory, with errors
    that name the command that makes a missing file. policy_init: out/<name>.pt or a path."""
    out = Path(out)
    path = Path(policy_init) if policy_init.endswith(".pt") else out / f"{policy_init}.pt"
    policy, ck = stage.load_model(path, f"python sft.py --out {out}", device=device)
    enc = stage.load_encoding(out, ck["tokenizer"])
    ref = copy.deepcopy(policy).eval().requires_grad_(False)  # pi_SFT, frozen
    rm, _ = reward.load_reward_model(out / "rm.pt", enc, device)
    rm.requires_grad_(False)
    value_model = make_value_model(value_init, rm, policy).to(device)
    return policy, ref, value_model, rm, enc
