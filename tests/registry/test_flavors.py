"""Model flavors: saving and loading model folders."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import orjson
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry.flavors import load_mlflow_model, load_model, save_model

from .conftest import train


def test_sklearn_flavor(tmp_path: Path) -> None:
    model, x = train(0)
    assert save_model(model, tmp_path / "m") == "sklearn"
    descriptor = orjson.loads((tmp_path / "m" / "shipyard-model.json").read_bytes())
    assert descriptor["flavor"] == "sklearn"
    assert descriptor["files"] == ["model.pkl", "MLmodel"]
    assert descriptor["python_version"] == platform.python_version()
    assert {"scikit-learn", "numpy"} <= set(descriptor["libraries"])
    assert descriptor["model_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert (load_model(tmp_path / "m").predict(x) == model.predict(x)).all()


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::PendingDeprecationWarning")
def test_mlflow_reads_a_saved_sklearn_model(tmp_path: Path) -> None:
    """The folder is also an MLflow model: both of mlflow's loaders read the pickle."""
    import mlflow.pyfunc
    import mlflow.sklearn

    model, x = train(0)
    save_model(model, tmp_path / "m")
    assert (mlflow.sklearn.load_model(str(tmp_path / "m")).predict(x) == model.predict(x)).all()
    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert (pyfunc.predict(x) == model.predict(x)).all()
    assert (load_mlflow_model(tmp_path / "m", "m").predict(x) == model.predict(x)).all()


def test_a_model_saved_with_joblib_still_loads(tmp_path: Path) -> None:
    import joblib

    model, x = train(0)
    save_model(model, tmp_path / "m")
    joblib.dump(model, tmp_path / "m" / "model.pkl")
    descriptor = tmp_path / "m" / "shipyard-model.json"
    descriptor.write_bytes(
        orjson.dumps(orjson.loads(descriptor.read_bytes()) | {"serializer": "joblib"})
    )
    assert (load_model(tmp_path / "m").predict(x) == model.predict(x)).all()


def test_python_flavor(tmp_path: Path) -> None:
    obj = {"threshold": 0.3, "labels": ["a", "b"]}
    assert save_model(obj, tmp_path / "m") == "python"
    assert orjson.loads((tmp_path / "m" / "shipyard-model.json").read_bytes())["serializer"] == (
        "pickle"
    )
    assert load_model(tmp_path / "m") == obj


def test_save_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        save_model({"a": 1}, tmp_path / "m")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]


def test_unpicklable_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be pickled"):
        save_model(lambda v: v, tmp_path / "m")
    assert not (tmp_path / "m" / "model.pkl").exists()
    assert not (tmp_path / "m" / "shipyard-model.json").exists()


@pytest.mark.parametrize(
    "descriptor",
    [b"{broken", b'{"flavor": "tensorflow", "serializer": "pickle"}', b"[1, 2]"],
)
def test_bad_descriptor_is_refused(tmp_path: Path, descriptor: bytes) -> None:
    save_model({"a": 1}, tmp_path / "m")
    (tmp_path / "m" / "shipyard-model.json").write_bytes(descriptor)
    with pytest.raises(InvalidInput):
        load_model(tmp_path / "m")


def test_folder_without_descriptor(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no shipyard-model.json"):
        load_model(tmp_path)


# mlflow warns about its own deprecations and type hints when imported.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::PendingDeprecationWarning")
def test_an_mlflow_folder_that_cannot_load_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  onnx: {}\n")
    with pytest.raises(InvalidInput, match="have no python_function"):
        load_mlflow_model(tmp_path, "m version 1")
    (tmp_path / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(InvalidInput, match="MLmodel cannot be read"):
        load_mlflow_model(tmp_path, "m version 1")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(InvalidInput, match=r"needs mlflow \(pip install 'shipyard\[mlflow\]'\)"):
        load_mlflow_model(tmp_path, "m version 1")
