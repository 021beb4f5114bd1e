"""End to end: a real scikit-learn model logged, registered, aliased, loaded and verified."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from blake3 import blake3

from shipyard.client import Client
from shipyard.errors import IntegrityError, InvalidInput

from .conftest import blob_file, log_model, new_run, train


def test_register_alias_and_load(client: Client, tmp_path: Path) -> None:
    model1, x = train(0)
    model2, _ = train(1)
    run1 = log_model(client, model1, tmp_path)
    run2 = log_model(client, model2, tmp_path)
    client.models.create("churn", "churn classifier", tags={"team": "growth"})

    v1 = client.models.create_version("churn", run1, description="first")
    assert (v1.version, v1.run_id, v1.flavor, v1.source_path) == (1, run1, "sklearn", "model")
    assert {f.path for f in v1.files or []} == {"model.pkl", "MLmodel", "shipyard-model.json"}
    # The version's files are the run's artifacts: same blobs, no copies.
    for f in v1.files or []:
        assert blake3(client.artifacts.read_bytes(run1, f"model/{f.path}")).hexdigest() == f.hash
    v2 = client.models.create_version("churn", run2, tags={"stage": "candidate"})
    assert v2.version == 2 and v2.tags == {"stage": "candidate"}

    client.models.set_alias("churn", "champion", 1)
    client.models.set_alias("churn", "challenger", 2)
    assert client.models.get("churn").aliases == {"challenger": 2, "champion": 1}

    expected1, expected2 = model1.predict_proba(x), model2.predict_proba(x)
    np.testing.assert_array_equal(client.models.load("churn@champion").predict_proba(x), expected1)
    np.testing.assert_array_equal(client.models.load("churn/1").predict_proba(x), expected1)
    np.testing.assert_array_equal(
        client.models.load("churn@challenger").predict_proba(x), expected2
    )
    np.testing.assert_array_equal(client.models.load("churn").predict_proba(x), expected2)

    # Moving an alias: champion now resolves to version 2, version 1 loses it.
    moved = client.models.set_alias("churn", "champion", 2)
    assert moved.version == 2 and moved.aliases == ["challenger", "champion"]
    assert client.models.get_version("churn", 1).aliases == []
    np.testing.assert_array_equal(client.models.load("churn@champion").predict_proba(x), expected2)


def test_download_writes_verified_files(client: Client, tmp_path: Path) -> None:
    model, _ = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("m")
    version = client.models.create_version("m", run_id)
    dest = client.models.download("m/1", tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == ["MLmodel", "model.pkl", "shipyard-model.json"]
    for f in version.files or []:
        data = (dest / f.path).read_bytes()
        assert (blake3(data).hexdigest(), len(data)) == (f.hash, f.size)


def test_tampered_blob_is_refused(client: Client, tmp_path: Path) -> None:
    model, _ = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("m")
    version = client.models.create_version("m", run_id)
    pkl = next(f for f in version.files or [] if f.path == "model.pkl")
    stored = blob_file(client, pkl.hash)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    with pytest.raises(IntegrityError):
        client.models.load("m/1")
    with pytest.raises(IntegrityError):
        client.models.download("m/1", tmp_path / "out")
    cached = list((Path(client.settings.home) / "cache").rglob("model.pkl"))
    assert cached == []


class _Marker:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.path).touch, ())


def test_tampered_cache_is_never_unpickled(client: Client, tmp_path: Path) -> None:
    model, x = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("m")
    client.models.create_version("m", run_id)
    client.models.load("m/1")  # fills the cache
    (cached,) = (Path(client.settings.home) / "cache").rglob("model.pkl")
    marker = tmp_path / "executed"
    cached.write_bytes(pickle.dumps(_Marker(str(marker))))

    loaded = client.models.load("m/1")

    assert not marker.exists()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_python_flavor_round_trip(client: Client, tmp_path: Path) -> None:
    obj = {"weights": [1.0, 2.0], "bias": 0.5}
    run_id = log_model(client, obj, tmp_path, path="artifacts/model")
    client.models.create("rules")
    version = client.models.create_version("rules", run_id, source_path="artifacts/model")
    assert version.flavor == "python"
    assert client.models.load("rules") == obj


def test_version_without_descriptor_cannot_be_loaded(client: Client, tmp_path: Path) -> None:
    run_id = new_run(client)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "weights.bin").write_bytes(b"\x00" * 10)
    client.artifacts.upload_dir(run_id, tmp_path / "raw", "raw")
    client.models.create("raw")
    version = client.models.create_version("raw", run_id, source_path="raw")
    assert version.flavor == ""
    with pytest.raises(InvalidInput, match="shipyard-model.json"):
        client.models.load("raw/1")
    assert (
        client.models.download("raw", tmp_path / "d") / "weights.bin"
    ).read_bytes() == b"\x00" * 10


def _tamper(client: Client, digest: str) -> None:
    stored = blob_file(client, digest)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))


def test_corrupt_large_model_is_an_integrity_error(
    client: Client, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Over VERIFY_FIRST_BYTES the server streams and finds the damage only after its
    # status line: the client must still end with IntegrityError, not a network fault.
    big = {"weights": np.random.default_rng(0).random(1_500_000)}
    run_id = log_model(client, big, tmp_path)
    client.models.create("big")
    version = client.models.create_version("big", run_id)
    pkl = next(f for f in version.files or [] if f.path == "model.pkl")
    assert pkl.size > 8 * 1024 * 1024
    _tamper(client, pkl.hash)
    capfd.readouterr()

    with pytest.raises(IntegrityError, match=f"blob {pkl.hash} is corrupt"):
        client.models.load("big/1")
    with pytest.raises(IntegrityError, match=f"blob {pkl.hash} is corrupt"):
        client.models.download("big/1", tmp_path / "out")

    assert list((Path(client.settings.home) / "cache").rglob("model.pkl")) == []
    assert not (tmp_path / "out").exists()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    if client.embedded:  # the caller was told; the terminal gets no copy of it
        assert err == ""


def test_failed_download_leaves_nothing_behind(
    client: Client, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model, _ = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("m")
    version = client.models.create_version("m", run_id)
    # Damage the file fetched last, so that the others were fetched and verified.
    last = (version.files or [])[-1]
    _tamper(client, last.hash)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    capfd.readouterr()

    with pytest.raises(IntegrityError):
        client.models.download("m/1", tmp_path / "fresh")
    with pytest.raises(IntegrityError):
        client.models.download("m/1", existing)

    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    if client.embedded:
        assert capfd.readouterr().err == ""

    _tamper(client, last.hash)  # the same byte flipped back: intact again
    assert client.models.download("m/1", existing) == existing
    assert sorted(p.name for p in existing.iterdir()) == [
        "MLmodel",
        "model.pkl",
        "notes.txt",
        "shipyard-model.json",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_mlflow_spelling_of_references(client: Client, tmp_path: Path) -> None:
    model, x = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("churn")
    client.models.create_version("churn", run_id)
    client.models.create_version("churn", run_id)
    client.models.set_alias("churn", "champion", 1)
    assert client.models.resolve("models:/churn/1").version == 1
    assert client.models.resolve("models:/churn@champion").version == 1
    assert client.models.resolve("models:/churn/latest").version == 2
    assert client.models.resolve("churn/latest").version == 2
    expected = model.predict_proba(x)
    np.testing.assert_array_equal(client.models.load("models:/churn/1").predict_proba(x), expected)
    dest = client.models.download("models:/churn@champion", tmp_path / "dl")
    assert (dest / "model.pkl").is_file()


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("/tmp/a/dl2", "looks like a path or a URI"),
        ("./dl2", "looks like a path or a URI"),
        ("s3://bucket/model", "looks like a path or a URI"),
        ("runs:/0123abcd/model", "names a run's files, not a registered model"),
        ("churn/0", "the version must be a number >= 1"),
        ("models:/churn/Production", "'models:/churn/Production': the version must be a number"),
    ],
)
def test_what_is_not_a_reference_says_what_is(client: Client, ref: str, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        client.models.load(ref)
    assert says in raised.value.message
    assert "'NAME/VERSION', 'NAME@ALIAS'" in raised.value.message
    assert "'models:/NAME/VERSION'" in raised.value.message
    if ref.startswith("runs:/"):
        assert "client.models.create_version(NAME, RUN_ID, 'model')" in raised.value.message
