"""seeds.py: a seed study's mean and range, and a target met only where every seed meets it."""

import json

import pytest
from test_report import _results

import report
import seeds


def test_seed_study_reports_mean_and_range_and_needs_every_seed(tmp_path):
    runs = []
    for i, (win, tax) in enumerate(((0.72, 0.1), (0.68, 0.2), (0.75, 0.3))):
        res = _results()[0]
        res["out"] = f"runs/tiny-seed{i}"
        res["models"]["ppo_ptx"]["win_rate_vs_sft"]["rate"] = win
        res["models"]["ppo"]["heldout_loss"] = res["models"]["base"]["heldout_loss"] + tax
        res["targets"] = report.targets(res)
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "results.json").write_text(json.dumps(res))
        runs.append(str(d))
    study = seeds.main([*runs, "--out", str(tmp_path / "study")])
    w = study["figures"]["PPO-ptx win rate vs SFT"]
    assert w == {"mean": pytest.approx(0.7166667), "min": 0.68, "max": 0.75, "n": 3}
    t = study["targets"]["ppo_ptx_win_rate_vs_sft"]
    assert t["met_on"] == 2 and not t["met"]  # 0.68 on one seed: not a finding
    tax = study["targets"]["ppo_alignment_tax"]
    assert tax["met"] and tax["measured"]["loss_tax"]["min"] == pytest.approx(0.1)
    md = (tmp_path / "study" / "seeds.md").read_text()
    assert "71.7% [68.0%, 75.0%]" in md and "| 2/3 | **no** |" in md
    assert json.loads((tmp_path / "study" / "seeds.json").read_text())["seeds"] == 3
    with pytest.raises(SystemExit, match="python pipeline.py --out"):
        seeds.main([str(tmp_path / "nothing")])
