"""bench.paired (a candidate default against today's, case by case) and bench.selection_replay's
table: the verdicts a default is chosen by, on reports written by hand."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import paired, selection_replay

ROOT = Path(__file__).resolve().parents[2]


def _report(psnr_by_case, overrides=None):
    cases = []
    for (scene, ratio, bands, psf, seed), psnr in psnr_by_case.items():
        cases.append({"scene": scene, "psf": psf, "ratio": ratio, "bands": bands, "seed": seed,
                      "methods": {"default": {"PSNR": psnr, "SAM": 2.0}, "bicubic": {"PSNR": 20.0, "SAM": 5.0}}})
    return {"kind": "quality", "cases": cases, "default_overrides": overrides or []}


def test_a_setting_below_today_by_more_than_the_margin_fails_the_verdict(tmp_path):
    today = {("usgs-a", 4, 4, "gaussian", s): 40.0 for s in (1, 2)}
    today.update({("urban", 8, 1, "gaussian", s): 30.0 for s in (1, 2)})
    cand = {("usgs-a", 4, 4, "gaussian", 1): 41.0, ("usgs-a", 4, 4, "gaussian", 2): 40.6,
            ("urban", 8, 1, "gaussian", 1): 29.9, ("urban", 8, 1, "gaussian", 2): 29.8}   # mean -0.15
    rows, worst, below, n = paired.compare(_report(today), _report(cand))
    assert n == 4 and worst == pytest.approx(-0.15)
    assert below == [("urban", "r8 c1")]
    by_setting = {r[1]: r for r in rows}
    assert by_setting["r4 c4"][5] == "+0.800" and by_setting["r4 c4"][6] == "+0.60 / +1.00"
    # the command line, on files, says the verdict in words
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report(today)))
    b.write_text(json.dumps(_report(cand, [["endmember_method", "minvol"]])))
    out = subprocess.run([sys.executable, "-m", "bench.paired", str(a), str(b)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "NOT MET in 1: urban r8 c1" in out.stdout


def test_only_cases_run_in_both_are_paired():
    today = {("usgs-a", 4, 4, "gaussian", s): 40.0 for s in (1, 2, 3)}
    cand = {("usgs-a", 4, 4, "gaussian", 3): 39.0, ("usgs-b", 4, 4, "gaussian", 1): 50.0}
    rows, worst, below, n = paired.compare(_report(today), _report(cand))
    assert n == 1 and worst == pytest.approx(-1.0) and len(rows) == 1


def test_the_replay_table_looks_up_the_truth_of_each_variants_pick():
    key = {"scene": "usgs-a", "psf": "gaussian", "ratio": 4, "bands": 4, "seed": 1}
    saved = {"cases": [{**key, "selection_check": {"configured": 46.0, "endmembers minvol": 48.0, "K 9": 47.0},
                        "methods": {"default": {"selection": {"chosen": "endmembers minvol"}}}}]}
    cases = [{**key, "variants": {"today": {"chosen": "endmembers minvol", "seconds": 10.0},
                                  "epochs=0.1": {"chosen": "K 9", "seconds": 6.0}}}]
    text = selection_replay.render(saved, cases, ["today", "epochs=0.1"])
    today_row, cheap_row = [line.split() for line in text.splitlines()[2:4]]
    assert today_row[1:] == ["10.0", "1/1", "48.000", "0.000", "+0.00", "/", "+0.00"]
    assert cheap_row[1:] == ["6.0", "0/1", "47.000", "1.000", "-1.00", "/", "-1.00"]
    with pytest.raises(SystemExit, match="unknown variant key"):
        selection_replay.parse_variant("crop=16")


def test_fresh_replays_compare_each_variant_with_the_first_and_drop_candidates_by_kind():
    cases = [{"variants": {"today": {"chosen": "K 9", "seconds": 90.0, "reduced_psnr": {"configured": 40.0, "K 9": 40.5}},
                           "drop=k+": {"chosen": "configured", "seconds": 60.0, "reduced_psnr": {"configured": 40.0}}}}]
    text = selection_replay.render_fresh(cases, ["today", "drop=k+"])
    today_row, lean_row = [line.split() for line in text.splitlines()[2:4]]
    assert today_row[1:5] == ["90.0", "1/1", "+0.00", "+0.00"]
    assert lean_row[1:5] == ["60.0", "0/1", "-0.50", "-0.50"]
    assert selection_replay.parse_variant("pixels=1024,drop=k-+endmembers") == {"pixels": 1024,
                                                                                 "drop": ["k-", "endmembers"]}
    with pytest.raises(SystemExit, match="unknown candidate kind"):
        selection_replay.parse_variant("drop=k-+everything")
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run import selection
    cfg = FusionConfig(num_endmembers=7, endmember_method="nmf")
    lean = selection_replay._without(selection.candidate_changes, ["k+", "endmembers"])
    assert [label for label, _ in lean(cfg, 3, 50, 4)] == ["configured", "prior on"]


def _tv_case(scene, errors, chosen, skipped=None):
    record = {"configured": 10.0, "chosen": chosen, "errors": errors, "skipped": skipped}
    return {"scene": scene, "setting": "aniso-r4c4", "seed": 1,
            "methods": {"default": {"PSNR": 30.0, "SAM": 2.0, "tv_selection": record}}}


def test_the_walk_replayed_on_recorded_errors_chooses_as_trying_every_weight_did(tmp_path):
    """bench.tv_walk: on a unimodal record the walk chooses the same weight with fewer refinements;
    on a record with two dips it can stop at the nearer one, and the table says so; skipped
    records and records of fewer weights are left out."""
    from bench import tv_walk
    unimodal = {"1": 5.0, "2.5": 4.0, "5": 4.5, "10": 4.8, "20": 5.5}
    two_dips = {"1": 1.0, "2.5": 4.0, "5": 3.0, "10": 3.5, "20": 3.6}     # the walk stops at 5
    report = {"cases": [_tv_case("urban", unimodal, 2.5), _tv_case("usgs-a", two_dips, 1.0),
                        _tv_case("usgs-b", {}, 10.0, skipped="one MSI band"),
                        _tv_case("holdout", {"5": 1.0, "10": 2.0, "20": 3.0}, 5.0)]}
    rows = tv_walk.rows(report)
    assert [r[:6] for r in rows] == [["urban", "aniso-r4c4", 1, "2.5", "2.5", "4 of 5"],
                                     ["usgs-a", "aniso-r4c4", 1, "1", "5", "3 of 5"]]
    path = tmp_path / "choice.json"
    path.write_text(json.dumps(report))
    out = subprocess.run([sys.executable, "-m", "bench.tv_walk", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 cases: the walk chooses the same weight in 1" in out.stdout
