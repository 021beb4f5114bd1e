"""The main job (`make demo`) is a real program: run it on a fresh home and check
what it leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shipyard.client import Client
from shipyard.config import Settings

DEMO = Path(__file__).parents[2] / "examples" / "demo.py"


def test_demo_trains_registers_and_aliases(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_URL": ""}
    env.pop("SHIPYARD_URL")
    env["SHIPYARD_SYSTEM_METRICS_INTERVAL"] = "0"
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "champion" in done.stdout

    client = Client(settings=Settings(home=tmp_path / "home"))
    experiment = client.experiments.get_by_name("demo-classification")
    runs = client.runs.search(experiments=[experiment.id], max_results=100).runs
    assert len(runs) == 4
    assert all(r.status == "finished" for r in runs)
    assert all("accuracy" in r.metrics and "model" in r.params for r in runs)
    curve = client.runs.metric_history(runs[0].id, "val_accuracy")
    assert len(curve.steps) >= 10
    best = max(runs, key=lambda r: r.metrics["accuracy"] or 0.0)
    champion = client.models.get_version("demo-classifier", "champion")
    assert champion.run_id == best.id
    # Every run records the dataset version it trained on, and the version knows its readers.
    lineage = client.datasets.lineage("demo-training-data", "latest")
    assert {r.run_id for r in lineage.runs} == {r.id for r in runs}
    client.close()
