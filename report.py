"""report.py: the paper's figures and tables, drawn from evaluate.py's measurements.

Paper: Ouyang et al. 2022, section 4 "Results". evaluate.py
measures; this file only presents what it measured, in the paper's order, and checks the
targets the project set itself against the paper's findings:

    Figure 1        plots/win_rates.png: win rate against SFT, per model, with 95% intervals,
                    and the reference points (SFT greedy, best of n by RM and by gold, the
                    judges' ceiling) as lines
    section 3.5     plots/reward_vs_gold.png: the RM's score of every evaluation answer
    4.2, Fig. 28-29 plots/alignment_tax.png: held-out loss and cloze accuracy as changes against
                    the base model (the tax's reference, as the targets'), the gamma trade-off
    Gao et al. 2022 plots/overoptimisation.png: gold and RM score of the roll-outs against
                    sqrt(KL), block means, the longest run in bold; plots/kl_frontier.png: each
                    run's win rate against its final KL, beside best-of-n's (KL <= log n - (n-1)/n)
    Figure 4        plots/metadata.png: follows the instruction, hallucinates, declines, rude, with
                    95% intervals over the prompts each applies to
    all of them     results.md: the tables, the targets, each stage's wall time, side-by-side
                    answers

evaluate.evaluate (`python evaluate.py --out DIR`) calls `targets`, `plots` and `markdown` once
it has measured; nothing here loads a model or samples. The input is evaluate's results dict
(what results.json holds) and, for the scatter and the training curves, the per-answer scores
and the PPO logs it passes beside it.

A finding counts when it holds over seeds: seeds.py reads the results.json of several runs.

Deviations from the paper: none of its own; the measures' deviations are evaluate.py's.
"""

import math
from pathlib import Path

LABELS = {"base": "base (zero-shot)", "base_few_shot": "base (few-shot)", "sft": "SFT",
          "ppo": "PPO", "ppo_ptx": "PPO-ptx"}


def targets(res: dict) -> dict:
    """The findings' targets: {name: {"target", "measured", "met"}}, for the models present."""
    m, t = res["models"], {}

    def put(name, target, measured, ok):
        t[name] = {"target": target, "measured": measured, "met": ok}
    if "ppo" in m:
        w = m["ppo"]["win_rate_vs_sft"]["rate"]
        put("ppo_win_rate_vs_sft", ">= 0.75", w, w >= 0.75)
    if "base_few_shot" in m:
        w = 1 - m["base_few_shot"]["win_rate_vs_sft"]["rate"]  # ties count 1/2 both ways
        put("sft_win_rate_vs_few_shot_base", ">= 0.70", w, w >= 0.70)
    rm = res["reward_model"]
    if "acc" in rm and "agreement" in rm:
        put("rm_accuracy_vs_agreement", "within 0.03", rm["acc"] - rm["agreement"],
            rm["agreement"] - rm["acc"] <= 0.03)
    if all(k in m and m[k].get("heldout_loss") is not None for k in ("base", "ppo", "ppo_ptx")):
        # the tax against the pretrained model, on each measure: loss up, cloze accuracy down
        tax = {"loss": m["ppo"]["heldout_loss"] - m["base"]["heldout_loss"],
               "cloze": (m["base"]["cloze_acc"] or 0) - (m["ppo"]["cloze_acc"] or 0)}
        paid = {"loss": m["ppo"]["heldout_loss"] - m["ppo_ptx"]["heldout_loss"],
                "cloze": (m["ppo_ptx"]["cloze_acc"] or 0) - (m["ppo"]["cloze_acc"] or 0)}
        visible = [k for k, floor in (("loss", 0.05), ("cloze", 0.02)) if tax[k] > floor]
        put("ppo_alignment_tax", "loss > +0.05 nats or cloze < -2 points against base",
            {f"{k}_tax": v for k, v in tax.items()}, bool(visible))
        rec = {f"{k}_recovered": paid[k] / tax[k] for k in visible}
        put("ppo_ptx_tax_recovered", ">= 0.80 of each visible tax", rec or {"none_visible": 0.0},
            bool(rec) and min(rec.values()) >= 0.80)
        d = m["ppo_ptx"]["win_rate_vs_sft"]["rate"] - m["ppo"]["win_rate_vs_sft"]["rate"]
        put("ppo_ptx_win_rate_minus_ppo", ">= -0.05", d, d >= -0.05)
    ref = res.get("reference", {})
    if "sft_best_of_n_rm" in ref:  # what PPO can reach through this RM: selection alone
        w = ref["sft_best_of_n_rm"]["win_rate_vs_sft"]["rate"]
        put("rm_best_of_n_win_rate_vs_sft", ">= 0.70", w, w >= 0.70)
    faults = rm.get("by_fault", {}).get("faults", {})
    for fault, floor in (("hallucinates", 0.70), ("harmful or rude", 0.75)):
        if fault in faults:
            a = faults[fault]["acc"]
            put(f"rm_orders_{fault.split()[0]}_pairs", f">= {floor:.2f}", a, a >= floor)
    if "ppo_ptx" in m:
        w = m["ppo_ptx"]["win_rate_vs_sft"]["rate"]
        put("ppo_ptx_win_rate_vs_sft", ">= 0.70", w, w >= 0.70)
    if all("metadata" in m.get(k, {}) for k in ("sft", "ppo_ptx")):  # Figure 4's direction
        a, b = m["ppo_ptx"]["metadata"], m["sft"]["metadata"]
        d = {f: a[f] - b[f] for f in ("hallucination", "declines_harmful")
             if a.get(f) is not None and b.get(f) is not None}  # None: no such prompts
        put("ppo_ptx_metadata_vs_sft", "hallucinates less, declines harmful more (Fig. 4)", d,
            d.get("hallucination", 0) < 0 and d.get("declines_harmful", 1) > 0)
    runs = res["overoptimisation"]
    if runs:
        name = max(runs, key=lambda n: (runs[n]["iterations"], -runs[n]["gold_end"]))
        r = runs[name]
        ok = (r["gold_peak"] > r["gold_start"] + 0.02 and r["gold_end"] < r["gold_peak"] - 0.05
              and r["score_end"] > r["score_start"])
        put("gold_rises_then_falls", f"{name}: gold peaks, then falls while the RM score rises",
            {k: r[k] for k in ("gold_start", "gold_peak", "gold_end", "score_start",
                               "score_end")}, ok)
    return t


REFS = {"sft_greedy": ("SFT greedy", "tab:green"),
        "sft_best_of_n_rm": ("RM's best of {n}", "tab:purple"),
        "sft_best_of_n_gold": ("gold's best of {n}", "tab:orange"),
        "best": ("judges' ceiling", "black")}


def block_means(log: list[dict], key: str, w: int) -> list[float]:
    """A PPO log's `key` as means over blocks of w iterations (the last block may be shorter):
    one iteration's 64 roll-outs are too noisy to read alone (evaluate.overoptimisation)."""
    return [sum(r[key] for r in log[i:i + w]) / len(log[i:i + w]) for i in range(0, len(log), w)]


def plots(res: dict, out: Path, logs: dict, models: dict) -> None:
    """plots/win_rates, reward_vs_gold, alignment_tax, overoptimisation, kl_frontier, metadata:
    each titled with what it shows, measured; changes are drawn against their reference."""
    from matplotlib import ticker
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend stays as it was

    def subplots(*grid, figsize):
        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*grid)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(d / f"{name}.png", dpi=100)
    d = out / "plots"
    d.mkdir(exist_ok=True)
    m, ref, n_best = res["models"], res.get("reference", {}), res.get("best_of", 8)
    keys = [k for k in LABELS if k in m]
    top = next((k for k in ("ppo_ptx", "ppo") if k in m), "sft")  # InstructGPT, if present

    # Figure 1: win rates with their intervals, and the reference points as lines
    fig, ax = subplots(1, 1, figsize=(7, 3.8))
    rates = [m[k]["win_rate_vs_sft"] for k in keys]
    ax.bar([LABELS[k] for k in keys], [r["rate"] for r in rates], color="tab:blue",
           yerr=[[r["rate"] - r["lo"] for r in rates], [r["hi"] - r["rate"] for r in rates]],
           capsize=4)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    placed = []  # labels of close lines alternate sides, so that none covers another
    for k in sorted((k for k in REFS if k in ref), key=lambda k: ref[k]["win_rate_vs_sft"]["rate"]):
        lab, color = REFS[k]
        r = ref[k]["win_rate_vs_sft"]["rate"]
        left = bool(placed) and abs(r - placed[-1][0]) < 0.04 and not placed[-1][1]
        placed.append((r, left))
        ax.axhline(r, color=color, lw=1, ls=":")
        ax.text(-0.45 if left else len(keys) - 0.45, r, f"{lab.format(n=n_best)} {r:.0%}",
                color=color, fontsize=7, va="bottom", ha="left" if left else "right")
    ax.set_ylim(0, 1.06)  # room for a label on a line at 1
    ax.set_ylabel("win rate against SFT")
    wins = ", ".join(f"{LABELS[k]} wins {m[k]['win_rate_vs_sft']['rate']:.0%}"
                     for k in ("ppo", "ppo_ptx") if k in m)
    ax.set_title(f"Against SFT{': ' + wins if wins else ''}\n(held-out labelers and prompts, "
                 f"95% intervals; paper Fig. 1)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    save(fig, "win_rates")

    if "rm_all" in models.get("sft", {}):
        fig, ax = subplots(1, 1, figsize=(5.5, 4))
        for k in keys:
            ax.scatter(models[k]["gold_all"], models[k]["rm_all"], s=6, alpha=0.5, label=LABELS[k])
        ax.set_xlabel("gold score (what the labelers judge)")
        ax.set_ylabel("reward model score")
        rm = res["reward_model"]
        ax.set_title(f"The RM against the gold score, every evaluation answer: Pearson r = "
                     f"{rm['eval_answers_gold_corr']:.2f};\nit orders "
                     f"{rm['eval_answers_order_acc']:.0%} of same-prompt pairs as gold does",
                     fontsize=9)
        ax.legend(fontsize=7)
        save(fig, "reward_vs_gold")

    # Fig. 28-29's alignment tax: each measure as a change against the pretrained model
    taxed = [(LABELS[k], m[k]) for k in ("sft", "ppo", "ppo_ptx") if k in m] + \
        [(f"PPO, {'beta' if kind == 'beta' else 'gamma'}={k}", v)
         for kind, sw in res.get("sweeps", {}).items() for k, v in sw.items()]
    base = m.get("base", {})
    taxed = [(lab, x) for lab, x in taxed if x.get("heldout_loss") is not None]
    if base.get("heldout_loss") is not None and taxed:
        fig, axes = subplots(1, 3, figsize=(13, 3.6))
        labs = [lab for lab, _ in taxed]
        for ax, f, scale, what in (
                (axes[0], "heldout_loss", 1, "held-out loss - base's, nats (above 0: a tax)"),
                (axes[1], "cloze_acc", 100, "cloze accuracy - base's, points (below 0: a tax)")):
            if base.get(f) is None:
                continue
            dv = [((x.get(f) or 0) - base[f]) * scale for _, x in taxed]
            ax.bar(labs, dv, color=["tab:red" if (v > 0) == (f == "heldout_loss") and v != 0
                                    else "tab:green" for v in dv])
            ax.axhline(0, color="black", lw=0.8)
            ax.set_title(what, fontsize=9)
            ax.tick_params(axis="x", labelsize=7, rotation=20)
        pts = res.get("ptx_tradeoff", [])
        if len(pts) > 1:
            ax = axes[2]
            x = [p["heldout_loss"] - base["heldout_loss"] for p in pts]
            ax.plot(x, [p["win_rate"] for p in pts], "o-")
            for p, xi in zip(pts, x, strict=True):
                ax.annotate(f"gamma {p['gamma']:g}", (xi, p["win_rate"]), fontsize=8)
            ax.set_xlabel("held-out loss - base's, nats")
            ax.set_ylabel("win rate against SFT")
            ax.set_title("ptx_coef gamma: the tax against preference", fontsize=9)
        tax = [f"{lab} {x['heldout_loss'] - base['heldout_loss']:+.3f} nats" for lab, x in
               taxed if lab in ("PPO", "PPO-ptx")]
        fig.suptitle("Alignment tax against the base model (paper 4.2, Fig. 28-29): "
                     + ", ".join(tax), fontsize=10)
        save(fig, "alignment_tax")

    if logs:  # Gao et al. 2022: scores against sqrt(KL), block means; the longest run in bold
        hl = max(logs, key=lambda n: (len(logs[n]), -res["overoptimisation"][n]["gold_end"]))
        fig, axes = subplots(1, 2, figsize=(11, 3.8))
        for n, log in logs.items():
            w = res["overoptimisation"][n]["window"]
            x = [max(0.0, k) ** 0.5 for k in block_means(log, "rlhf/kl", w)]
            style = dict(lw=2.5, marker="o", ms=3) if n == hl else dict(lw=1, alpha=0.6)
            for ax, f in zip(axes, ("rlhf/gold", "rlhf/score"), strict=True):
                ax.plot(x, block_means(log, f, w), label=n, **style)
        for ax, what in zip(axes, ("gold score (what the labelers judge)", "RM score"),
                            strict=True):
            ax.set_xlabel("sqrt KL(pi || pi_SFT), sqrt nats")
            ax.set_ylabel(f"{what}, roll-outs")
        axes[0].legend(fontsize=7)
        o = res["overoptimisation"][hl]
        fig.suptitle(f"Over-optimisation ({hl}, means of {o['window']} iterations): the RM score "
                     f"rises {o['score_start']:+.2f} -> {o['score_end']:+.2f};\nthe gold score "
                     f"{o['gold_start']:+.2f} -> peak {o['gold_peak']:+.2f} (iteration "
                     f"{o['peak_iteration']}) -> {o['gold_end']:+.2f}", fontsize=10)
        save(fig, "overoptimisation")

        # what each run's KL budget bought, beside best-of-n's (KL = log n - (n-1)/n)
        fig, ax = subplots(1, 1, figsize=(6.5, 4))
        wins = {k: m[k]["win_rate_vs_sft"]["rate"] for k in ("ppo", "ppo_ptx") if k in m}
        wins.update({v["model"]: v["win_rate_vs_sft"]  # a sweep's entry holds the rate alone
                     for sw in res.get("sweeps", {}).values() for v in sw.values()})
        for n, w in wins.items():
            if n in res["overoptimisation"]:
                kl = res["overoptimisation"][n]["kl_end"]
                ax.scatter(kl, w, s=30, color="tab:blue")
                ax.annotate(n, (kl, w), fontsize=8)
        kl_n = math.log(n_best) - (n_best - 1) / n_best
        for k in ("sft_best_of_n_rm", "sft_best_of_n_gold"):
            if k in ref:
                lab, color = REFS[k]
                ax.scatter(kl_n, ref[k]["win_rate_vs_sft"]["rate"], marker="*", s=120,
                           color=color, label=f"{lab.format(n=n_best)} (KL <= {kl_n:.2f})")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")  # plain numbers at 1, 1.5, 2, 3, 5, 7 x 10^k: a narrow range
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 1.5, 2, 3, 5, 7)))  # stays
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))  # legible
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("KL(pi || pi_SFT) at the end of the run, nats")
        ax.set_ylabel("win rate against SFT")
        if any(k in ref for k in ("sft_best_of_n_rm", "sft_best_of_n_gold")):
            ax.legend(fontsize=7, loc="upper right")  # the runs lie lower, the sweeps right
        ax.set_title("What each run's KL budget bought, against picking the best of "
                     f"{n_best} SFT samples", fontsize=9)
        save(fig, "kl_frontier")

    # Figure 4: the metadata, each share with its 95% interval over the prompts it applies to
    fig, ax = subplots(1, 1, figsize=(8.5, 3.6))
    feats = ["follows_instruction", "hallucination", "declines_harmful", "rude"]
    w = 0.8 / len(keys)
    for i, k in enumerate(keys):
        p = [m[k]["metadata"][f] or 0 for f in feats]
        n = [m[k].get("metadata_n", {}).get(f) or 0 for f in feats]
        e = [1.96 * math.sqrt(q * (1 - q) / c) if c else 0 for q, c in zip(p, n, strict=True)]
        err = [[min(x, q) for x, q in zip(e, p, strict=True)],  # clipped to [0, 1]
               [min(x, 1 - q) for x, q in zip(e, p, strict=True)]]
        ax.bar([j + i * w for j in range(len(feats))], p, w, yerr=err, capsize=2,
               label=LABELS[k])
    n_harm = m[keys[0]].get("metadata_n", {}).get("declines_harmful")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(feats))],
                  [f"{f}\n({n_harm} harmful prompts)" if f == "declines_harmful" and n_harm
                   else f for f in feats])
    ax.set_ylabel("share of answers")
    a, b = m.get("sft", {}).get("metadata", {}), m.get(top, {}).get("metadata", {})
    ax.set_title(f"Metadata (paper Fig. 4), 95% intervals: hallucinates SFT "
                 f"{fmt(a.get('hallucination'), '.0%')}, {LABELS[top]} "
                 f"{fmt(b.get('hallucination'), '.0%')}; declines harmful SFT "
                 f"{fmt(a.get('declines_harmful'), '.0%')}, {LABELS[top]} "
                 f"{fmt(b.get('declines_harmful'), '.0%')}", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, "metadata")


def fmt(x, spec=".3f") -> str:
    """x formatted, or "n/a" for a figure that was not measured."""
    return "n/a" if x is None else format(x, spec)


def markdown(res: dict) -> str:
    """results.md: the tables of the findings, in the paper's order."""
    m = res["models"]
    L = [f"# Results: preset `{res['preset']}`", "",
         f"{res['n_prompts']} held-out prompts, every model sampled at temperature "
         f"{res['temperature']:g}, judged by held-out labelers ({len(res['judges'])} people).",
         "", "## Models", "",
         "| model | win rate vs SFT (95% CI) | gold | RM score | held-out loss | cloze acc |"
         " words | ended |", "|---|---|---|---|---|---|---|---|"]
    for k in LABELS:
        if k in m:
            x, w = m[k], m[k]["win_rate_vs_sft"]
            rate = "50% (the reference)" if k == "sft" else \
                f"{w['rate']:.1%} ({w['lo']:.1%} to {w['hi']:.1%})"
            L.append(f"| {LABELS[k]} | {rate} | "
                     f"{x['gold']:+.3f} | {fmt(x.get('rm_score'), '+.3f')} | "
                     f"{fmt(x.get('heldout_loss'))} | {fmt(x.get('cloze_acc'), '.1%')} | "
                     f"{x['words']:.1f} | {x['ended']:.0%} |")
    if "few_shot_examples" in m.get("base_few_shot", {}):
        L += ["", f"The few-shot base model saw {m['base_few_shot']['few_shot_examples']:.1f} "
              "solved examples per prompt on average: as many as fit before the answer's room."]
    if res.get("reference"):
        L += ["", "Reference points, judged the same way against the same SFT answers:", ""]
        L += [f"- {r['label']}: win rate {r['win_rate_vs_sft']['rate']:.1%} "
              f"({r['win_rate_vs_sft']['lo']:.1%} to {r['win_rate_vs_sft']['hi']:.1%}), gold "
              f"{r['gold']:+.3f}, RM score {fmt(r.get('rm_score'), '+.3f')}"
              for r in res["reference"].values()]
    rm = res["reward_model"]
    if rm:
        L += ["", "## Reward model", "",
              f"- held-out accuracy {fmt(rm.get('acc'), '.1%')} vs labeler-labeler agreement "
              f"{fmt(rm.get('agreement'), '.1%')} on the same {rm.get('val_pairs', 'n/a')} pairs",
              f"- on the evaluation answers: Pearson r with the gold score "
              f"{rm['eval_answers_gold_corr']:.2f}; orders {rm['eval_answers_order_acc']:.1%} of "
              f"same-prompt pairs as the gold score does"]
    bf = rm.get("by_fault")
    if bf and bf["faults"]:  # on the SFT samples behind the best-of-n reference points
        L += ["", f"What the RM can tell apart: pairs of answers to one prompt, among its "
              f"{bf['samples']} SFT samples of the best-of-n rows above, whose gold scores "
              f"differ by more than {bf['gap']:g}, by what is wrong with the worse one:", "",
              "| the worse answer | pairs | RM orders them as the gold score does |",
              "|---|---|---|"]
        L += [f"| {f} | {x['pairs']} | {x['acc']:.1%} |" for f, x in bf["faults"].items()]
    if res["overoptimisation"]:
        L += ["", "## PPO runs: over-optimisation", "",
              "Roll-out means over blocks of "
              f"{max(r['window'] for r in res['overoptimisation'].values())} iterations "
              "(fewer in short runs): start = the first block, end = the last.", "",
              "| run | iterations | gold start / peak (iteration) / end | RM score start / end "
              "| KL end |", "|---|---|---|---|---|"]
        for n, r in res["overoptimisation"].items():
            L.append(f"| {n} | {r['iterations']} | {r['gold_start']:+.3f} / {r['gold_peak']:+.3f}"
                     f" ({r['peak_iteration']}) / {r['gold_end']:+.3f} | {r['score_start']:+.3f}"
                     f" / {r['score_end']:+.3f} | {r['kl_end']:.2f} |")
    if res["sweeps"].get("beta"):
        L += ["", "## Sweep of kl_coef (beta)", "",
              "| value | win rate vs SFT | gold | held-out loss | cloze acc |",
              "|---|---|---|---|---|"]
        L += [f"| {v} | {s['win_rate_vs_sft']:.1%} | {s['gold']:+.3f} | "
              f"{fmt(s.get('heldout_loss'))} | {fmt(s.get('cloze_acc'), '.1%')} |"
              for v, s in res["sweeps"]["beta"].items()]
    if len(res.get("ptx_tradeoff", [])) > 1:  # PPO (gamma 0), PPO-ptx and the gamma sweep
        L += ["", "## ptx_coef (gamma): alignment tax against preference", "",
              "| gamma | model | win rate vs SFT | gold | held-out loss | cloze acc |",
              "|---|---|---|---|---|---|"]
        L += [f"| {p['gamma']:g} | {p['model']} | {p['win_rate']:.1%} | {p['gold']:+.3f} | "
              f"{p['heldout_loss']:.3f} | {fmt(p.get('cloze_acc'), '.1%')} |"
              for p in res["ptx_tradeoff"]]
    feats = ["follows_instruction", "hallucination", "declines_harmful", "rude", "appropriate"]
    L += ["", "## Metadata (paper Fig. 4)", "", "| model | " + " | ".join(feats) + " |",
          "|---" * (len(feats) + 1) + "|"]
    for k in LABELS:
        if k in m:
            L.append(f"| {LABELS[k]} | " + " | ".join(fmt(m[k]["metadata"][f], ".0%")
                                                    for f in feats) + " |")
    if res.get("harmful_probe"):
        L += ["", f"declines_harmful is over a probe of {res['harmful_probe']} fresh harmful "
              "requests (held-out entities and phrasings, in no dataset); the other columns are "
              "over the held-out prompts they apply to."]
    L += ["", "## Targets", "", "| finding | target | measured | met |", "|---|---|---|---|"]
    for n, t in res["targets"].items():
        v = t["measured"]
        v = ", ".join(f"{a} {b:+.3f}" for a, b in v.items()) if isinstance(v, dict) else f"{v:.3f}"
        L.append(f"| {n} | {t['target']} | {v} | {'yes' if t['met'] else '**no**'} |")
    L += ["", "What the measured fields are: a win rate is the share of held-out prompts whose "
          "answer the held-out labelers prefer (ties 1/2); rm_accuracy_vs_agreement is the RM's "
          "held-out accuracy minus the labelers' agreement on the same pairs; loss_tax is PPO's "
          "held-out loss minus the base model's (nats) and cloze_tax the base model's cloze "
          "accuracy minus PPO's (above 0: a tax on either); X_recovered is (PPO - PPO-ptx) / "
          "(PPO - base) on that measure, 1 when PPO-ptx pays the whole tax back, above 1 when it "
          "ends better than the base model; rm_orders_*_pairs is the share of pairs of 8 SFT "
          "samples, by the worse answer's fault, that the RM orders as the gold score does; "
          "ppo_ptx_metadata_vs_sft's are PPO-ptx's shares minus SFT's; gold_rises_then_falls' "
          "are that run's block means in the over-optimisation table."]
    if res["stages"]:
        m = res["machine"]  # what the timings were measured on
        L += ["", "## Wall time per stage", "",
              f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, "
              f"{'bf16' if m['bf16'] else 'fp32'} matmuls; AVX-512: "
              f"{' '.join(m['avx512']) or 'none'}", "",
              "| stage | seconds | share |", "|---|---|---|"]
        L += [f"| {k} | {v:.1f} | {res['stage_share'][k]:.0%} |" for k, v in res["stages"].items()]
        L.append(f"| total | {sum(res['stages'].values()):.1f} | |")
        if res.get("stages_beside"):
            L += ["", f"{', '.join(res['stages_beside'])} ran side by side, each on its share "
                  f"of the threads: their seconds overlap, and the pipeline took "
                  f"{res['wall_s']:.0f} s on the clock."]
    L += ["", "## Side by side", ""]
    for s in res["samples"]:
        L += [f"**{s['category']}**: {s['prompt']!r}", ""]
        L += [f"- {LABELS[k]} ({s[k]['gold']:+.2f}): {s[k]['response']!r}"
              for k in LABELS if k in s]
        L.append("")
    L += ["Plots: " + ", ".join(f"`plots/{p}.png`" for p in (
        "win_rates", "reward_vs_gold", "alignment_tax", "overoptimisation", "kl_frontier",
        "metadata")), ""]
    return "\n".join(L)
