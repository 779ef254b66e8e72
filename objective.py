"""objective.py: Eq. 2 of InstructGPT as the losses PPO minimises, functions of tensors alone.

Paper: Ouyang et al. 2022, section 3.5, Eq. 2, and appendix C.4; PPO: Schulman et al. 2017;
GAE: Schulman et al. 2016. ppo.py is the algorithm that calls these (its docstring has the
glossary and every [Dn] tag; those explained here too are the ones these functions implement):

    objective(phi) = E_{(x,y) ~ D_pi_RL}[ r_theta(x, y) - beta log(pi_RL(y|x) / pi_SFT(y|x)) ]
                     + gamma E_{x ~ D_pretrain}[ log pi_RL(x) ]                          (Eq. 2)

    kl_penalized_rewards   the first expectation as per-token rewards: -beta kl_t on every
                           response token [D2], + r_theta(x, y) at the final token [D1]
    gae, whiten            advantages and returns from them and the values [D5], whitened [D6]
    ppo_policy_loss        PPO's clipped surrogate, the first expectation's gradient estimator
    value_loss             the value model's clipped squared error [D7]
    ptx_loss               the last term: the language-model loss on pretraining text
    entropy                of the sampling distributions (logged; a bonus only if asked)

Per-token tensors are (B, T-1), entry t about token t+1, with `mask` 1 on the response's tokens;
every mean is over those tokens [D12].
"""

import torch

import environment as env


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x, mask):
    """[D6] (x - mean) / std over the entries where mask is 1, 0 elsewhere. x, mask (B, T)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def kl_penalized_rewards(logprobs, ref_logprobs, score, mask, kl_coef):
    """Eq. 2's first two terms as per-token rewards. logprobs, ref_logprobs, mask (B, T-1): the
    sampled tokens' log-probs under pi_RL and pi_SFT; score (B,) the RM's r_theta(x, y).
    Returns rewards (B, T-1) = -beta kl_t on response tokens [D2], plus the score at each
    response's final token [D1], and kl (B, T-1), the k1 estimate kl_t."""
    kl = (logprobs - ref_logprobs) * mask  # log pi_RL(y_t|.) / pi_SFT(y_t|.)
    rewards = -kl_coef * kl * mask  # Eq. 2: - beta log(pi_RL / pi_SFT), token by token
    rows = torch.arange(len(score), device=score.device)
    rewards[rows, env.response_end(mask)] += score  # Eq. 2: + r_theta(x, y), at the final token
    return rewards, kl


def gae(rewards, values, mask, discount=1.0, lam=0.95):
    """[D5] Generalised advantage estimation, backwards over time (d = discount):
        delta_t = r_t + d V_{t+1} - V_t,        A_t = delta_t + d lambda A_{t+1},
    where V and A are 0 after the final token. rewards, values, mask (B, T-1) -> advantages,
    returns = advantages + values (B, T-1), both 0 outside the mask."""
    values = values * mask
    advantages = torch.zeros_like(rewards)
    next_adv = rewards.new_zeros(rewards.shape[0])  # A_{t+1}, 0 after the final token
    next_value = rewards.new_zeros(rewards.shape[0])  # V_{t+1}, likewise
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + discount * next_value - values[:, t]
        next_adv = (delta + discount * lam * next_adv) * mask[:, t]
        next_value = values[:, t]
        advantages[:, t] = next_adv
    return advantages, advantages + values


def ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_eps=0.2):
    """PPO's clipped surrogate (Schulman et al. 2017, Eq. 7) as a loss, over response tokens:
        L = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t),  rho_t = pi / pi_old.
    All inputs (B, T-1). Returns (loss, stats)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    surr = ratio * advantages
    surr_clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    loss = -masked_mean(torch.min(surr, surr_clipped), mask)  # pessimistic: no gain past eps
    with torch.no_grad():
        m = mask.bool()
        stats = {"loss/policy": loss.item(),
                 "ppo/clipfrac": masked_mean((surr_clipped < surr).float(), mask).item(),
                 "ppo/approx_kl": masked_mean(torch.expm1(log_ratio) - log_ratio, mask).item(),
                 "ppo/ratio_mean": masked_mean(ratio, mask).item(),
                 "ppo/ratio_dev": (ratio[m] - 1).abs().max().item() if m.any() else 0.0}
    return loss, stats


def value_loss(values, old_values, returns, mask, clip=0.2):
    """[D7] 0.5 mean_t max((V_t - R_t)^2, (V_old,t + clip(V_t - V_old,t, +-clip) - R_t)^2) over
    response tokens; clip 0 = unclipped. All inputs (B, T-1). Returns (loss, stats)."""
    err = (values - returns) ** 2
    if clip > 0:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        err = torch.max(err, (clipped - returns) ** 2)
    loss = 0.5 * masked_mean(err, mask)
    return loss, {"loss/value": loss.item()}


def ptx_loss(model, batch):
    """Eq. 2's last term: maximising gamma E[log pi_RL(x)] on pretraining text is minimising
    gamma times the LM loss; the caller multiplies by gamma. batch: x, targets (B, T) of corpus
    windows (stage.get_batch). Returns (loss, stats)."""
    x, y = batch
    _, loss = model(x, targets=y)
    return loss, {"loss/ptx": loss.item()}


def entropy(logits, temperature=1.0):
    """Mean entropy of the sampling distributions at the response's tokens: logits (n, V)."""
    logp = torch.log_softmax(logits.float() / temperature, -1)
    return -(logp.exp() * logp).sum() / max(1, len(logits))  # 0, not NaN, for no tokens
