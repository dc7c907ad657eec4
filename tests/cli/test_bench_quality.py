"""The synthetic quality bench (`python -m bench quality`): a tiny case run to its JSON, whose
"Reproduce" line must be a command that runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_reproduce_line_names_the_quality_subcommand(tmp_path, shared_data):
    report = tmp_path / "quality.json"
    args = ["quality", "--scenes", "usgs-a", "--size", "32", "--grid", "4x4", "--psfs", "gaussian", "--seeds", "1",
            "--epochs", "5", "--methods", "default", "--jobs", "1", "--quiet", "--json", str(report)]
    env = dict(os.environ, SPECTRAMORPH_THREADS="1", SPECTRAMORPH_DATA=str(shared_data))
    proc = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    command = json.loads(report.read_text())["command"]
    # `python -m bench --scenes ...` (the subcommand dropped) is refused by the bench's own parser
    assert command == "python -m bench " + " ".join(args)
    assert f"Reproduce: {command}" in proc.stdout
