"""Real processes: nothing logged is lost at exit, statuses are right, and several
processes can log into one embedded home at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.conftest import embedded_client, home_client, make_settings

from shipyard.platform import Platform

CHILD_TIMEOUT_S = 240


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_HOME": str(home), "SHIPYARD_SYSTEM_METRICS_INTERVAL": "0", **extra})
    return env


def write_script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run_script(script: Path, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)],
        env=child_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


def test_exit_without_end_run_loses_nothing(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "no_end.py",
        """
        import shipyard
        run = shipyard.start_run(run_name="no-end")
        print(run.id, flush=True)
        for i in range(10_000):
            shipyard.log_metric("m", float(i), step=i)
        """,
    )
    done = run_script(script, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    with home_client(tmp_path / "home") as client:
        run = client.runs.get(run_id)
        history = client.runs.metric_history(run_id, "m")
    assert run.status == "finished"
    assert run.end_time is not None
    assert history.steps == list(range(10_000))
    assert history.values[-1] == 9999.0


@pytest.mark.parametrize(
    ("ending", "status"),
    [("raise RuntimeError('boom')", "failed"), ("raise KeyboardInterrupt", "killed")],
)
def test_uncaught_error_at_top_level_sets_the_status(
    tmp_path: Path, ending: str, status: str
) -> None:
    script = write_script(
        tmp_path,
        "crash.py",
        f"""
        import shipyard
        run = shipyard.start_run()
        print(run.id, flush=True)
        for i in range(500):
            shipyard.log_metric("m", float(i), step=i)
        {ending}
        """,
    )
    done = run_script(script, tmp_path / "home")
    assert done.returncode != 0
    run_id = done.stdout.strip()
    with home_client(tmp_path / "home") as client:
        assert client.runs.get(run_id).status == status
        assert len(client.runs.metric_history(run_id, "m").steps) == 500


def test_error_in_with_block_fails_the_run_and_keeps_its_metrics(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "block.py",
        """
        import shipyard
        with shipyard.start_run() as run:
            print(run.id, flush=True)
            for i in range(2_000):
                shipyard.log_metric("m", float(i), step=i)
            raise ValueError("bad data")
        """,
    )
    done = run_script(script, tmp_path / "home")
    assert done.returncode == 1
    assert "ValueError: bad data" in done.stderr
    with home_client(tmp_path / "home") as client:
        run_id = done.stdout.strip()
        assert client.runs.get(run_id).status == "failed"
        assert len(client.runs.metric_history(run_id, "m").steps) == 2_000


@pytest.mark.parametrize("in_block", [True, False], ids=["with-block", "no-block"])
def test_sigterm_kills_the_run_and_keeps_its_metrics(tmp_path: Path, in_block: bool) -> None:
    opening = (
        "with shipyard.start_run() as run:"
        if in_block
        else "run = shipyard.start_run()\nif True:  # same body, no with block"
    )
    body = textwrap.indent(
        textwrap.dedent(
            """
            for i in range(1_000):
                shipyard.log_metric("m", float(i), step=i)
            print(run.id, flush=True)
            time.sleep(600)
            """
        ),
        "    ",
    )
    script = tmp_path / "term.py"
    script.write_text(f"import time\nimport shipyard\n{opening}\n{body}")
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=child_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + signal.SIGTERM, stderr
    with home_client(tmp_path / "home") as client:
        assert client.runs.get(run_id).status == "killed"
        assert len(client.runs.metric_history(run_id, "m").steps) == 1_000


def test_several_processes_log_into_one_home_at_once(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "worker.py",
        """
        import sys
        import shipyard
        n = sys.argv[1]
        shipyard.set_experiment("shared")
        with shipyard.start_run(run_name=f"worker-{n}", params={"n": n}) as run:
            with shipyard.start_run(run_name=f"child-{n}", nested=True) as child:
                for i in range(500):
                    shipyard.log_metric("inner", float(i), step=i)
            for i in range(3_000):
                shipyard.log_metric("m", float(i), step=i)
                if i % 500 == 0:
                    shipyard.set_tag("progress", str(i))
        print(run.id, child.id, flush=True)
        """,
    )
    home = tmp_path / "home"  # fresh: the processes also race to create the database
    env = child_env(
        home,
        SHIPYARD_METRIC_FLUSH_INTERVAL="0.01",
        SHIPYARD_METRIC_BATCH_SIZE="100",
        SHIPYARD_SYSTEM_METRICS_INTERVAL="0.05",
    )
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [c.communicate(timeout=CHILD_TIMEOUT_S) for c in children]
    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr
        assert "database is locked" not in stderr
        assert "Traceback" not in stderr
    ids = [out.split() for out, _ in outputs]
    with home_client(home) as client:
        page = client.runs.search(["shared"], max_results=100)
        assert len(page.runs) == 8
        for run_id, child_id in ids:
            run = client.runs.get(run_id)
            assert run.status == "finished"
            assert run.tags["progress"] == "2500"
            assert client.runs.metric_history(run_id, "m").steps == list(range(3_000))
            child = client.runs.get(child_id)
            assert child.parent_run_id == run_id
            assert client.runs.metric_history(child_id, "inner").steps == list(range(500))


def test_a_run_whose_process_is_killed_outright_is_marked_failed(tmp_path: Path) -> None:
    """SIGKILL leaves the process no chance to end its run: its heartbeats stop, and
    once the server's timeout has passed, reading the run shows it failed."""
    script = write_script(
        tmp_path,
        "killed.py",
        """
        import time
        import shipyard
        run = shipyard.start_run(run_name="doomed")
        for i in range(100):
            shipyard.log_metric("m", float(i), step=i)
        run.flush()
        print(run.id, flush=True)
        time.sleep(600)
        """,
    )
    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=child_env(home, SHIPYARD_RUN_HEARTBEAT_INTERVAL="0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    settings = make_settings(home, run_heartbeat_timeout=3.0)
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert run_id, child.stderr.read() if child.stderr else ""
        platform = Platform.from_settings(settings)
        try:
            with embedded_client(platform) as client:
                time.sleep(0.5)  # a few heartbeats
                assert client.runs.get(run_id).status == "running"
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=CHILD_TIMEOUT_S)
                deadline = time.monotonic() + 60
                while "shipyard.lost_contact" not in client.runs.get(run_id).tags:
                    assert time.monotonic() < deadline, "the run was never marked lost"
                    time.sleep(0.1)
                run = client.runs.get(run_id)
                history = client.runs.metric_history(run_id, "m")
        finally:
            platform.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL
    assert run.status == "failed"
    assert run.end_time is not None and run.end_time > run.start_time  # its last heartbeat
    assert len(history.steps) == 100  # what it flushed is kept
