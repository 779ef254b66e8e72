"""alignment_tax.py: what RLHF may cost the language model (paper section 4.2, Figures 28-29).

The paper measures "performance regressions on public NLP datasets" (DROP, HellaSwag, SQuAD,
translation) and finds PPO pays an alignment tax that PPO-ptx (Eq. 2's pretraining term)
mostly pays back. Ours, per model, on the world's held-out text and facts (evaluate.py's
deviation 3):

- `heldout_loss`: mean next-token loss on held-out pretraining text (corpus_val.txt), in
  non-overlapping windows of the model's context;
- `cloze_accuracy`: a multiple-choice task (cloze.jsonl): the share of items whose answer the
  model finds likeliest among the choices.

evaluate.py `measure`s every model and report.py compares each with the base model.
"""

import torch

import gpt
import tokenizer as tok


@torch.no_grad()
def heldout_loss(model, enc, text: str, n_windows: int, batch_size: int = 64) -> float:
    """Mean next-token loss on held-out pretraining text, in non-overlapping windows."""
    dev = model.lm_head.weight.device
    ids = torch.tensor(tok.encode_corpus(enc, text), dtype=torch.long)
    T = model.config.block_size
    n = (len(ids) - 1) // T
    n = min(n, n_windows) if n_windows else n
    if n < 1:
        raise ValueError(f"the held-out text has {len(ids)} tokens, fewer than one window")
    x, y = ids[:n * T].view(n, T), ids[1:n * T + 1].view(n, T)
    total = 0.0
    for s in range(0, n, batch_size):
        _, loss = model(x[s:s + batch_size].to(dev), targets=y[s:s + batch_size].to(dev))
        total += loss.item() * len(x[s:s + batch_size])
    return total / n


@torch.no_grad()
def cloze_accuracy(model, enc, items: list[dict], batch_size: int = 64) -> float:
    """Share of cloze items whose answer the model finds likeliest among the choices: the sum
    of log p(" " + choice | context) over the choice's tokens (a multiple-choice NLP task)."""
    dev = model.lm_head.weight.device
    pairs, spans = [], []
    for it in items:
        ctx = tok.encode(enc, it["context"])
        for c in it["choices"]:
            ans = tok.encode(enc, " " + c)
            pairs.append(ctx + ans)
            spans.append(len(ans))
    scores = []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s:s + batch_size]
        tokens, am = gpt.pad_left(chunk, enc.eot_token, dev)
        lp = gpt.sequence_logprobs(model, tokens, am)
        for row, k in zip(lp, spans[s:s + batch_size], strict=True):
            scores.append(row[-k:].sum().item())
    hits, i = 0, 0
    for it in items:
        k = len(it["choices"])
        best = max(range(k), key=lambda j: scores[i + j])
        hits += it["choices"][best] == it["answer"]
        i += k
    return hits / len(items)


def measure(model, enc, val_text: str, cloze: list[dict], n_windows: int,
            batch_size: int = 64) -> dict:
    """Both measures of one model; None for one whose data the run directory lacks."""
    return {"heldout_loss": heldout_loss(model, enc, val_text, n_windows, batch_size)
            if val_text else None,
            "cloze_acc": cloze_accuracy(model, enc, cloze, batch_size) if cloze else None}
