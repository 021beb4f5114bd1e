"""The CLI's side of the command daemon: where its socket is, what a request carries,
and how a command's output comes back. Standard library only: this runs before the
CLI has imported anything else, and a command the daemon serves imports nothing more.

``shipyard daemon start`` leaves a process that has imported the CLI's whole stack
(typer, rich, pydantic, SQLAlchemy, FastAPI, pyarrow) and opened the embedded stores of
one ``SHIPYARD_HOME``. A command then costs a Python start-up and the work itself,
instead of ~0.7-1 s of imports first (see ``cli/daemon.py`` for the other side).

A request is served only when it would run the same way in the daemon as in the
caller: same user, same resolved home, same settings and credentials in the
environment (:func:`fingerprint`), a command group the daemon serves
(:data:`SERVED_GROUPS`), and the daemon idle. Otherwise the daemon declines and the
command runs in the caller's process as it always did; a missing, stale or dead daemon
is the same as none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import sys

# Not typing's: importing typing costs ~5 ms, which every served command would pay.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import BinaryIO

# Values of ``CI`` that mean "not in CI" (anything else set means CI).
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
# Where these are set a job runs the commands (CI services that do not set CI, a test
# in pytest): no daemon is started for them unless SHIPYARD_DAEMON=auto asks.
CI_MARKERS = (
    "JENKINS_URL", "TF_BUILD", "CODEBUILD_BUILD_ID", "TEAMCITY_VERSION", "BUILDKITE",
    "PYTEST_CURRENT_TEST",
)  # fmt: skip
# A Unix socket's path must fit in ~108 bytes.
MAX_SOCKET_PATH = 100
# After a daemon failed to start, commands start none for this long (seconds).
FAILED_START_PAUSE = 600.0
# Daemons that commands start by themselves, at most, per user (~170 MB each); more homes
# than that run their commands in their own processes until one of those exits.
MAX_AUTO_DAEMONS = 8
# Groups whose commands never prompt and never read stdin; the rest (server, db, users,
# tokens, import, daemon) run in the caller's process.
SERVED_GROUPS = frozenset({"data", "experiments", "runs", "models", "projects"})
# Environment variables that change what a command does or who does it. The daemon
# serves a caller only when these are exactly its own (SHIPYARD_HOME is compared
# resolved, by :func:`resolved_home`, since a relative home depends on the folder).
# Matched upper-cased (pydantic-settings reads SHIPYARD_* in any case). Locale, temp
# folder, proxies and CA bundles change what a command does too; FORCE_COLOR is read
# once, when typer is imported. PYTHON*: another import path (PYTHONPATH) may mean
# other packages than the daemon's.
FINGERPRINT_PREFIXES = (
    "SHIPYARD_", "AWS_", "PG", "LOGNAME", "USER", "HOME", "TMPDIR", "LANG", "LC_",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_", "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE", "FORCE_COLOR", "PYTHON",
)  # fmt: skip
# Whether the caller starts a daemon when it finds none: not a difference in the command.
NOT_FINGERPRINTED = frozenset({"SHIPYARD_HOME", "SHIPYARD_DAEMON"})
# How the output looks, which the daemon takes from the caller for the command's time.
PRESENTATION_VARS = (
    "COLUMNS", "LINES", "TERM", "NO_COLOR", "COLORTERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
)  # fmt: skip

# Paths that name the process' own descriptors: in the daemon they would be the
# daemon's (its stdin is /dev/null, its fd 3 a lock file), so such commands run here.
OWN_DESCRIPTORS = (
    "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/", "/proc/thread-self/",
)  # fmt: skip
# Frames from the daemon: a kind byte and a 4-byte length, then the payload. ACCEPTED
# comes first when the command will run there; until it does, the caller may still run
# the command itself (the daemon declined, was starting, or went away).
STDOUT, STDERR, EXIT, DECLINED, ACCEPTED = b"o", b"e", b"x", b"d", b"a"
# Frames a caller sends after its request: GO answers ACCEPTED (the caller is still
# there and will not run the command itself: a caller that gave up waiting for the
# first frame has run it here, and the daemon must not run it too); INTERRUPT: the user
# pressed Ctrl-C.
GO, INTERRUPT = b"g", b"i"
# How long a caller waits for the daemon's first frame (ACCEPTED or DECLINED) before it
# runs the command itself: a daemon stopped (SIGSTOP) or stuck holds no one up.
FIRST_FRAME_SECONDS = 3.0
_HEADER = struct.Struct("!cI")


def setting(environ: dict[str, str] | os._Environ[str], name: str) -> str | None:
    """The variable ``name`` (upper case) in any case, as pydantic-settings reads it."""
    if name in environ:
        return environ[name]
    return next((value for key, value in environ.items() if key.upper() == name), None)


def resolved_home(environ: dict[str, str] | os._Environ[str], cwd: str) -> str:
    """The absolute home a command in ``cwd`` would use (``SHIPYARD_HOME`` or ./.shipyard),
    read as the settings read it: a ``~`` is a folder of that name, not expanded."""
    home = setting(environ, "SHIPYARD_HOME") or ".shipyard"
    return os.path.realpath(os.path.join(cwd, home))


def fingerprint(environ: dict[str, str] | os._Environ[str]) -> str:
    """A hash of the variables a served command must share with the daemon (the home is
    compared resolved): a hash, so that no secret among them goes over the socket."""
    shared = sorted(
        (key, value)
        for key, value in environ.items()
        if key.upper().startswith(FINGERPRINT_PREFIXES) and key.upper() not in NOT_FINGERPRINTED
    )
    return hashlib.sha256(json.dumps(shared).encode()).hexdigest()


def peer_is_me(sock: socket.socket) -> bool:
    """Whether the process at the other end of ``sock`` runs as this user (where the OS
    says; elsewhere the socket's private folder is the guard)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


def socket_dir() -> str:
    """This user's folder of daemon sockets, private to them (0700): in the runtime
    folder, else in TMPDIR or /tmp (not ``tempfile``, which costs ~6 ms to import)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(base, f"shipyard-{os.getuid()}")


def socket_path(home: str) -> str:
    """The socket of the daemon for ``home`` (an absolute path): named by its hash, as a
    home's own path can be longer than a socket's name may be."""
    digest = hashlib.sha256(home.encode()).hexdigest()[:24]
    return os.path.join(socket_dir(), f"{digest}.sock")


def private_dir_ok(path: str) -> bool:
    """Whether ``path`` is a folder (not a link) owned by this user that no one else can
    enter: a socket there can only be this user's, as can a daemon that listens on it."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def send_frame(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    """Write one frame."""
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def read_frame(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """Read one frame; None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return kind, payload


def installation() -> list[str]:
    """Which Shipyard and which Python environment: a daemon started from another
    install (another checkout, another venv) runs other code and must not serve."""
    return [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sys.prefix]


def request_for(argv: list[str]) -> dict[str, object]:
    """What the daemon needs to run ``argv`` as this process would. Raises where this
    process has no current folder, or no stdout or stderr (then it runs the command)."""
    cwd = os.getcwd()
    return {
        "argv": argv,
        "cwd": cwd,
        "home": resolved_home(os.environ, cwd),
        "install": installation(),
        "env": fingerprint(os.environ),
        "presentation": _presentation(),
        "tty": {"stdout": sys.stdout.isatty(), "stderr": sys.stderr.isatty()},
        "streams": {
            name: [stream.encoding, stream.errors]
            for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr))
        },
        "umask": _umask(),
    }


def _umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it; put back at once
    os.umask(mask)
    return mask


def _presentation() -> dict[str, str]:
    """The caller's presentation variables, with COLUMNS set from its terminal where
    unset: the daemon has no terminal to ask."""
    found = {k: os.environ[k] for k in PRESENTATION_VARS if k in os.environ}
    if "COLUMNS" not in found:
        with contextlib.suppress(OSError, ValueError):
            found["COLUMNS"] = str(os.get_terminal_size(sys.stdout.fileno()).columns)
    return found


def _connect(home: str, timeout: float | None = None) -> socket.socket | None:
    """A connection to the daemon of ``home``: None where none listens, or where the
    socket's folder or the process behind it is not this user's."""
    return _connect_to(socket_path(home), timeout)


def _connect_to(path: str, timeout: float | None = None) -> socket.socket | None:
    if not hasattr(socket, "AF_UNIX") or not private_dir_ok(os.path.dirname(path)):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:  # no daemon, or one that has gone
        sock.close()
        return None
    if not peer_is_me(sock):
        sock.close()
        return None
    return sock


def forward(argv: list[str]) -> int | None:
    """Run the command ``argv`` in this home's daemon: its exit code, or None when no
    daemon serves it (none running, or it declined) and the caller must run it."""
    if not argv or argv[0] not in SERVED_GROUPS or os.environ.get("SHIPYARD_URL"):
        return None
    choice = daemon_setting(os.environ)
    if choice not in ("auto", None) or relative_store(os.environ):
        return None  # off, or a value the command's own process will refuse
    if relative_import_path(os.environ):
        return None  # its meaning depends on the folder: see relative_import_path
    try:
        request = request_for(argv)
        if names_own_descriptor(argv, str(request["cwd"])):
            return None
    except Exception:  # no current folder, a closed stdout: nothing the command needs
        return None
    home = str(request["home"])
    sock = _connect(home)
    if sock is None:
        if auto_start(os.environ) and len(socket_path(home)) < MAX_SOCKET_PATH:
            # This command runs here, the next ones there. Started once the command is
            # done: on two cores a daemon importing its stack beside the command slows
            # it by a third, and the user reads the output meanwhile.
            import atexit

            atexit.register(_spawn_quietly, home)
        return None
    try:
        return _relay(sock, request)
    finally:
        sock.close()


def relative_import_path(environ: dict[str, str] | os._Environ[str]) -> bool:
    """Whether ``PYTHONPATH`` has a relative or an empty entry (``src``, ``.``, the empty
    one of ``/x:`` that ``export PYTHONPATH=$PYTHONPATH:/x`` leaves): Python makes them
    absolute against the folder a process starts in, so a command and a daemon started
    elsewhere would import other code (another installation, which would migrate the
    database; modules in the home). Such commands run in their own process and start
    no daemon. (An empty ``PYTHONPATH`` is ignored, by Python as here.)"""
    value = environ.get("PYTHONPATH")
    if not value:
        return False
    return any(not os.path.isabs(entry) for entry in value.split(os.pathsep))


def names_own_descriptor(argv: list[str], cwd: str) -> bool:
    """Whether an argument (or an option's value: ``--file=X``, ``-fX``) names one of the
    process' own descriptors (``/dev/stdin``, ``/dev/fd/63`` of a process substitution,
    ``/proc/self/fd/0``), also through links: the daemon would open its own."""
    mine = (*OWN_DESCRIPTORS, f"/proc/{os.getpid()}/")
    themselves = {p.rstrip("/") for p in mine}  # "/dev/fd", "/proc/self" named whole
    for arg in argv:
        values = [arg, arg.partition("=")[2]]
        if arg.startswith("-") and not arg.startswith("--"):
            values.append(arg[2:])
        for value in filter(None, values):
            path = os.path.normpath(os.path.join(cwd, value))
            for _ in range(40):  # each link on the way, as open() follows them
                if path.startswith(mine) or path in themselves:
                    return True
                try:
                    target = os.readlink(path)
                except OSError:  # not a link (or not there)
                    break
                path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return False


def relative_store(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The variable that names a store by a path relative to the current folder
    (``SHIPYARD_DATABASE_URL=sqlite:///app.db``, ``SHIPYARD_BLOB_URL=blobs``, or
    ``~/blobs``: the settings do not expand ``~``), if any: a command opens it in its
    own folder, a daemon in the folder it opened it in, so such commands are not the
    daemon's to run."""
    for key, value in environ.items():
        name = key.upper()
        if name == "SHIPYARD_DATABASE_URL":
            path = sqlite_path(value)
            if path and not os.path.isabs(path) and path != ":memory:":
                return key
        elif name == "SHIPYARD_BLOB_URL" and value:
            path = value.removeprefix("file://")
            if "://" not in path and not os.path.isabs(path):
                return key
    return None


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (``sqlite:///a.db``, ``sqlite+pysqlite:////abs/a.db?x=1``:
    ``a.db``, ``/abs/a.db``); None for another database."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    return rest.split("?", 1)[0]


def auto_start(environ: dict[str, str] | os._Environ[str]) -> bool:
    """Whether a served command that finds no daemon for its home starts one.
    ``SHIPYARD_DAEMON``: ``auto`` yes, ``off`` no; unset, yes except in CI (the ``CI``
    variable set), where a job's commands are few and a process left behind for its
    idle time is in the way. Never where the OS has no Unix sockets, nor where the
    sockets' folder is someone else's (that daemon could never listen)."""
    choice = daemon_setting(environ)
    if relative_import_path(environ):
        return False
    if choice is None:
        in_ci = environ.get("CI", "").lower() not in FALSE_WORDS
        choice = "off" if in_ci or any(environ.get(k) for k in CI_MARKERS) else "auto"
    if choice != "auto" or not hasattr(socket, "AF_UNIX") or os.name != "posix":
        return False
    folder = socket_dir()
    return private_dir_ok(folder) or not os.path.lexists(folder)


def daemon_setting(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """``SHIPYARD_DAEMON`` as the settings read it: "auto", "off", None where unset; any
    other value is returned as it is (the command's own process refuses it)."""
    value = (setting(environ, "SHIPYARD_DAEMON") or "").strip().lower()
    return value or None


def lock_held(home: str) -> bool:
    """Whether a daemon holds the lock of ``home`` (it does from before it listens until
    it exits)."""
    return _locked(socket_path(home).removesuffix(".sock") + ".lock")


def _locked(path: str) -> bool:
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also lets go of the shared lock, if it was had
    return False


def running_daemons() -> int:
    """How many daemons of this user are alive: each holds its ``.lock`` for its life."""
    folder = socket_dir()
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".lock")]
    except OSError:
        return 0
    return sum(_locked(os.path.join(folder, name)) for name in names)


def _spawn_quietly(home: str) -> None:
    """Start the daemon of ``home`` for :func:`forward`, unless this user already has
    :data:`MAX_AUTO_DAEMONS` running (many short-lived homes, as in a test suite, would
    otherwise each keep one for its idle time), nor for a home the command did not make
    (`shipyard data --help` in any folder). A failure to start only costs the next
    command its start-up, so it is not reported here (the daemon logs its own)."""
    import time

    with contextlib.suppress(OSError):
        if not os.path.isdir(home) or running_daemons() >= MAX_AUTO_DAEMONS:
            return
        with contextlib.suppress(FileNotFoundError):
            if time.time() - os.stat(_failed_stamp(home)).st_mtime < FAILED_START_PAUSE:
                return  # the last one could not start: do not pay for it on each command
        spawn(home, after=os.getpid())


def _failed_stamp(home: str) -> str:
    return socket_path(home).removesuffix(".sock") + ".failed"


def spawn(
    home: str, idle_minutes: float | None = None, after: int | None = None
) -> subprocess.Popen[bytes]:
    """Start the daemon of ``home`` in the background, detached from this terminal, its
    output in ``<home>/daemon.log``; it is ready once :func:`ask` gets an answer. (If
    another one won the race to the socket, this one says so in the log and exits.)
    ``after``: a process (the command that starts it, as it exits) whose end the daemon
    awaits before it imports its stack: on two cores the imports beside the command's
    own shutdown made that command 0.2-0.3 s slower."""
    import subprocess

    if relative_import_path(os.environ):
        raise OSError("PYTHONPATH has a relative or empty entry: no daemon")
    os.makedirs(home, exist_ok=True)
    # This very file, run by its path (-P: its folder, and the home it starts in, are not
    # put on the import path): the code that checks, before importing anything else,
    # that the daemon's import path finds this installation's Shipyard
    # (see _daemon_main). It imports nothing heavy, so that it can wait first.
    cmd = [sys.executable, "-P", os.path.abspath(__file__), "--home", home]
    cmd += ["--install", json.dumps(installation())]
    if after is not None:
        cmd += ["--after", str(after)]
    if idle_minutes is not None:
        cmd += ["--idle-minutes", str(idle_minutes)]
    with open(_open_log(home), "ab") as log:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=home, start_new_session=True,
        )  # fmt: skip


def _open_log(home: str) -> int:
    """``<home>/daemon.log`` opened for appending: a regular file of this user's only,
    never through a link, and without blocking on a FIFO someone left in a shared home
    (OSError then: no daemon, rather than a command that hangs at its exit)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
    fd = os.open(os.path.join(home, "daemon.log"), flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise OSError(f"{home}/daemon.log is not a regular file of yours: no daemon")
    os.set_blocking(fd, True)
    return fd


def _relay(sock: socket.socket, request: dict[str, object]) -> int | None:
    """Send the request, then copy the command's output to ours until its exit code;
    None where the daemon did not take the command. On Ctrl-C, tell the daemon (the
    command stops as it would here) and wait for it to finish; on a second, leave."""
    try:
        # A daemon that does not answer soon (stopped, stuck) is as good as none.
        sock.settimeout(FIRST_FRAME_SECONDS)
        sock.sendall(json.dumps(request).encode() + b"\n")
        stream = sock.makefile("rb")
        first = read_frame(stream)
        if first is None or first[0] != ACCEPTED:  # declined, starting or gone: run it here
            return None
        # From here the command is the daemon's: it runs it once it reads GO, and if this
        # caller left before, not at all.
        send_frame(sock, GO)
        sock.settimeout(None)
    except OSError:  # a timeout too
        return None
    outputs = {STDOUT: sys.stdout.buffer, STDERR: sys.stderr.buffer}
    interrupted = broken = False
    while True:
        try:
            frame = read_frame(stream)
        except KeyboardInterrupt:
            if interrupted:
                return 130
            interrupted = True
            try:
                send_frame(sock, INTERRUPT)
            except OSError:
                return 130
            continue
        except OSError:
            frame = None
        if frame is None:  # the daemon died mid-command: say so rather than guess
            sys.stderr.write("error: the shipyard daemon ended before the command did\n")
            return 1
        kind, payload = frame
        if kind == EXIT:
            if broken:
                return 1  # as click exits when its output pipe closes
            with contextlib.suppress(BrokenPipeError):
                sys.stdout.flush()
            return int(payload)
        try:
            out = outputs[kind]
            out.write(payload)
            out.flush()
        except BrokenPipeError:  # `... | head`: read on, so the command ends as it would
            broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, outputs[kind].fileno())
            os.close(devnull)


def ask(home: str, op: str, timeout: float = 15.0) -> dict[str, object] | None:
    """Send the daemon of ``home`` a control request (``status`` or ``stop``): its
    reply, or None when no daemon answers."""
    return _ask_at(socket_path(home), op, timeout)


def sockets() -> list[str]:
    """The sockets in this user's folder: its daemons, and any a killed one left."""
    folder = socket_dir()
    if not private_dir_ok(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".sock"))


def ask_all(op: str, timeout: float = 15.0) -> list[dict[str, object]]:
    """Send every daemon of this user (all homes) a control request: their replies."""
    replies = (_ask_at(path, op, timeout) for path in sockets())
    return [reply for reply in replies if reply is not None]


def _ask_at(path: str, op: str, timeout: float) -> dict[str, object] | None:
    sock = _connect_to(path, timeout)
    if sock is None:
        return None
    try:
        sock.sendall(json.dumps({"op": op}).encode() + b"\n")
        frame = read_frame(sock.makefile("rb"))
    except OSError:
        return None
    finally:
        sock.close()
    if frame is None or frame[0] != STDOUT:
        return None
    return json.loads(frame[1])


def _has_ended(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie its parent has yet to reap counts)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _daemon_main(argv: list[str]) -> None:
    """``python -P .../daemon_link.py --home H --install JSON [--after PID] [...]``: wait
    (up to 10 s) for process PID to end, check that this import path finds the
    installation JSON (the spawner's) and run the daemon with the other arguments."""
    import time

    if "--install" in argv:
        at = argv.index("--install")
        expected = json.loads(argv[at + 1])
        del argv[at : at + 2]
        found = _importable_installation()
        if found != expected:
            # Another copy of Shipyard would import, warm up and migrate the database.
            sys.exit(f"the import path finds another installation ({found}): no daemon")
    if "--after" in argv:
        at = argv.index("--after")
        pid = int(argv[at + 1])
        del argv[at : at + 2]
        deadline = time.monotonic() + 10
        while not _has_ended(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    from shipyard.cli.daemon import main

    try:
        main(argv)
    except Exception:
        # Remembered, so that commands do not start a daemon that fails each time.
        home = argv[argv.index("--home") + 1]
        with contextlib.suppress(OSError):
            os.makedirs(socket_dir(), mode=0o700, exist_ok=True)
            with open(_failed_stamp(home), "w") as stamp:
                stamp.write(f"{os.getpid()}\n")
        raise


def _importable_installation() -> list[str] | None:
    """:func:`installation` as ``import shipyard`` would find it on this import path,
    without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("shipyard")
    if spec is None or spec.origin is None:
        return None
    return [os.path.dirname(os.path.abspath(spec.origin)), sys.prefix]


if __name__ == "__main__":
    _daemon_main(sys.argv[1:])
