"""Model flavors: how a model object becomes a folder of files and back.

A model folder holds ``shipyard-model.json`` (the descriptor: flavor, files,
Python and library versions) and the model file(s). Two flavors exist today:
``sklearn`` for scikit-learn estimators and ``python`` for any other picklable
object. Both are pickles, so :func:`load_model` runs code from the file: call it
only on a folder whose files were verified against the registry's hashes (the
SDK's ``client.models.load`` does that).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pickle
import platform
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from shipyard.errors import InvalidInput
from shipyard.registry.types import DESCRIPTOR

FORMAT_VERSION = 1
MODEL_FILE = "model.pkl"
MLFLOW_DESCRIPTOR = "MLmodel"
"""The descriptor of a model folder in MLflow's format."""
PICKLE_PROTOCOL = 5
FLAVORS = ("sklearn", "python")
_SKLEARN_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib")


def _is_sklearn(model: Any) -> bool:
    # Look in sys.modules instead of importing: a model of scikit-learn's
    # classes means it is already imported, and others should not pay for it.
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(model, base.BaseEstimator)


def _has_joblib() -> bool:
    return importlib.util.find_spec("joblib") is not None


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _libraries(model: Any, flavor: str) -> dict[str, str]:
    names: list[str] = list(_SKLEARN_LIBRARIES) if flavor == "sklearn" else []
    top = type(model).__module__.split(".")[0]
    if top not in ("builtins", "__main__") and top not in names:
        names.append(top)
    found = {name: _version_of(name) for name in names}
    return {name: v for name, v in found.items() if v is not None}


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(tmp, "wb") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(model: Any, path: Path) -> str:
    """Write ``model`` into the folder ``path`` (created; must be empty) and return its flavor.

    The model is pickled (protocol 5). A scikit-learn estimator also gets an
    ``MLmodel`` file naming the same pickle, so mlflow loads it too. (Models saved
    before with joblib still load.) InvalidInput when the folder is not empty or
    the object cannot be pickled.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInput(f"cannot save a model into {str(path)!r}: it exists and is not empty")
    path.mkdir(parents=True, exist_ok=True)
    flavor = "sklearn" if _is_sklearn(model) else "python"
    try:
        _write_atomic(path / MODEL_FILE, lambda out: pickle.dump(model, out, PICKLE_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the model cannot be pickled: {exc}") from None
    files = [MODEL_FILE]
    if flavor == "sklearn":
        _write_atomic(path / MLFLOW_DESCRIPTOR, lambda out: out.write(_mlflow_sklearn()))
        files.append(MLFLOW_DESCRIPTOR)
    descriptor = {
        "format_version": FORMAT_VERSION,
        "flavor": flavor,
        "serializer": "pickle",
        "files": files,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "python_version": platform.python_version(),
        "libraries": _libraries(model, flavor),
    }
    _write_atomic(
        path / DESCRIPTOR,
        lambda out: out.write(orjson.dumps(descriptor, option=orjson.OPT_INDENT_2)),
    )
    return flavor


def _mlflow_sklearn() -> bytes:
    """An MLmodel file for a scikit-learn model pickled as MODEL_FILE: mlflow reads the
    same file, so ``mlflow.pyfunc.load_model("models:/name@alias")`` and
    ``mlflow.sklearn.load_model`` load a version registered with Shipyard."""
    import sklearn

    def text(value: str) -> str:  # a JSON string is a YAML scalar
        return orjson.dumps(value).decode()

    lines = [
        "flavors:",
        "  python_function:",
        "    loader_module: mlflow.sklearn",
        f"    model_path: {MODEL_FILE}",
        "    predict_fn: predict",
        f"    python_version: {text(platform.python_version())}",
        "  sklearn:",
        f"    pickled_model: {MODEL_FILE}",
        "    serialization_format: pickle",
        f"    sklearn_version: {text(sklearn.__version__)}",
        "",
    ]
    return "\n".join(lines).encode()


def read_descriptor(path: Path) -> dict[str, Any]:
    """The descriptor of a model folder, checked; InvalidInput when missing or malformed."""
    file = Path(path) / DESCRIPTOR
    if not file.is_file():
        raise InvalidInput(f"{str(path)!r} is not a model folder: it has no {DESCRIPTOR}")
    try:
        data = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{DESCRIPTOR} in {str(path)!r} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("flavor") not in FLAVORS:
        flavor = data.get("flavor") if isinstance(data, dict) else None
        raise InvalidInput(f"unknown model flavor {flavor!r}: this version knows {list(FLAVORS)}")
    if data.get("serializer") not in ("joblib", "pickle"):
        raise InvalidInput(f"unknown model serializer {data.get('serializer')!r}")
    return data


def load_model(path: Path) -> Any:
    """Load the model saved in the folder ``path`` by :func:`save_model`.

    This unpickles: only call it on files verified against the registry.
    """
    path = Path(path)
    descriptor = read_descriptor(path)
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise InvalidInput(f"model folder {str(path)!r} has no {MODEL_FILE}")
    if descriptor["serializer"] == "joblib":
        if not _has_joblib():
            raise InvalidInput("this model was saved with joblib, which is not installed")
        import joblib

        return joblib.load(model_file)
    with open(model_file, "rb") as f:
        return pickle.load(f)  # callers verify the hash first


def load_mlflow_model(path: Path, what: str) -> Any:
    """Load the model folder ``path`` in MLflow's format with mlflow itself: a
    scikit-learn model as its estimator (as :func:`load_model` returns one), any other
    flavor as MLflow's pyfunc model. ``what`` names it in errors.

    Flavors unpickle too: only call it on files verified against the registry.
    """
    try:
        import mlflow.pyfunc
        from mlflow.models import Model
    except ImportError:
        raise InvalidInput(
            f"{what} is a model in MLflow's format: loading it needs mlflow "
            "(pip install 'shipyard[mlflow]')"
        ) from None
    try:
        flavors = Model.load(str(path / MLFLOW_DESCRIPTOR)).flavors
    except Exception as exc:  # a malformed MLmodel: mlflow raises several kinds
        raise InvalidInput(f"{what}: its {MLFLOW_DESCRIPTOR} cannot be read: {exc}") from None
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(path))
    if "python_function" not in flavors:
        raise InvalidInput(
            f"{what}: its flavors {sorted(flavors)} have no python_function to load it with"
        )
    return mlflow.pyfunc.load_model(str(path))
