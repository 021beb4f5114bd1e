"""The command daemon: commands it serves give what they give in their own process;
what it would run differently it declines, and the caller runs it; only its user can
reach it; Ctrl-C stops a served command as it would a local one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import as_plain_user

from shipyard.cli import daemon_link
from shipyard.cli.daemon import code_stamp

# The console script's code path: the daemon first, else this process.
LAUNCH = [sys.executable, "-m", "shipyard.cli.launch"]
# Always in this process: the typer app without the launcher.
LOCAL = [sys.executable, "-m", "shipyard.cli.main"]


def run(cmd: list[str], env: dict[str, str], cwd: Path, check: bool = True):
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def status(env: dict[str, str], cwd: Path) -> dict:
    return json.loads(run([*LAUNCH, "daemon", "status", "--json"], env, cwd).stdout)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short: a Unix socket's path must fit in ~107 bytes, which pytest's tmp_path can pass.
    folder = Path(tempfile.mkdtemp(prefix="sy-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(tmp_path: Path, runtime_dir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ |= {
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "COLUMNS": "200",
        # A command in a test starts no daemon (SHIPYARD_DAEMON unset), but one that a
        # test started serves it; the tests that want one started ask (=auto).
        "PYTEST_CURRENT_TEST": os.environ.get("PYTEST_CURRENT_TEST", "test_daemon"),
    }
    return environ


def stop_daemon(env: dict[str, str], cwd: Path) -> None:
    """Stop the daemon of ``env``'s home, if any; on a loaded machine, where the stop
    may go unanswered, end its process too, so that no test leaves one behind."""
    reply = run([*LAUNCH, "daemon", "status", "--json"], env, cwd, check=False)
    run([*LAUNCH, "daemon", "stop"], env, cwd, check=False)
    pid = json.loads(reply.stdout).get("pid") if reply.returncode == 0 else None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture
def daemon(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    started = run([*LAUNCH, "daemon", "start", "--idle-minutes", "5"], env, tmp_path)
    assert "serves" in started.stdout
    yield env
    stop_daemon(env, tmp_path)


def write_csv(path: Path, rows: int) -> None:
    path.write_text("id,value\n" + "".join(f"{i},{i * 0.5}\n" for i in range(rows)))


def test_a_served_command_gives_what_it_gives_in_its_own_process(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "data.csv", 50)
    # A relative path: the daemon runs the command in the caller's folder, not its own.
    ingested = run([*LAUNCH, "data", "ingest", "iris", "data.csv", "--json"], daemon, work)
    assert json.loads(ingested.stdout)["rows"] == 50
    assert status(daemon, tmp_path)["served"] == 1

    served = run([*LAUNCH, "data", "show", "iris", "--json"], daemon, work)
    local = run([*LOCAL, "data", "show", "iris", "--json"], daemon, work)
    assert served.stdout == local.stdout
    assert json.loads(served.stdout)["version"]["rows"] == 50
    listing = run([*LAUNCH, "data", "list"], daemon, work)
    assert listing.stdout == run([*LOCAL, "data", "list"], daemon, work).stdout
    assert "iris" in listing.stdout
    # Files it writes land in the caller's folder, with the caller's umask.
    written = subprocess.run(
        [*LAUNCH, "data", "download", "iris", "out", "--json"],
        env=daemon, cwd=work, capture_output=True, text=True, umask=0o077, timeout=120,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    files = [work / p for p in json.loads(written.stdout)]
    assert files
    for path in files:
        assert path.resolve().is_relative_to(work / "out")
        assert path.stat().st_mode & 0o777 == 0o600
    reply = status(daemon, tmp_path)
    assert (reply["served"], reply["declined"], reply["busy"]) == (4, 0, False)


def test_a_script_s_commands_one_after_another_are_all_served(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    """The next command of a script comes as soon as the last one's exit code does:
    the daemon counted itself busy until it had closed its connections (a WAL folded
    after each write), and declined it now and then, to a full start-up of its own."""
    for i in range(12):
        run([*LAUNCH, "projects", "create", f"p{i}"], daemon, tmp_path)
    reply = status(daemon, tmp_path)
    assert (reply["served"], reply["declined"]) == (12, 0), reply


def test_one_daemon_per_home_whatever_the_runtime_folder(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    """The socket's folder follows XDG_RUNTIME_DIR (an ssh session and a cron job may
    differ): a daemon started from another one finds the home taken, and does not
    serve it beside the first."""
    other = tmp_path / "runtime"
    other.mkdir(mode=0o700)
    elsewhere = {**daemon, "XDG_RUNTIME_DIR": str(other)}
    second = run([*LAUNCH, "daemon", "start"], elsewhere, tmp_path, check=False)
    assert "already serves" in second.stdout + second.stderr, second
    assert run([*LAUNCH, "daemon", "status"], elsewhere, tmp_path, check=False).returncode == 1
    assert status(daemon, tmp_path)["pid"]  # the first one serves on


def test_errors_come_back_with_their_exit_code(daemon: dict[str, str], tmp_path: Path) -> None:
    served = run([*LAUNCH, "data", "show", "missing"], daemon, tmp_path, check=False)
    local = run([*LOCAL, "data", "show", "missing"], daemon, tmp_path, check=False)
    assert served.returncode == local.returncode == 1
    assert served.stderr == local.stderr
    assert "missing" in served.stderr
    assert served.stdout == ""
    usage = run([*LAUNCH, "data", "show"], daemon, tmp_path, check=False)
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr
    assert status(daemon, tmp_path)["served"] == 2


def test_it_declines_a_caller_whose_environment_differs(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    other = daemon | {"SHIPYARD_PROJECT": "elsewhere"}
    result = run([*LAUNCH, "data", "list", "--json"], other, tmp_path, check=False)
    # It ran in the caller's process, with the caller's settings: that project is unknown.
    assert result.returncode == 1
    assert "elsewhere" in result.stderr
    reply = status(daemon, tmp_path)
    assert (reply["served"], reply["declined"]) == (0, 1)
    assert reply["last_declined"] == "another environment"
    # Commands outside the served groups never reach it.
    run([*LAUNCH, "users", "--help"], daemon, tmp_path)
    assert status(daemon, tmp_path)["declined"] == 1
    # Starting one from that environment says why it would not help.
    clash = run([*LAUNCH, "daemon", "start"], other, tmp_path, check=False)
    assert clash.returncode == 1
    assert "another environment or installation" in clash.stderr


def test_only_a_private_socket_folder_is_used(
    daemon: dict[str, str], tmp_path: Path, runtime_dir: Path
) -> None:
    folder = runtime_dir / f"shipyard-{os.getuid()}"
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)
    try:
        result = run([*LAUNCH, "data", "list", "--json"], daemon, tmp_path)
        assert json.loads(result.stdout)["datasets"] == []
        # The daemon is alive, but was not asked: the command ran in its own process.
        assert not daemon_link.private_dir_ok(folder)
        other = daemon | {"SHIPYARD_HOME": str(tmp_path / "other-home")}
        refused = run([*LAUNCH, "daemon", "start"], other, tmp_path, check=False)
        assert refused.returncode == 1
        assert "must be yours, mode 0700" in refused.stderr
        # Nor does a command with SHIPYARD_DAEMON=auto try to start one there.
        auto = daemon | {"SHIPYARD_HOME": str(tmp_path / "third"), "SHIPYARD_DAEMON": "auto"}
        run([*LAUNCH, "data", "list", "--json"], auto, tmp_path)
        assert not (tmp_path / "third" / "daemon.log").exists()
    finally:
        folder.chmod(0o700)
    assert status(daemon, tmp_path)["served"] == 0


def test_status_and_stop(env: dict[str, str], tmp_path: Path) -> None:
    none = run([*LAUNCH, "daemon", "status", "--json"], env, tmp_path, check=False)
    assert none.returncode == 1
    assert json.loads(none.stdout)["running"] is False
    run([*LAUNCH, "daemon", "start"], env, tmp_path)
    try:
        again = run([*LAUNCH, "daemon", "start"], env, tmp_path)
        assert "already serves" in again.stdout
        reply = status(env, tmp_path)
        assert reply["home"] == str((tmp_path / "home").resolve())
        assert reply["ready"] is True
        stopped = run([*LAUNCH, "daemon", "stop"], env, tmp_path)
        assert "stopped" in stopped.stdout
        assert not Path(reply["socket"]).exists()
    finally:
        stop_daemon(env, tmp_path)
    # Commands still work, in their own process.
    assert (
        json.loads(run([*LAUNCH, "data", "list", "--json"], env, tmp_path).stdout)["datasets"] == []
    )
    assert "no daemon serves" in run([*LAUNCH, "daemon", "stop"], env, tmp_path).stdout


def test_a_stop_whose_caller_hangs_up_at_once_still_stops(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    # ``daemon stop`` reads the first frame of the reply and hangs up; a caller that hangs
    # up sooner made the reply fail before the stop was queued, and the daemon ran on.
    path = status(daemon, tmp_path)["socket"]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(b'{"op": "stop"}\n')
    deadline = time.monotonic() + 30
    while os.path.exists(path):
        assert time.monotonic() < deadline, "the daemon did not stop"
        time.sleep(0.05)


def test_with_a_server_url_there_is_no_daemon(env: dict[str, str], tmp_path: Path) -> None:
    remote = env | {"SHIPYARD_URL": "http://127.0.0.1:9"}
    result = run([*LAUNCH, "daemon", "start"], remote, tmp_path, check=False)
    assert result.returncode == 2
    assert "SHIPYARD_URL" in result.stderr
    assert not (tmp_path / "home").exists()


def test_ctrl_c_stops_a_served_command_and_the_daemon_goes_on(
    daemon: dict[str, str], tmp_path: Path, pg_url: str
) -> None:
    query = "SELECT pg_sleep(30) AS slept, 1 AS one"
    cmd = [*LAUNCH, "data", "ingest", "slow", pg_url, "--query", query]
    caller = subprocess.Popen(cmd, env=daemon, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not status(daemon, tmp_path)["busy"]:
        assert time.monotonic() < deadline, "the daemon never started the command"
        time.sleep(0.1)
    try:
        # Busy: another command is declined and runs in its own process meanwhile.
        listed = run([*LAUNCH, "data", "list", "--json"], daemon, tmp_path)
        assert json.loads(listed.stdout)["datasets"] == []
        reply = status(daemon, tmp_path)
        assert (reply["declined"], reply["last_declined"]) == (1, "busy")
        started = time.monotonic()
        caller.send_signal(signal.SIGINT)
        _, stderr = caller.communicate(timeout=20)
    finally:
        caller.kill()
    assert time.monotonic() - started < 15  # well before the query's 30 s
    assert caller.returncode == 130, stderr  # what the command exits with in its own process
    # The daemon stops after an interrupted command (it may have left a request running
    # in its client); the next command runs in its own process, and nothing was made.
    deadline = time.monotonic() + 10
    while status_code(daemon, tmp_path) == 0:
        assert time.monotonic() < deadline, "the daemon did not stop"
        time.sleep(0.1)
    listed = run([*LAUNCH, "data", "list", "--json"], daemon, tmp_path)
    assert json.loads(listed.stdout)["datasets"] == []


def test_the_code_stamp_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    module = tmp_path / "pkg" / "a.py"
    module.write_text("x = 1\n")
    before = code_stamp(tmp_path)
    assert before == code_stamp(tmp_path)
    time.sleep(0.01)
    module.touch()
    touched = code_stamp(tmp_path)
    assert touched[1] > before[1]
    (tmp_path / "pkg" / "b.py").write_text("")
    os.utime(tmp_path / "pkg" / "b.py", ns=(0, 0))  # an old mtime: counted, and seen anyway
    assert code_stamp(tmp_path)[0] == 2
    assert code_stamp(tmp_path)[1] > touched[1]


def test_a_new_version_of_a_file_that_keeps_its_old_mtime_is_seen(tmp_path: Path) -> None:
    # rsync -a, cp -p, tar x, unzip: the new content arrives with the file's own mtime,
    # which the newest mtime and the count of files did not see.
    module = tmp_path / "a.py"
    other = tmp_path / "b.py"
    module.write_text("x = 1\n")
    other.write_text("")
    mtime = module.stat().st_mtime_ns
    os.utime(other, ns=(mtime + 10**9, mtime + 10**9))  # the newest mtime is elsewhere
    before = code_stamp(tmp_path)
    time.sleep(0.01)
    module.write_text("x = 2\n")
    os.utime(module, ns=(mtime, mtime))  # set back, as the copying tool does
    assert code_stamp(tmp_path) != before


def test_after_a_code_change_it_declines_and_exits(daemon: dict[str, str], tmp_path: Path) -> None:
    socket = Path(status(daemon, tmp_path)["socket"])
    module = Path(daemon_link.__file__)
    saved = module.stat()
    os.utime(module, ns=(saved.st_atime_ns, time.time_ns() + 10**9))
    try:
        result = run([*LAUNCH, "data", "list", "--json"], daemon, tmp_path)
    finally:
        os.utime(module, ns=(saved.st_atime_ns, saved.st_mtime_ns))
    assert json.loads(result.stdout)["datasets"] == []  # run in its own process instead
    deadline = time.monotonic() + 10
    while socket.exists():  # the daemon ends, so the next command starts no old code
        assert time.monotonic() < deadline, "the daemon still listens"
        time.sleep(0.05)
    assert status_code(daemon, tmp_path) == 1


def status_code(env: dict[str, str], cwd: Path) -> int:
    return run([*LAUNCH, "daemon", "status"], env, cwd, check=False).returncode


def ask_to_run(env: dict[str, str], **changes: object) -> tuple[bytes, bytes]:
    """Send the daemon a request as the launcher would from ``env``, with ``changes``;
    its first frame."""
    request = daemon_link.request_for(["data", "list"])
    request |= {"home": daemon_link.resolved_home(env, "/"), "env": daemon_link.fingerprint(env)}
    request |= changes
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = env["XDG_RUNTIME_DIR"]
    try:
        path = daemon_link.socket_path(str(request["home"]))
    finally:
        if saved is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = saved
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        stream = sock.makefile("rb")
        frame = daemon_link.read_frame(stream)
        if frame is not None and frame[0] == daemon_link.ACCEPTED:
            daemon_link.send_frame(sock, daemon_link.GO)
            # Read to the end: a caller that leaves mid-command interrupts it.
            while (following := daemon_link.read_frame(stream)) is not None:
                if following[0] == daemon_link.EXIT:
                    break
    assert frame is not None
    return frame


def test_it_serves_only_callers_of_its_own_installation(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    kind, payload = ask_to_run(daemon)
    assert kind == daemon_link.ACCEPTED
    other = ["/elsewhere/shipyard", "/elsewhere/venv"]
    assert ask_to_run(daemon, install=other) == (daemon_link.DECLINED, b"another installation")
    assert ask_to_run(daemon, argv=["users", "list"]) == (
        daemon_link.DECLINED,
        b"command not served",
    )
    reply = status(daemon, tmp_path)
    assert (reply["served"], reply["declined"]) == (1, 2)


def test_auto_starts_one_for_the_next_commands(env: dict[str, str], tmp_path: Path) -> None:
    auto = env | {"SHIPYARD_DAEMON": "auto"}
    try:
        first = run([*LAUNCH, "data", "list", "--json"], auto, tmp_path)
        assert json.loads(first.stdout)["datasets"] == []  # it ran in its own process
        deadline = time.monotonic() + 60
        # It answers `status` as soon as it listens, and serves once warmed up.
        while status_code(auto, tmp_path) != 0 or not status(auto, tmp_path)["ready"]:
            assert time.monotonic() < deadline, "no daemon started"
            time.sleep(0.2)
        assert status(auto, tmp_path)["served"] == 0
        run([*LAUNCH, "data", "list", "--json"], auto, tmp_path)
        assert status(auto, tmp_path)["served"] == 1
        # Turned off, a command finds none and starts none.
        other = env | {"SHIPYARD_HOME": str(tmp_path / "other"), "SHIPYARD_DAEMON": "off"}
        run([*LAUNCH, "data", "list", "--json"], other, tmp_path)
        assert not (tmp_path / "other" / "daemon.log").exists()
    finally:
        stop_daemon(auto, tmp_path)


def wait_until_serving(env: dict[str, str], cwd: Path) -> None:
    deadline = time.monotonic() + 60
    # It answers `status` as soon as it listens, and serves once warmed up.
    while status_code(env, cwd) != 0 or not status(env, cwd)["ready"]:
        assert time.monotonic() < deadline, "no daemon started"
        time.sleep(0.2)


def test_by_default_a_command_starts_one_except_in_ci(env: dict[str, str], tmp_path: Path) -> None:
    default = {
        k: v for k, v in env.items() if k not in ("SHIPYARD_DAEMON", "CI", *daemon_link.CI_MARKERS)
    }
    try:
        run([*LAUNCH, "data", "list", "--json"], default, tmp_path)
        wait_until_serving(default, tmp_path)
    finally:
        stop_daemon(default, tmp_path)
    in_ci = default | {"CI": "true", "SHIPYARD_HOME": str(tmp_path / "ci")}
    run([*LAUNCH, "data", "list", "--json"], in_ci, tmp_path)
    time.sleep(1)  # a daemon would have been started at the command's exit
    assert not (tmp_path / "ci" / "daemon.log").exists()
    assert status_code(in_ci, tmp_path) == 1


@pytest.mark.parametrize(
    ("setting", "ci", "starts"),
    [
        (None, None, True),
        (None, "false", True),
        (None, "true", False),
        (None, "1", False),
        ("auto", "true", True),
        ("AUTO", None, True),
        ("off", None, False),
        ("off", "true", False),
        (" Off ", None, False),
    ],
)
def test_when_a_command_starts_one(
    runtime_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    ci: str | None,
    starts: bool,
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))  # socket_dir reads it
    environ = {"XDG_RUNTIME_DIR": str(runtime_dir)}
    if setting is not None:
        environ["SHIPYARD_DAEMON"] = setting
    if ci is not None:
        environ["CI"] = ci
    assert daemon_link.auto_start(environ) is starts


def test_a_command_that_made_no_home_starts_none(env: dict[str, str], tmp_path: Path) -> None:
    auto = env | {"SHIPYARD_DAEMON": "auto"}
    run([*LAUNCH, "data", "--help"], auto, tmp_path)
    time.sleep(1)
    assert not (tmp_path / "home").exists()
    assert status_code(auto, tmp_path) == 1


def test_no_more_than_the_cap_are_started(
    env: dict[str, str], tmp_path: Path, runtime_dir: Path
) -> None:
    import fcntl

    folder = runtime_dir / f"shipyard-{os.getuid()}"
    folder.mkdir(mode=0o700)
    held = []
    try:
        # Daemons of other homes, as their locks show them.
        for n in range(daemon_link.MAX_AUTO_DAEMONS):
            fd = os.open(folder / f"other{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.append(fd)
        (folder / "gone.lock").touch()  # one that has exited holds no lock
        auto = env | {"SHIPYARD_DAEMON": "auto"}
        first = run([*LAUNCH, "data", "list", "--json"], auto, tmp_path)
        assert json.loads(first.stdout)["datasets"] == []
        time.sleep(1)
        assert not (tmp_path / "home" / "daemon.log").exists()
        assert status_code(auto, tmp_path) == 1
        os.close(held.pop())  # one of them exits: the next command starts one
        run([*LAUNCH, "data", "list", "--json"], auto, tmp_path)
        wait_until_serving(auto, tmp_path)
    finally:
        for fd in held:
            os.close(fd)
        stop_daemon(env, tmp_path)


def test_a_home_deleted_under_it_is_not_served_and_the_daemon_exits(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    home = Path(daemon["SHIPYARD_HOME"])
    csv = tmp_path / "a.csv"
    write_csv(csv, 3)
    run([*LAUNCH, "data", "ingest", "a", str(csv)], daemon, tmp_path)
    assert status(daemon, tmp_path)["served"] == 1
    shutil.rmtree(home)
    # The daemon still has the old database open: the command must run here, on a new home.
    again = run([*LAUNCH, "data", "list", "--json"], daemon, tmp_path)
    assert json.loads(again.stdout)["datasets"] == []
    deadline = time.monotonic() + 30
    while status_code(daemon, tmp_path) == 0:
        assert time.monotonic() < deadline, "the daemon of a deleted home is still running"
        time.sleep(0.2)


def test_code_in_the_home_folder_is_never_imported(env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "imported"
    # The daemon starts in its home and imports pyarrow: a pyarrow.py there must not win.
    (home / "pyarrow.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    run([*LAUNCH, "daemon", "start"], env, tmp_path)
    try:
        assert status(env, tmp_path)["ready"] is True
        assert not marker.exists()
    finally:
        stop_daemon(env, tmp_path)


def test_an_idle_daemon_exits_when_its_home_is_deleted(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    shutil.rmtree(daemon["SHIPYARD_HOME"])
    deadline = time.monotonic() + 30  # it looks every HOME_CHECK_SECONDS (10)
    while status_code(daemon, tmp_path) == 0:
        assert time.monotonic() < deadline, "the daemon of a deleted home is still running"
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("variable", "value", "relative"),
    [
        ("SHIPYARD_DATABASE_URL", "sqlite:///app.db", True),
        ("SHIPYARD_DATABASE_URL", "sqlite:///./data/app.db?timeout=5", True),
        ("SHIPYARD_DATABASE_URL", "sqlite:////srv/app.db", False),
        ("SHIPYARD_DATABASE_URL", "sqlite+pysqlite:///app.db", True),
        ("SHIPYARD_DATABASE_URL", "sqlite:////srv/app.db?timeout=30", False),
        ("SHIPYARD_DATABASE_URL", "sqlite:///:memory:", False),
        ("SHIPYARD_BLOB_URL", "file://blobs", True),
        ("SHIPYARD_BLOB_URL", "file:///srv/blobs", False),
        ("SHIPYARD_DATABASE_URL", "postgresql+psycopg://u@db/x", False),
        ("shipyard_blob_url", "blobs", True),
        ("SHIPYARD_BLOB_URL", "/srv/blobs", False),
        ("SHIPYARD_BLOB_URL", "s3://bucket/prefix", False),
        # The settings do not expand ~: a folder named ~ under the current one.
        ("SHIPYARD_BLOB_URL", "~/blobs", True),
        ("SHIPYARD_BLOB_URL", "file://~/blobs", True),
    ],
)
def test_a_store_named_relative_to_the_folder_is_seen(
    variable: str, value: str, relative: bool
) -> None:
    found = daemon_link.relative_store({variable: value})
    assert found == (variable if relative else None)


def test_a_relative_database_path_is_never_served(env: dict[str, str], tmp_path: Path) -> None:
    # The daemon would open app.db in the folder it started from, the command in its own.
    relative = env | {"SHIPYARD_DATABASE_URL": "sqlite:///app.db", "SHIPYARD_DAEMON": "auto"}
    refused = run([*LAUNCH, "daemon", "start"], relative, tmp_path, check=False)
    assert refused.returncode == 2
    assert "SHIPYARD_DATABASE_URL" in refused.stderr + refused.stdout
    work = tmp_path / "work"
    work.mkdir()
    run([*LAUNCH, "data", "list", "--json"], relative, work)
    assert (work / "app.db").exists()
    time.sleep(1)  # nor does a command start one at its exit
    assert status_code(relative, work) == 1


def test_stop_all_stops_the_daemons_of_every_home(env: dict[str, str], tmp_path: Path) -> None:
    other = env | {"SHIPYARD_HOME": str(tmp_path / "other")}
    try:
        for each in (env, other):
            run([*LAUNCH, "daemon", "start", "--idle-minutes", "5"], each, tmp_path)
        assert status_code(env, tmp_path) == 0 and status_code(other, tmp_path) == 0
        stopped = run([*LAUNCH, "daemon", "stop", "--all"], env, tmp_path)
        assert stopped.stdout.count("stopped the daemon of") == 2
        assert status_code(env, tmp_path) == 1 and status_code(other, tmp_path) == 1
        again = run([*LAUNCH, "daemon", "stop", "--all"], env, tmp_path)
        assert "no daemon of yours is running" in again.stdout
    finally:
        stop_daemon(env, tmp_path)
        stop_daemon(other, tmp_path)


def test_a_process_has_ended_once_it_is_a_zombie_or_gone() -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert not daemon_link._has_ended(alive.pid)
        deadline = time.monotonic() + 30
        while not daemon_link._has_ended(quick.pid):  # exited, not yet reaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert quick.poll() == 0
        assert daemon_link._has_ended(quick.pid)
    finally:
        alive.kill()
        alive.wait()


def test_a_daemon_started_at_a_command_s_exit_waits_for_that_end(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    command = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(4)"])
    try:
        daemon_link.spawn(env["SHIPYARD_HOME"], 5, after=command.pid)
        time.sleep(2)
        assert status_code(env, tmp_path) == 1  # still waiting: not even listening
        command.wait()
        wait_until_serving(env, tmp_path)
    finally:
        command.kill()
        command.wait()
        stop_daemon(env, tmp_path)


def test_a_job_in_another_ci_service_or_in_pytest_starts_none(runtime_dir: Path) -> None:
    for marker in daemon_link.CI_MARKERS:
        environ = {"XDG_RUNTIME_DIR": str(runtime_dir), marker: "1"}
        assert daemon_link.auto_start(environ) is False
        assert daemon_link.auto_start(environ | {"SHIPYARD_DAEMON": "auto"}) is True


def test_off_means_no_command_is_served_even_by_a_running_daemon(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    for value in ("off", "OFF"):
        run([*LAUNCH, "projects", "list", "--json"], daemon | {"SHIPYARD_DAEMON": value}, tmp_path)
    run([*LAUNCH, "projects", "list", "--json"], daemon | {"SHIPYARD_DAEMON": "Auto "}, tmp_path)
    assert status(daemon, tmp_path)["served"] == 1
    # A value the settings refuse is refused by the command, never served.
    bad = run([*LAUNCH, "projects", "list"], daemon | {"SHIPYARD_DAEMON": "on"}, tmp_path, False)
    assert bad.returncode != 0
    assert status(daemon, tmp_path)["served"] == 1


def test_the_home_is_read_in_any_case(tmp_path: Path) -> None:
    home = str(tmp_path / "lower")
    assert daemon_link.resolved_home({"shipyard_home": home}, "/") == home


def test_a_tilde_in_the_home_is_read_as_the_settings_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.config import Settings

    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("SHIPYARD_HOME", "~/sy")
    monkeypatch.chdir(tmp_path)
    settings_home = str(Settings().home.resolve())
    assert settings_home == str(tmp_path / "~" / "sy")  # a folder named ~, not $HOME
    assert daemon_link.resolved_home(os.environ, str(tmp_path)) == settings_home


def test_an_idle_daemon_leaves_the_database_file_whole(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    import sqlite3

    run([*LAUNCH, "projects", "create", "walcheck"], daemon, tmp_path)
    assert status(daemon, tmp_path)["served"] == 1
    database = Path(daemon["SHIPYARD_HOME"]) / "shipyard.db"
    copy = tmp_path / "copy.db"
    shutil.copyfile(database, copy)  # the file alone, as a backup takes it
    with contextlib.closing(sqlite3.connect(copy)) as db:
        names = {name for (name,) in db.execute("SELECT name FROM projects")}
    assert "walcheck" in names
    assert not Path(f"{database}-wal").exists() or Path(f"{database}-wal").stat().st_size == 0


def test_a_daemon_that_cannot_start_is_not_started_again_at_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(env["SHIPYARD_HOME"])
    home.mkdir()
    (home / "shipyard.db").write_text("not a database")  # every start fails opening it
    auto = env | {"SHIPYARD_DAEMON": "auto"}
    run([*LAUNCH, "data", "list"], auto, tmp_path, check=False)
    log = home / "daemon.log"
    deadline = time.monotonic() + 60
    while "Traceback" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the daemon neither started nor failed"
        time.sleep(0.2)
    time.sleep(1)  # its stamp is written as it exits
    failures = log.read_text().count("Traceback")
    run([*LAUNCH, "data", "list"], auto, tmp_path, check=False)
    time.sleep(3)
    assert log.read_text().count("Traceback") == failures


def test_a_database_another_installation_migrated_is_not_served(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    import sqlite3

    database = Path(daemon["SHIPYARD_HOME"]) / "shipyard.db"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffnewer'")
    # In its own process the command refuses a revision it does not know: so here too.
    refused = run([*LAUNCH, "projects", "list"], daemon, tmp_path, check=False)
    assert refused.returncode != 0
    assert "ffffnewer" in refused.stderr + refused.stdout
    deadline = time.monotonic() + 30
    while status_code(daemon, tmp_path) == 0:
        assert time.monotonic() < deadline, "the daemon still runs"
        time.sleep(0.2)


def test_another_python_import_path_is_another_environment() -> None:
    base = {"SHIPYARD_HOME": "/h", "PATH": "/bin"}
    assert daemon_link.fingerprint(base) != daemon_link.fingerprint(
        base | {"PYTHONPATH": "/elsewhere"}
    )
    assert daemon_link.fingerprint(base) == daemon_link.fingerprint(base | {"TERM": "xterm"})


def test_a_database_restored_in_place_is_read_afresh(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    # The resolvers cached project names for the daemon's life: after `cp backup.db
    # shipyard.db` (same file, same revision) p2 still had its old id.
    database = Path(daemon["SHIPYARD_HOME"]) / "shipyard.db"
    run([*LAUNCH, "projects", "create", "p1"], daemon, tmp_path)
    backup = tmp_path / "backup.db"
    shutil.copyfile(database, backup)  # the idle daemon holds no connection
    for name in ("p2", "p3"):
        run([*LAUNCH, "projects", "create", name], daemon, tmp_path)
        run([*LAUNCH, "data", "list", "-p", name], daemon, tmp_path)  # its id resolved
    inode = database.stat().st_ino
    shutil.copyfile(backup, database)  # restored in place
    assert database.stat().st_ino == inode
    served = run([*LAUNCH, "data", "list", "-p", "p2"], daemon, tmp_path, check=False)
    local = run([*LOCAL, "data", "list", "-p", "p2"], daemon, tmp_path, check=False)
    assert (served.returncode, served.stderr) == (local.returncode, local.stderr)
    assert "p2" in served.stderr and served.returncode == 1
    # Made again in the other order, each name has the other's old id.
    for name in ("p3", "p2"):
        run([*LAUNCH, "projects", "create", name], daemon, tmp_path)
    run([*LAUNCH, "data", "create", "made_for_p2", "-p", "p2"], daemon, tmp_path)
    in_p2 = run([*LOCAL, "data", "list", "-p", "p2", "--json"], daemon, tmp_path)
    assert [d["name"] for d in json.loads(in_p2.stdout)["datasets"]] == ["made_for_p2"]
    assert status(daemon, tmp_path)["served"] == 9  # all of them served


def test_a_cache_of_stored_data_is_forgotten_and_others_are_kept() -> None:
    from shipyard.cache import BoundedCache, DataDict, forget_data, holds_data

    data, statements = holds_data(BoundedCache[int](10)), BoundedCache[int](10)
    names = holds_data(DataDict())
    data.put("p", 1)
    statements.put("q", 2)
    names["x"] = 3
    forget_data()
    assert (data.get("p"), statements.get("q"), dict(names)) == (None, 2, {})


def test_a_relative_or_empty_python_path_entry_starts_and_uses_no_daemon(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A daemon started in the home would make `src` <home>/src, the command <cwd>/src.
    import_path = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), "src"]))
    relative = env | {"SHIPYARD_DAEMON": "auto", "PYTHONPATH": import_path}
    try:
        run([*LAUNCH, "data", "list", "--json"], relative, tmp_path)
        time.sleep(2)  # a daemon would have been started at the command's exit
        assert not (tmp_path / "home" / "daemon.log").exists()
        assert status_code(relative, tmp_path) == 1
    finally:
        stop_daemon(env, tmp_path)
    refused = run([*LAUNCH, "daemon", "start"], relative, tmp_path, check=False)
    assert refused.returncode == 2
    assert "PYTHONPATH" in refused.stderr
    assert daemon_link.relative_import_path({"PYTHONPATH": "/a:"})
    assert daemon_link.relative_import_path({"PYTHONPATH": ":/a"})
    assert not daemon_link.relative_import_path({"PYTHONPATH": "/a:/b"})
    assert not daemon_link.relative_import_path({"PYTHONPATH": ""})  # Python ignores it


def test_a_daemon_whose_import_path_finds_another_shipyard_never_starts(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another copy of Shipyard on the daemon's import path would warm up and migrate
    # the home's database with its own code: the daemon checks before importing it.
    other = tmp_path / "other" / "shipyard"
    (other / "cli").mkdir(parents=True)
    marker = tmp_path / "other-imported"
    (other / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (other / "cli" / "__init__.py").write_text("")
    (other / "cli" / "daemon_link.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "other"))
    home = tmp_path / "home"
    process = daemon_link.spawn(str(home), 5)
    try:
        assert process.wait(timeout=60) != 0
    finally:
        process.kill()
        stop_daemon(env, tmp_path)
    assert not marker.exists()
    assert not (home / "shipyard.db").exists()
    assert "another installation" in (home / "daemon.log").read_text()


def test_paths_of_the_caller_s_own_descriptors_are_not_served(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    suite = '[{"kind": "not_null", "column": "id"}]'
    created = subprocess.run(
        [*LAUNCH, "data", "create", "s1", "-e", "/dev/stdin"],
        env=daemon, cwd=tmp_path, input=suite, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "1 expectation" in created.stdout
    read, write = os.pipe()
    os.write(write, suite.encode())
    os.close(write)
    try:
        fd_cmd = [*LAUNCH, "data", "create", "s2", f"--expectations=/dev/fd/{read}"]
        by_fd = subprocess.run(
            fd_cmd, env=daemon, cwd=tmp_path, pass_fds=(read,), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(read)
    assert by_fd.returncode == 0, by_fd.stderr
    assert status(daemon, tmp_path)["served"] == 0  # both ran in their own process
    link = tmp_path / "input"
    link.symlink_to("/proc/self/fd/0")
    assert daemon_link.names_own_descriptor(["data", "ingest", "x", "input"], str(tmp_path))
    assert daemon_link.names_own_descriptor(["-f/dev/stdin"], "/")
    assert not daemon_link.names_own_descriptor(["data", "ingest", "x", "a.csv"], "/")


def test_a_caller_without_a_folder_or_an_output_runs_the_command_itself(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    launch = " ".join(LAUNCH)
    gone = subprocess.run(
        ["sh", "-c", f"mkdir gone && cd gone && rmdir ../gone && exec {launch} data list --json"],
        env=daemon, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["datasets"] == []
    closed = subprocess.run(
        ["sh", "-c", f"exec {launch} data list >&-"],
        env=daemon, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    local = subprocess.run(
        ["sh", "-c", f"exec {' '.join(LOCAL)} data list >&-"],
        env=daemon, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (closed.returncode, closed.stderr) == (local.returncode, local.stderr)
    assert "Traceback" not in closed.stderr


def test_start_beside_a_daemon_still_starting_succeeds(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon started at the previous command's exit holds the home's lock before it
    # answers: the one `daemon start` spawns loses the lock and exits, and start waits
    # for the other rather than fail.
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    home = str((tmp_path / "home").resolve())
    first = daemon_link.spawn(home, 5)
    start = None
    try:
        deadline = time.monotonic() + 60
        while not daemon_link.lock_held(home):
            assert time.monotonic() < deadline, "the first daemon never took its lock"
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # it has the lock: hold it there
        start = subprocess.Popen(
            [*LAUNCH, "daemon", "start", "--wait", "90"], env=env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        log = Path(home) / "daemon.log"
        while "already serves" not in log.read_text():
            assert time.monotonic() < deadline, "the spawned daemon did not lose the lock"
            assert start.poll() is None, start.communicate()
            time.sleep(0.1)
        first.send_signal(signal.SIGCONT)
        out, err = start.communicate(timeout=90)
        assert start.returncode == 0, err
        assert f"daemon {first.pid} already serves" in out
    finally:
        first.send_signal(signal.SIGCONT)
        if start is not None:
            start.kill()
        stop_daemon(env, tmp_path)
        first.kill()
        first.wait()


def test_a_daemon_log_that_is_not_a_regular_file_means_no_daemon(
    env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.mkfifo(home / "daemon.log")  # opening it for writing would wait for a reader
    auto = env | {"SHIPYARD_DAEMON": "auto"}
    started = time.monotonic()
    result = subprocess.run(
        [*LAUNCH, "data", "list", "--json"], env=auto, cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    refused = subprocess.run(
        [*LAUNCH, "daemon", "start"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "daemon.log" in refused.stderr
    assert status_code(env, tmp_path) == 1


def test_rotated_credentials_in_files_make_it_decline_and_exit(
    env: dict[str, str], tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id=old\naws_secret_access_key=old\n")
    s3 = env | {
        "SHIPYARD_BLOB_URL": "s3://bucket/blobs",
        "SHIPYARD_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
    }
    run([*LAUNCH, "daemon", "start", "--idle-minutes", "5"], s3, tmp_path)
    try:
        run([*LAUNCH, "projects", "list", "--json"], s3, tmp_path)
        assert status(s3, tmp_path)["served"] == 1
        # The S3 client read the old key; a new process would read the new one.
        creds.write_text("[default]\naws_access_key_id=new\naws_secret_access_key=new\n")
        run([*LAUNCH, "projects", "list", "--json"], s3, tmp_path)
        deadline = time.monotonic() + 30
        while status_code(s3, tmp_path) == 0:
            reply = status(s3, tmp_path)
            assert reply["served"] == 1, "served with the credentials of before"
            assert time.monotonic() < deadline, "the daemon still runs"
            time.sleep(0.2)
    finally:
        stop_daemon(s3, tmp_path)


def test_a_folder_the_daemon_cannot_enter_is_declined_and_the_daemon_lives(
    env: dict[str, str], tmp_path: Path
) -> None:
    prefix = as_plain_user()  # root writes and enters any folder
    run([*prefix, *LAUNCH, "daemon", "start", "--idle-minutes", "5"], env, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o000)
    try:
        launch = " ".join(LAUNCH)
        result = subprocess.run(
            ["sh", "-c", f"cd locked && exec {launch} data list --json"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if os.geteuid() != 0:
            pytest.skip("this user cannot enter it either")  # pragma: no cover
        assert result.returncode == 0, result.stderr  # in its own process
        assert json.loads(result.stdout)["datasets"] == []
        reply = status(env, tmp_path)  # still running
        assert (reply["served"], reply["declined"]) == (0, 1)
    finally:
        locked.chmod(0o700)
        stop_daemon(env, tmp_path)


def test_a_daemon_that_does_not_answer_leaves_the_command_to_the_caller(
    daemon: dict[str, str], tmp_path: Path
) -> None:
    pid = status(daemon, tmp_path)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        made = run([*LAUNCH, "projects", "create", "once"], daemon, tmp_path)
        assert time.monotonic() - started < 60
        assert "once" in made.stdout
    finally:
        os.kill(pid, signal.SIGCONT)
    # Resumed, the daemon finds that caller gone and does not run its command again.
    time.sleep(1)
    assert status(daemon, tmp_path)["served"] == 0
    listed = run([*LOCAL, "projects", "list", "--json"], daemon, tmp_path)
    assert listed.stdout.count('"once"') == 1


def test_served_output_uses_the_caller_s_encoding(env: dict[str, str], tmp_path: Path) -> None:
    latin = env | {"PYTHONIOENCODING": "latin-1"}
    run([*LOCAL, "data", "create", "first", "-d", "\u00e9t\u00e9"], latin, tmp_path)
    run([*LAUNCH, "daemon", "start", "--idle-minutes", "5"], latin, tmp_path)
    try:
        served = subprocess.run([*LAUNCH, "data", "list"], env=latin, cwd=tmp_path,
                                capture_output=True, timeout=120)  # fmt: skip
        local = subprocess.run([*LOCAL, "data", "list"], env=latin, cwd=tmp_path,
                               capture_output=True, timeout=120)  # fmt: skip
        assert served.stdout == local.stdout
        assert "\u00e9t\u00e9".encode("latin-1") in served.stdout
        assert status(latin, tmp_path)["served"] == 1
    finally:
        stop_daemon(latin, tmp_path)
