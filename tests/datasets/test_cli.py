"""``shipyard data``: every command once, embedded, through the SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client
from shipyard.datasets.cli import SPARKS, human_bytes, sparkline

runner = CliRunner()

GOOD = "id,price,label\n1,2.5,a\n2,3.0,b\n3,4.5,a\n4,1.25,b\n"
CHANGED = "id,price,label\n1,2.5,a\n2,3.5,b\n3,4.5,a\n5,0.5,b\n"
NULL_PRICE = "id,price,label\n1,2.5,a\n2,,b\n3,4.5,a\n4,,b\n"
EXPECTATIONS = [
    {"kind": "not_null", "column": "price", "name": "price is set"},
    {"kind": "range", "column": "price", "min": 0, "max": 10},
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """An embedded home the CLI and the returned client share."""
    for var in ("SHIPYARD_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL", "SHIPYARD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "240")  # rich wraps at 80 columns off a terminal
    client = Client()
    yield client
    client.close()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["data", *args])
    # CliRunner turns an escaped exception into exit code 1: that must never pass.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _file(tmp: Path, name: str, text: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_create_ingest_show_and_list(home: Client, tmp_path: Path) -> None:
    suite = _file(tmp_path, "exp.json", orjson.dumps(EXPECTATIONS))
    code, out, _ = _run("create", "churn", "-d", "customers", "--expectations", suite)
    assert code == 0 and "churn" in out and "2 expectation(s)" in out
    assert home.datasets.get("churn").expectations.policy == "reject"

    code, out, err = _run("ingest", "churn", _file(tmp_path, "a.csv", GOOD), "-m", "first")
    assert code == 0, err
    assert "churn@1" in out and "passed" in out and "rows" in out
    code, out, _ = _run(
        "ingest", "churn", _file(tmp_path, "b.csv", CHANGED), "--tag", "prod", "--json"
    )
    assert code == 0
    v2 = orjson.loads(out)
    assert (v2["version"], v2["rows"], v2["validation"]["passed"]) == (2, 4, True)
    assert set(v2["tags"]) == {"latest", "prod"}

    code, out, _ = _run("show", "churn")
    assert code == 0
    for text in ("churn@2", "Schema", "Profile", "price", "Validation", "passed"):
        assert text in out
    assert any(bar in out for bar in SPARKS)
    assert "median" in out and "most frequent" in out
    assert "a (2)" in out and "b (2)" in out  # the labels' most frequent values
    code, out, _ = _run("show", "churn", "--version", "1", "--json")
    shown = orjson.loads(out)
    assert code == 0 and shown["version"]["version"] == 1 and shown["dataset"]["name"] == "churn"
    assert [c["name"] for c in shown["version"]["profile"]["columns"]] == ["id", "price", "label"]

    code, out, _ = _run("versions", "churn", "--json")
    assert code == 0
    assert [v["version"] for v in orjson.loads(out)["versions"]] == [2, 1]
    code, out, _ = _run("versions", "churn")
    assert code == 0 and "prod" in out and "first" in out

    code, out, _ = _run("list", "--json")
    assert code == 0
    (listed,) = orjson.loads(out)["datasets"]
    assert (listed["name"], listed["latest_version"]) == ("churn", 2)
    code, out, _ = _run("list", "--query", "CHU")
    assert code == 0 and "churn" in out and "prod->2" in out
    code, out, _ = _run("list", "--query", "zzz")
    assert code == 0 and "no datasets found" in out


def test_rejected_ingest_lists_what_failed(home: Client, tmp_path: Path) -> None:
    suite = _file(tmp_path, "exp.json", orjson.dumps(EXPECTATIONS))
    assert _run("create", "churn", "-e", suite, "--policy", "reject")[0] == 0
    code, out, err = _run("ingest", "churn", _file(tmp_path, "bad.csv", NULL_PRICE))
    assert code == 1
    assert "validation_failed" in err and "no version" in err and "Traceback" not in err
    assert "Failed expectations" in err and "price is set" in err
    assert "sample rows" in err  # the offending rows are shown
    assert out == ""
    assert home.datasets.get("churn").latest_version is None


def test_warn_policy_validate_expect(home: Client, tmp_path: Path) -> None:
    suite = _file(tmp_path, "suite.json", orjson.dumps({"expectations": EXPECTATIONS}))
    assert _run("create", "churn", "-e", suite, "--policy", "warn")[0] == 0
    code, out, _ = _run("ingest", "churn", _file(tmp_path, "bad.csv", NULL_PRICE))
    assert code == 0
    assert "FAILED" in out and "policy warn" in out and "price is set" in out
    assert home.datasets.get_version("churn").validation.passed is False  # type: ignore[union-attr]

    code, out, _ = _run("validate", "churn")
    assert code == 1 and "FAILED" in out
    code, out, _ = _run("validate", "churn", "--version", "1", "--json")
    assert code == 1 and orjson.loads(out)["passed"] is False

    # Only a range check left (the file's policy is kept, then overridden).
    only_range = _file(tmp_path, "range.json", orjson.dumps(EXPECTATIONS[1:]))
    code, out, _ = _run("expect", "churn", "--file", only_range)
    assert code == 0 and "1 expectation(s), policy warn" in out
    code, out, _ = _run("expect", "churn", "--policy", "quarantine", "--json")
    assert code == 0
    assert orjson.loads(out)["expectations"]["policy"] == "quarantine"
    code, out, _ = _run("validate", "churn")
    assert code == 0 and "passed" in out

    # Under quarantine the bad rows go to a version of their own, which is named.
    code, out, _ = _run("expect", "churn", "--file", suite, "--policy", "quarantine")
    assert code == 0
    code, out, _ = _run("ingest", "churn", _file(tmp_path, "bad.csv", NULL_PRICE))
    assert code == 0 and "2 row(s) quarantined" in out and "went to churn@3" in out
    assert home.datasets.get_version("churn", 3).kind == "quarantine"
    assert home.datasets.get_version("churn").rows == 2


def test_keyed_diff_of_the_same_data(home: Client, tmp_path: Path) -> None:
    for _ in range(2):  # the same export twice: "the same data as version 1"
        assert _run("ingest", "churn", _file(tmp_path, "a.csv", GOOD))[0] == 0

    for old, new in (("1", "2"), ("1", "1")):
        code, out, err = _run("diff", "churn", old, new, "--key", "id")
        assert code == 0, err
        assert "0 added, 0 removed, 0 changed, 4 unchanged" in out
        code, out, _ = _run("diff", "churn", old, new, "--key", "id", "--json")
        assert code == 0
        rows = orjson.loads(out)["rows_diff"]
        assert (rows["added"], rows["removed"], rows["changed"], rows["unchanged"]) == (0, 0, 0, 4)


def test_diff_tag_download_lineage(
    home: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run("ingest", "churn", _file(tmp_path, "a.csv", GOOD))[0] == 0
    assert _run("ingest", "churn", _file(tmp_path, "b.csv", CHANGED))[0] == 0

    code, out, _ = _run("diff", "churn", "1", "2", "--key", "id")
    assert code == 0
    assert "1 added, 1 removed, 1 changed, 2 unchanged" in out and "price" in out
    code, out, _ = _run("diff", "churn", "1", "latest", "--json")
    diff = orjson.loads(out)
    assert code == 0 and (diff["old"], diff["new"], diff["rows_diff"]) == (1, 2, None)

    code, out, _ = _run("tag", "churn", "prod", "1")
    assert code == 0 and "churn@prod -> version 1" in out
    code, out, _ = _run("tag", "churn", "prod", "2", "--json")
    assert code == 0 and orjson.loads(out)["version"] == 2
    code, out, _ = _run("untag", "churn", "prod")
    assert code == 0 and home.datasets.get("churn").tags == {"latest": 2}

    dest = tmp_path / "out"
    code, out, _ = _run("download", "churn", str(dest), "--version", "1", "--json")
    assert code == 0
    (written,) = orjson.loads(out)
    assert pq.read_table(written).column("id").to_pylist() == [1, 2, 3, 4]

    run = home.runs.create(name="train")
    home.datasets.log_input(run.id, "churn", 2, context="training")
    code, out, _ = _run("ingest", "derived", _file(tmp_path, "c.csv", GOOD), "--parent", "churn@2")
    assert code == 0
    code, out, _ = _run("lineage", "churn", "--json")
    lineage = orjson.loads(out)
    assert code == 0 and [r["run_id"] for r in lineage["runs"]] == [run.id]
    assert [(c["dataset"], c["version"]) for c in lineage["children"]] == [("derived", 1)]
    code, out, _ = _run("lineage", "derived")
    assert code == 0 and "default/churn@2" in out and "derived" in out
    code, out, _ = _run("inputs", run.id, "--json")
    assert code == 0
    assert [(i["dataset"], i["version"], i["context"]) for i in orjson.loads(out)] == [
        ("churn", 2, "training")
    ]
    code, out, _ = _run("inputs", run.id)
    assert code == 0 and "default/churn@2" in out
    # More readers than lineage lists: it says how many there are.
    later = home.runs.create(name="eval")
    home.datasets.log_input(later.id, "churn", 2, context="eval")
    from shipyard.datasets import versions

    monkeypatch.setattr(versions, "LINEAGE_RUNS", 1)
    code, out, _ = _run("lineage", "churn")
    assert code == 0 and "The newest 1 of 2 runs that read it." in out
    # A parent deleted since is still named, marked deleted.
    home.datasets.delete("churn")
    code, out, _ = _run("lineage", "derived")
    assert code == 0 and "default/churn@2 (deleted)" in out


def test_project_option(home: Client, tmp_path: Path) -> None:
    home.projects.create("other")
    assert _run("create", "elsewhere", "--project", "other")[0] == 0
    code, out, _ = _run("list", "--project", "other", "--json")
    assert [d["name"] for d in orjson.loads(out)["datasets"]] == ["elsewhere"]
    code, out, _ = _run("list", "--json")
    assert orjson.loads(out)["datasets"] == []


def test_errors_are_one_line_and_change_nothing(home: Client, tmp_path: Path) -> None:
    code, _, err = _run("show", "nope")
    assert code == 1 and "not found" in err and "Traceback" not in err
    code, _, err = _run("create", "churn", "-e", _file(tmp_path, "bad.json", "{not json"))
    assert code == 1 and "not valid JSON" in err
    code, _, err = _run("create", "churn", "-e", _file(tmp_path, "odd.json", '[{"kind": "x"}]'))
    assert code == 1 and "no valid expectations" in err
    code, _, err = _run("create", "churn", "-e", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err
    code, _, err = _run("create", "churn", "--policy", "maybe")
    assert code == 1 and "unknown policy" in err
    assert home.datasets.list().datasets == []

    assert _run("create", "churn")[0] == 0
    code, _, err = _run("expect", "churn")
    assert code == 1 and "--file" in err
    code, _, err = _run("ingest", "churn", str(tmp_path / "gone.csv"))
    assert code == 1 and "Traceback" not in err
    code, _, err = _run("tag", "churn", "latest", "1")
    assert code == 1 and "Traceback" not in err
    assert home.datasets.get("churn").latest_version is None


def test_formatting_helpers() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert sparkline([]) == "" and sparkline([0, 0]) == ""
    line = sparkline([0, 1, 5, 10])
    assert len(line) == 4 and line[0] == " " and line[-1] == SPARKS[-1]
    assert SPARKS.index(line[1]) < SPARKS.index(line[2]) < SPARKS.index(line[3])


# What an embedded `shipyard data ingest` must not import: each costs every such command
# tens of milliseconds (pandas a quarter of a second) and the ingest has no use for it.
NOT_FOR_AN_INGEST = [
    "pandas",
    "shipyard.mlflow_compat.protocol",
    "shipyard.tracking.client",
    "shipyard.registry.client",
    "sqlalchemy.dialects.postgresql",
]


def test_an_ingest_imports_only_what_it_uses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    table = pa.table(
        {
            "id": pa.array(range(5000), pa.int64()),
            "x": pa.array([i / 7 for i in range(5000)]),
            "label": pa.array([f"l{i % 13}" for i in range(5000)]),
            "city": pa.array([f"c{i % 3}" for i in range(5000)]).dictionary_encode(),
            "at": pa.array(range(5000), pa.timestamp("s")),
        }
    )
    for part in range(2):
        pq.write_table(table, data / f"part-{part}.parquet")
    code = (
        "import sys\n"
        "from shipyard.cli.main import main\n"
        f"sys.argv = ['shipyard', 'data', 'ingest', 'events', {str(data)!r}, '-m', 'x']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"print('LOADED', [m for m in {NOT_FOR_AN_INGEST!r} if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(tmp_path / "home")

    def ingest() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # The first command also creates the home (migrations import every dialect).
    assert "events@1" in ingest()
    pq.write_table(table.slice(100), data / "part-1.parquet")
    again = ingest()
    assert "events@2" in again
    assert "LOADED []" in again


def test_an_ingest_of_the_same_data_says_so(home: Client, tmp_path: Path) -> None:
    source = _file(tmp_path, "a.csv", GOOD)
    assert _run("ingest", "churn", source)[0] == 0
    code, out, _ = _run("ingest", "churn", source)  # the same file, unchanged
    assert code == 0 and "churn@2" in out
    assert "the same data as version 1: nothing changed" in out
    code, out, _ = _run("ingest", "churn", _file(tmp_path, "a.csv", CHANGED))
    assert code == 0 and "churn@3" in out and "nothing changed" not in out


def test_expect_takes_the_same_option_as_create(home: Client, tmp_path: Path) -> None:
    suite = _file(tmp_path, "exp.json", orjson.dumps(EXPECTATIONS))
    assert _run("create", "churn")[0] == 0
    code, out, err = _run("expect", "churn", "--expectations", suite)
    assert code == 0, err
    assert len(home.datasets.get("churn").expectations.expectations) == 2


def test_an_ingest_that_fails_midway_ends_with_its_error_alone(tmp_path: Path) -> None:
    # The failure's frames hold profile sketches (native objects) in cycles; a command
    # that left them uncollected at exit had Python report each as leaked (600 lines).
    source = tmp_path / "big.csv"
    with source.open("w") as out:
        out.write("a,b\n")
        out.writelines(f"{i},{i / 2}\n" for i in range(1_500_000))  # past the first block
        out.write("oops,1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "data", "ingest", "bad", str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "'oops' is not a valid int64" in done.stderr
    assert "leaked" not in done.stderr and len(done.stderr.splitlines()) <= 3, done.stderr[:2000]
