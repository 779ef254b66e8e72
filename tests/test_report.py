"""report.py: the targets read from the results, and the tables and figures drawn from them."""

import json

import pytest

import evaluate
import report


def test_targets_read_the_results():
    def model(win, loss, cloze=0.9):
        return {"win_rate_vs_sft": {"rate": win}, "heldout_loss": loss, "cloze_acc": cloze}
    res = {"models": {"base": model(0.3, 1.0), "base_few_shot": model(0.2, 1.0),
                      "sft": model(0.5, 1.2), "ppo": model(0.8, 2.0),
                      "ppo_ptx": model(0.77, 1.1)},
           "reward_model": {"acc": 0.70, "agreement": 0.72},
           "overoptimisation": {"long": {"iterations": 80, "gold_start": 0.1, "gold_peak": 0.5,
                                         "gold_end": 0.2, "score_start": 0.0, "score_end": 1.0,
                                         "peak_iteration": 30, "kl_end": 9.0}}}
    t = report.targets(res)
    assert t["ppo_win_rate_vs_sft"]["met"] and t["sft_win_rate_vs_few_shot_base"]["met"]
    assert t["sft_win_rate_vs_few_shot_base"]["measured"] == pytest.approx(0.8)
    assert t["rm_accuracy_vs_agreement"]["met"]
    assert t["ppo_alignment_tax"]["met"]  # the loss tax only: cloze did not move
    assert t["ppo_alignment_tax"]["measured"]["loss_tax"] == pytest.approx(1.0)
    assert t["ppo_ptx_tax_recovered"]["measured"] == {"loss_recovered": pytest.approx(0.9)}
    assert t["ppo_ptx_tax_recovered"]["met"]
    assert t["ppo_ptx_win_rate_minus_ppo"]["met"] and t["gold_rises_then_falls"]["met"]
    res["models"]["ppo"]["win_rate_vs_sft"]["rate"] = 0.6
    res["reward_model"]["acc"] = 0.6
    res["models"]["ppo"]["cloze_acc"] = 0.8  # a cloze tax of 10 points, half paid back
    res["models"]["ppo_ptx"]["cloze_acc"] = 0.85
    t = report.targets(res)
    assert t["ppo_ptx_tax_recovered"]["measured"]["cloze_recovered"] == pytest.approx(0.5)
    assert not t["ppo_ptx_tax_recovered"]["met"]
    assert not t["ppo_win_rate_vs_sft"]["met"] and not t["rm_accuracy_vs_agreement"]["met"]
    assert t["ppo_ptx_win_rate_minus_ppo"]["met"]  # 0.77 - 0.6 >= -0.05



def test_targets_of_the_reward_model_and_figure_4():
    res = {"models": {"sft": {"win_rate_vs_sft": {"rate": 0.5},
                              "metadata": {"hallucination": 0.3, "declines_harmful": 0.2}},
                      "ppo_ptx": {"win_rate_vs_sft": {"rate": 0.72},
                                  "metadata": {"hallucination": 0.2, "declines_harmful": 0.4}}},
           "reference": {"sft_best_of_n_rm": {"win_rate_vs_sft": {"rate": 0.69}}},
           "reward_model": {"by_fault": {"faults": {"hallucinates": {"acc": 0.71},
                                                    "harmful or rude": {"acc": 0.74}}}},
           "overoptimisation": {}}
    t = report.targets(res)
    assert t["ppo_ptx_win_rate_vs_sft"]["met"] and not t["rm_best_of_n_win_rate_vs_sft"]["met"]
    assert t["rm_orders_hallucinates_pairs"]["met"] and not t["rm_orders_harmful_pairs"]["met"]
    assert t["ppo_ptx_metadata_vs_sft"]["met"]
    assert t["ppo_ptx_metadata_vs_sft"]["measured"] == {
        "hallucination": pytest.approx(-0.1), "declines_harmful": pytest.approx(0.2)}
    res["models"]["ppo_ptx"]["metadata"]["hallucination"] = 0.35  # more than SFT: not met
    assert not report.targets(res)["ppo_ptx_metadata_vs_sft"]["met"]


def _results():
    """A results dict shaped as evaluate.evaluate returns it, with hand-set figures."""
    def model(rate, gold, loss, cloze, follows):
        return {"gold": gold, "words": 10.0, "ended": 1.0, "rm_score": gold / 2,
                "heldout_loss": loss, "cloze_acc": cloze,
                "win_rate_vs_sft": {"rate": rate, "lo": rate - 0.05, "hi": rate + 0.05,
                                    "n": 4, "ties": 1},
                "metadata": {"follows_instruction": follows, "hallucination": 0.25,
                             "declines_harmful": None, "rude": 0.0, "appropriate": 1.0}}
    models = {"base": model(0.3, -0.2, 1.0, 0.9, 0.25), "sft": model(0.5, 0.1, 1.2, 0.9, 0.5),
              "ppo": model(0.6, 0.3, 1.5, 0.8, 0.75), "ppo_ptx": model(0.62, 0.3, 1.1, 0.9, 0.75)}
    log = [{"iteration": i + 1, "rlhf/score": 0.1 * i, "rlhf/gold": g, "rlhf/kl": 0.5 * i}
           for i, g in enumerate([0.1, 0.3, 0.2, 0.0])]
    res = {"preset": "tiny", "n_prompts": 4, "temperature": 1.0, "judges": ["a", "b"],
           "models": models,
           "reference": {k: {"label": label, "gold": 1.0, "rm_score": 0.4,
                             "win_rate_vs_sft": models["ppo"]["win_rate_vs_sft"]}
                         for k, label in (("sft_greedy", "SFT answering greedily"),
                                          ("best", "the world's own answers"))},
           "reward_model": {"acc": 0.6, "agreement": 0.7, "val_pairs": 10,
                            "eval_answers_gold_corr": 0.5, "eval_answers_order_acc": 0.75,
                            "by_fault": {"samples": 8, "gap": 0.25, "faults": {
                                "hallucinates": {"acc": 0.5, "pairs": 6},
                                "ill-formed": {"acc": 0.9, "pairs": 10}}}},
           "overoptimisation": {"ppo": {"iterations": 4, "window": 1, "gold_start": 0.1,
                                        "gold_peak": 0.3, "peak_iteration": 2, "gold_end": 0.0,
                                        "score_start": 0.0, "score_end": 0.3, "kl_end": 1.5}},
           "sweeps": {"beta": {}, "ptx": {}},
           "ptx_tradeoff": [{"model": "ppo", "gamma": 0.0, "heldout_loss": 1.5, "cloze_acc": 0.8,
                             "gold": 0.3, "win_rate": 0.6},
                            {"model": "ppo_ptx", "gamma": 1.0, "heldout_loss": 1.1,
                             "cloze_acc": 0.9, "gold": 0.3, "win_rate": 0.62}],
           "samples": [{"prompt": "What does a fox eat?", "category": "open_qa",
                        "sft": {"response": "A fox eats berries.", "gold": 1.0},
                        "ppo": {"response": "A fox.", "gold": 0.0}}],
           "stages": {"sft": 2.0, "evaluate": 1.5},
           "stage_share": {"sft": 0.571, "evaluate": 0.429},
           "machine": {"cpu": "a CPU", "threads": 2, "torch": "2.x", "bf16": False, "avx512": []}}
    res["targets"] = report.targets(res)
    per_answer = {k: {"gold_all": [m["gold"]] * 4, "rm_all": [m["rm_score"]] * 4}
                  for k, m in models.items()}
    return json.loads(json.dumps(res)), {"ppo": log}, per_answer  # as results.json holds it


def test_markdown_tables_hold_the_figures():
    res, _, _ = _results()
    md = report.markdown(res)
    assert "| PPO | 60.0% (55.0% to 65.0%) | +0.300 | +0.150 | 1.500 | 80.0% | 10.0 | 100% |" in md
    assert "| SFT | 50% (the reference) |" in md
    assert "- SFT answering greedily: win rate 60.0% (55.0% to 65.0%), gold +1.000, RM score " \
        "+0.400\n- the world's own answers: win rate" in md
    table = md.split("## Models\n\n")[1].split("\n\n")[0].splitlines()[2:]  # the rows
    assert [row.split(" | ")[0] for row in table] == [
        "| base (zero-shot)", "| SFT", "| PPO", "| PPO-ptx"]  # MODELS' order
    res["reward_model"]["by_fault"] = {"samples": 8, "gap": 0.25, "faults": {}}  # no RM pairs
    assert "What the RM can tell apart" not in report.markdown(res)
    assert "held-out accuracy 60.0% vs labeler-labeler agreement 70.0% on the same 10 pairs" in md
    assert "among its 8 SFT samples of the best-of-n rows above, whose gold scores differ by " \
        "more than 0.25" in md
    assert "| hallucinates | 6 | 50.0% |\n| ill-formed | 10 | 90.0% |" in md
    assert "| ppo | 4 | +0.100 / +0.300 (2) / +0.000 | +0.000 / +0.300 | 1.50 |" in md
    assert "| 1 | ppo_ptx | 62.0% | +0.300 | 1.100 | 90.0% |" in md
    assert "a CPU, 2 threads, torch 2.x, fp32 matmuls; AVX-512: none" in md
    assert "| sft | 2.0 | 57% |\n| evaluate | 1.5 | 43% |\n| total | 3.5 | |" in md
    assert "| rm_accuracy_vs_agreement | within 0.03 | -0.100 | **no** |" in md
    assert "| PPO | 75% | 25% | n/a | 0% | 100% |" in md  # declines_harmful: no harmful prompt
    assert "| total | 3.5 |" in md
    assert "- PPO (+0.00): 'A fox.'" in md and "base (zero-shot) (" not in md.split("Side")[-1]


def test_plots_writes_every_figure(tmp_path):
    res, logs, per_answer = _results()
    report.plots(res, tmp_path, logs, per_answer)
    names = {"win_rates", "reward_vs_gold", "alignment_tax", "overoptimisation", "kl_frontier",
             "metadata"}
    assert {p.stem for p in (tmp_path / "plots").iterdir()} == names
    for n in names:
        assert (tmp_path / "plots" / f"{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_name_every_model_in_order():
    assert tuple(report.LABELS) == evaluate.MODELS  # report presents what evaluate measures
    assert report.fmt(None) == "n/a" and report.fmt(0.5, ".0%") == "50%"
