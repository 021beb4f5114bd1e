"""The main job of `make demo`: generate a tabular dataset and version it
(validated and profiled), train several scikit-learn models with the Shipyard
SDK (params, metric curves, artifacts, the model itself, the dataset version
each run read), register the best one, point the `champion` alias at it and
print a summary. `make demo` then serves the web UI over the results.

Runs on embedded defaults (everything under SHIPYARD_HOME, default ./.shipyard),
or against a server when SHIPYARD_URL is set.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import shipyard

EXPERIMENT = "demo-classification"
MODEL_NAME = "demo-classifier"
DATASET = "demo-training-data"
console = Console()

Curve = Iterator[tuple[int, Any]]


def make_data(seed: int = 7) -> tuple[np.ndarray, ...]:
    """A small, slightly noisy binary classification problem."""
    x, y = make_classification(
        n_samples=4000,
        n_features=20,
        n_informative=8,
        n_redundant=4,
        flip_y=0.03,
        random_state=seed,
    )
    return tuple(train_test_split(x, y, test_size=0.25, random_state=seed))


def boosting_curve(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Curve:
    # Fitted once; train_one walks its stages (staged_predict_proba) for the curve.
    yield 0, GradientBoostingClassifier(random_state=0, **params).fit(x, y)


def forest_curve(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Curve:
    model = RandomForestClassifier(n_estimators=0, warm_start=True, random_state=0, **params)
    for step in range(1, 11):
        model.n_estimators = step * 10
        model.fit(x, y)
        yield step, model


def sgd_curve(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Curve:
    model = SGDClassifier(loss="log_loss", random_state=0, **params)
    for step in range(30):
        model.partial_fit(x, y, classes=np.array([0, 1]))
        yield step, model


def mlp_curve(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Curve:
    model = MLPClassifier(random_state=0, **params)
    for step in range(40):
        model.partial_fit(x, y, classes=np.array([0, 1]))
        yield step, model


CANDIDATES: list[tuple[str, Callable[..., Curve], dict[str, Any]]] = [
    ("sgd-logistic", sgd_curve, {"alpha": 1e-4}),
    ("random-forest", forest_curve, {"max_depth": 8}),
    ("gradient-boosting", boosting_curve, {"n_estimators": 60, "learning_rate": 0.1}),
    ("mlp", mlp_curve, {"hidden_layer_sizes": (32, 16), "learning_rate_init": 1e-3}),
]


def version_data(data: tuple[np.ndarray, ...]) -> int:
    """Store the training split as a dataset version that must pass a few expectations."""
    import pandas as pd

    x_train, _, y_train, _ = data
    frame = pd.DataFrame(x_train, columns=[f"f{i:02d}" for i in range(x_train.shape[1])])
    frame["label"] = y_train
    client = shipyard.get_client()
    try:
        client.datasets.create(
            DATASET,
            description="Training split of the demo's classification problem",
            expectations=[
                {"kind": "not_null", "column": "label"},
                {"kind": "allowed_values", "column": "label", "values": [0, 1]},
                {"kind": "row_count", "min": 1000},
                {"kind": "class_balance", "column": "label", "min_fraction": 0.3},
            ],
            policy="reject",
        )
    except shipyard.Conflict:
        pass  # made by an earlier demo run: add a version (or reuse identical content)
    return client.datasets.ingest(DATASET, frame, message="demo training split").version


def train_one(
    name: str,
    curve: Callable[..., Curve],
    params: dict[str, Any],
    data: tuple[np.ndarray, ...],
    data_version: int,
) -> tuple[str, float]:
    """Train one candidate inside a tracked run; return (run id, validation accuracy)."""
    x_train, x_val, y_train, y_val = data
    with shipyard.start_run(run_name=name, params={"model": name, **params}) as run:
        shipyard.log_input(DATASET, data_version, context="training")
        model: Any = None
        if name == "gradient-boosting":
            model = next(curve(params, x_train, y_train))[1]
            for step, proba in enumerate(model.staged_predict_proba(x_val)):
                shipyard.log_metric("val_accuracy", accuracy_score(y_val, proba.argmax(1)), step)
                shipyard.log_metric("val_log_loss", log_loss(y_val, proba), step)
        else:
            for step, model in curve(params, x_train, y_train):
                proba = model.predict_proba(x_val)
                shipyard.log_metric("val_accuracy", accuracy_score(y_val, proba.argmax(1)), step)
                shipyard.log_metric("val_log_loss", log_loss(y_val, proba), step)
        accuracy = float(accuracy_score(y_val, model.predict(x_val)))
        shipyard.log_metrics(
            {
                "accuracy": accuracy,
                "train_accuracy": float(accuracy_score(y_train, model.predict(x_train))),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "confusion_matrix.json"
            matrix = confusion_matrix(y_val, model.predict(x_val)).tolist()
            report.write_text(json.dumps({"labels": [0, 1], "matrix": matrix}))
            shipyard.log_artifact(report, artifact_path="evaluation")
        shipyard.log_model(model, artifact_path="model")
        shipyard.set_tag("family", name.split("-")[0])
        return run.id, accuracy


def main() -> None:
    data = make_data()
    shipyard.set_experiment(EXPERIMENT)
    data_version = version_data(data)
    results: list[tuple[str, str, float]] = []
    with Progress(console=console) as progress:
        task = progress.add_task("training candidates", total=len(CANDIDATES))
        for name, curve, params in CANDIDATES:
            run_id, accuracy = train_one(name, curve, params, data, data_version)
            results.append((name, run_id, accuracy))
            progress.advance(task)

    best_name, best_run, best_acc = max(results, key=lambda r: r[2])
    client = shipyard.get_client()
    try:
        client.models.create(MODEL_NAME, description="Best model of the demo experiment")
    except shipyard.Conflict:
        pass  # registered by an earlier demo run: add a new version
    version = client.models.create_version(MODEL_NAME, run_id=best_run, source_path="model")
    client.models.set_alias(MODEL_NAME, "champion", version.version)
    reloaded = client.models.load(f"{MODEL_NAME}@champion")
    check = float(accuracy_score(data[3], reloaded.predict(data[1])))

    table = Table(title=f"Experiment '{EXPERIMENT}'")
    for col in ("model", "run", "val accuracy", ""):
        table.add_column(col)
    for name, run_id, acc in sorted(results, key=lambda r: -r[2]):
        table.add_row(name, run_id[:12], f"{acc:.4f}", "champion" if run_id == best_run else "")
    console.print(table)
    console.print(
        f"Registered [bold]{MODEL_NAME}[/bold] version {version.version} ({best_name}) as "
        f"@champion; reloaded from the registry (hash-verified), accuracy {check:.4f}."
    )
    assert abs(check - best_acc) < 1e-12


if __name__ == "__main__":
    main()
