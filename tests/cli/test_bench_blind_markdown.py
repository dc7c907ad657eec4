"""bench.blind_markdown: README's blind table made from a blind bench report (here written by
hand), so the table is the bench's output and not retyped."""
import json
import subprocess
import sys
from pathlib import Path

from bench import blind_markdown

ROOT = Path(__file__).resolve().parents[2]


def _case(scene, setting, seed, default, glp, hysure):
    m = {"default": {"PSNR": default, "SAM": 2.0, "psf_error": 0.1, "transfer_error": 0.02},
         "glp": {"PSNR": glp, "SAM": 9.0}, "hysure": {"PSNR": hysure, "SAM": 3.0},
         "bicubic": {"PSNR": 20.0, "SAM": 7.0}, "true-psf": {"PSNR": default + 0.5, "SAM": 2.0}}
    return {"scene": scene, "setting": setting, "seed": seed, "methods": m}


def test_rows_bold_the_best_fusion_pair_the_seeds_and_count_the_check(tmp_path):
    cases = [_case("usgs-a", "aniso-r4c4", 1, 37.0, 27.0, 36.0), _case("usgs-a", "aniso-r4c4", 2, 38.0, 27.0, 36.5),
             # HySure ahead on one seed by more than the default leads on the other: short on the mean
             _case("urban-m", "moffat-r8c1", 1, 25.0, 24.0, 25.5), _case("urban-m", "moffat-r8c1", 2, 25.2, 24.0, 25.0)]
    report = {"grid": {"seeds": [1, 2]}, "cases": cases}
    lines, met, total = blind_markdown.rows(report)
    assert (met, total) == (1, 2)
    usgs = next(line for line in lines if line.startswith("| USGS mixture |"))
    assert usgs == ("| USGS mixture | aniso-r4c4 | **37.50** / 2.00 | 27.00 / 9.00 | 36.25 / 3.00 | 20.00 / 7.00 "
                    "| 38.00 | +1.25 | 0.10 / 0.020 |")
    urban = next(line for line in lines if line.startswith("| Urban mirrored (real) |"))
    assert "| **25.25** / 3.00 |" in urban and "| -0.15 |" in urban
    path = tmp_path / "blind.json"
    path.write_text(json.dumps(report))
    out = subprocess.run([sys.executable, "-m", "bench.blind_markdown", str(path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "at least both blind classical methods in 1 of 2 settings" in out.stdout


def test_a_rerun_replaces_its_cases_methods_and_leaves_the_rest():
    report = {"grid": {"seeds": [1, 2]}, "cases": [_case("usgs-a", "aniso-r4c4", 1, 37.0, 27.0, 36.0),
                                                   _case("usgs-a", "aniso-r4c4", 2, 38.0, 27.0, 36.5)]}
    again = {"cases": [{"scene": "usgs-a", "setting": "aniso-r4c4", "seed": 2,
                        "methods": {"default": {"PSNR": 39.0, "SAM": 2.0}}}]}
    cases = blind_markdown.merged(report, [again])["cases"]
    assert [c["methods"]["default"]["PSNR"] for c in cases] == [37.0, 39.0]
    assert cases[1]["methods"]["glp"]["PSNR"] == 27.0          # the methods not rerun stay
