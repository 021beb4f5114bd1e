"""The command daemon: one long-lived process per ``SHIPYARD_HOME`` that runs the CLI's
commands for callers, so that a command does not pay for importing the stack first.

``shipyard daemon start`` runs this module detached. It imports what commands use,
opens the home's embedded stores, and listens on a Unix socket in a folder only its
user can enter (``daemon_link.socket_path``). For each caller it checks, in the thread
that accepts connections:

- the caller is the same user (the socket's peer credentials, where the OS gives them);
- the caller's resolved home and fingerprint (settings, credentials, user) are the
  daemon's own, and its command group is one the daemon serves;
- Shipyard's code on disk is the code the daemon imported (else it declines and exits);
- no command is running (it declines rather than queue: a long ingest never holds up
  a ``data list`` in another terminal, which then runs in its own process).

Then the main thread runs the command as the ``shipyard`` entry point would, in the
caller's folder, with stdout and stderr sent back over the socket as frames and the
caller's terminal width, colour settings and tty-ness. Ctrl-C in the caller becomes a
SIGINT here, so the command stops and cleans up as it would in its own process.
Commands run one at a time: they share the process' folder, streams and environment.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import fcntl
import functools
import io
import json
import os
import queue
import signal
import socket
import stat
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click
import typer

from shipyard.cache import forget_data
from shipyard.cli import daemon_link as link
from shipyard.client.client import close_embedded

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.db import Database

DEFAULT_IDLE_MINUTES = 30.0
HOME_LOCK = "daemon.lock"
"""Held by the home's daemon for its life: one daemon per home, wherever its socket is."""
HANDSHAKE_SECONDS = 5.0
# How often an idle daemon looks whether its home is still there (a test suite's
# temporary homes come and go; their daemons should go with them).
HOME_CHECK_SECONDS = 10.0
# What an ingest imports beyond what the warm-up's commands load: imported at start so
# that no served ingest pays for it.
WARM_MODULES = (
    "shipyard.datasets.ingest",
    "shipyard.datasets.file_source",
    "shipyard.datasets.validation",
    "pyarrow.parquet",
    "pyarrow.compute",
)


# Read-only commands run at start, so each domain's routes are built before a caller's.
WARM_LISTINGS = (
    ("projects", "list"),
    ("experiments", "list"),
    ("models", "list"),
    ("data", "list"),
)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def packages_stamp() -> tuple[int, ...]:
    """The mtimes of the folders Python imports from: installing, upgrading or removing
    a package (pyarrow in the same venv, say) changes its folder's entries."""
    stamps = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            stamps.append(os.stat(entry or ".").st_mtime_ns)
    return tuple(stamps)


def code_stamp(root: Path = PACKAGE_ROOT) -> tuple[int, int]:
    """How many source files ``root`` (Shipyard's package) holds, and the newest one's
    status-change time (ctime): a daemon whose stamp no longer matches the disk runs old
    code, and must not serve. Not the mtime, which ``rsync -a``, ``cp -p``, ``tar x`` or
    ``unzip`` set back to the file's own; the ctime of a file written, replaced or
    touched is always now."""
    count, newest = 0, 0
    for path in root.rglob("*.py"):
        count += 1
        newest = max(newest, path.stat().st_ctime_ns)
    return count, newest


def credential_files(settings: Settings) -> list[str]:
    """The files the blob store's credentials may come from: AWS's shared credentials
    and config files, where the blob store is S3 and its key is not in the settings.
    The S3 client reads them once; rotated keys written there must reach the commands,
    as a new process would read them."""
    if not settings.resolved_blob_url.startswith("s3://") or settings.s3_access_key_id:
        return []
    return [
        os.path.expanduser(os.environ.get(variable) or default)
        for variable, default in (
            ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
            ("AWS_CONFIG_FILE", "~/.aws/config"),
        )
    ]


def files_stamp(paths: list[str]) -> tuple[tuple[int, ...] | None, ...]:
    """What changes when any of ``paths`` is written, replaced, made or removed."""
    stamps: list[tuple[int, ...] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(stamps)


def store_paths(home: str, db: Database) -> list[str]:
    """The home folder and, where the metadata is embedded, its SQLite database file.
    A daemon keeps the database open: once the home is deleted, or made anew, its stores
    are not the ones a command's own process would open, and it must not serve (nor keep
    running for a home that is gone)."""
    database = db.url.database if db.is_sqlite else None
    return [home, database] if database and database != ":memory:" else [home]


def identity(paths: list[str]) -> tuple[tuple[int, int], ...]:
    """The (device, inode) of each path; OSError where one is missing."""
    return tuple((info.st_dev, info.st_ino) for info in map(os.stat, paths))


class _FrameWriter(io.BufferedIOBase):
    """A raw stream whose writes go to the caller as frames of one kind; ``isatty`` is
    the caller's, so rich and typer format as they would in the caller's process."""

    def __init__(self, conn: socket.socket, lock: threading.Lock, kind: bytes, tty: bool):
        self.conn, self.lock, self.kind, self.tty = conn, lock, kind, tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, data: Any) -> int:
        payload = bytes(data)
        with self.lock, contextlib.suppress(OSError):  # a caller that left reads nothing
            link.send_frame(self.conn, self.kind, payload)
        return len(payload)


@dataclass
class _Counts:
    started: float = field(default_factory=time.time)
    served: int = 0
    declined: int = 0
    last_declined: str = ""


@dataclass
class _Job:
    """One caller's command: its connection, the reader its request came through (which
    may hold what it sent next), and whether the caller interrupted it."""

    conn: socket.socket
    reader: BinaryIO
    request: dict[str, Any]
    interrupted: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    released: bool = False  # the daemon no longer counts it as the running command


class CommandDaemon:
    """Serves the commands of callers whose home is ``home``, until idle for
    ``idle_seconds`` or told to stop. Construct, :meth:`start_accepting` (callers are
    declined as "starting" until :attr:`ready` is set), then :meth:`serve`."""

    def __init__(self, home: str, idle_seconds: float) -> None:
        self.home = home
        self.idle_seconds = idle_seconds
        self.path = link.socket_path(home)
        self.env = link.fingerprint(os.environ)
        self.stamp = (code_stamp(), packages_stamp())
        # Before the warm-up: the S3 client may read the credentials files then.
        self.credentials = credential_files(_settings())
        self.credentials_stamp = files_stamp(self.credentials)
        # What the warm-up opened: the metadata store, the home and database file,
        # and their identity (see :meth:`opened`).
        self.db: Database | None = None
        self.store_paths: list[str] = []
        self.stores: tuple[tuple[int, int], ...] = ()
        self.counts = _Counts()
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.ready = threading.Event()
        self.busy = False
        self.closing = False
        self.state_lock = threading.Lock()  # busy, closing, and what is queued
        self.current: _Job | None = None  # set by the main thread around a command
        self._lock_file = self._exclusive()
        self._home_lock = self._home_exclusive()
        self.listener = self._listen()

    def _home_exclusive(self) -> int:
        """Hold ``<home>/daemon.lock`` too: the socket's folder depends on the caller's
        XDG_RUNTIME_DIR or TMPDIR (an ssh session and a cron job may differ), so the
        lock beside the socket alone let two daemons serve one home. Opened as the log
        is: a regular file of this user's, never through a link."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(os.path.join(self.home, HOME_LOCK), flags, 0o600)
        except OSError as exc:
            raise SystemExit(f"cannot lock {self.home}: {exc}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            os.close(fd)
            raise SystemExit(f"{self.home}/{HOME_LOCK} is not a regular file of yours")
        return self._held(fd)

    def _held(self, fd: int) -> int:
        """``fd``, a lock file's, locked for this daemon's life; SystemExit when another
        daemon holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SystemExit(f"a daemon already serves {self.home}") from None
        return fd

    def _exclusive(self) -> int:
        """Hold this home's lock for the daemon's life: of two daemons started at once,
        one serves and the other exits, and neither removes the other's socket."""
        folder = os.path.dirname(self.path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not link.private_dir_ok(folder):
            raise SystemExit(f"refusing to listen in {folder}: it must be yours, mode 0700")
        fd = os.open(self.path.removesuffix(".sock") + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        return self._held(fd)

    def _listen(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):  # a socket a dead daemon left
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        return listener

    # -- the accepting thread ------------------------------------------------------

    def start_accepting(self) -> None:
        """Answer callers from now on (declining commands until :attr:`ready`)."""
        threading.Thread(target=self._accept_loop, name="daemon-accept", daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the daemon is ending
                return
            try:
                self._admit(conn)
            except Exception:  # a caller that breaks the protocol loses only its request
                # To the daemon's log: sys.stderr may be a running command's caller.
                traceback.print_exc(file=sys.__stderr__)
                conn.close()

    def _admit(self, conn: socket.socket) -> None:
        if not link.peer_is_me(conn):
            conn.close()
            return
        conn.settimeout(HANDSHAKE_SECONDS)  # a caller that sends nothing holds no one up
        reader = conn.makefile("rb")
        line = reader.readline(1 << 20)
        conn.settimeout(None)
        request = json.loads(line)
        op = request.get("op", "run")
        if op == "status":
            self._reply(conn, json.dumps(self.status()).encode())
        elif op == "stop":
            self.jobs.put(None)  # first: the caller may hang up before the reply ends
            self._reply(conn, json.dumps({"stopping": True}).encode())
        else:
            reason = self._queue(_Job(conn, reader, request))
            if reason:
                self._refuse(conn, reason)
                if reason in ("code changed", "home changed", "credentials changed"):
                    self.jobs.put(None)

    def _queue(self, job: _Job) -> str:
        """Queue ``job`` for the main thread, or say why not."""
        request = job.request
        argv = request.get("argv") or []
        if not argv or argv[0] not in link.SERVED_GROUPS:
            return "command not served"
        if request.get("home") != self.home:
            return "another home"
        if request.get("install") != link.installation():
            return "another installation"
        if request.get("env") != self.env:
            return "another environment"
        cwd = str(request.get("cwd"))
        if not os.path.isdir(cwd) or not os.access(cwd, os.X_OK):
            return "cannot enter the folder"  # the main thread's chdir would fail
        if not self.ready.is_set():
            return "starting"
        try:
            if (code_stamp(), packages_stamp()) != self.stamp:
                return "code changed"
        except OSError:  # a file went while it was read: code is changing
            return "code changed"
        if not self.home_unchanged():
            return "home changed"
        if files_stamp(self.credentials) != self.credentials_stamp:
            return "credentials changed"
        with self.state_lock:
            if self.closing:
                return "stopping"
            if self.busy:
                return "busy"
            self.busy = True
            self.jobs.put(job)  # under the lock: a closing daemon finds it and declines it
        return ""

    def opened(self, home: str) -> None:
        """Remember the stores the warm-up opened for ``home``."""
        from shipyard.client.client import embedded_platform

        self.db = embedded_platform(_settings()).db
        self.store_paths = store_paths(home, self.db)
        self.stores = identity(self.store_paths)

    def _release(self, job: _Job) -> None:
        """``job`` no longer holds the daemon (once): the next caller is queued, not
        declined 'busy'. Released before its exit code is sent, so that a script's next
        command, which may come as soon as that code arrives, is not declined while the
        daemon closes its connections (it runs once they are closed)."""
        with self.state_lock:
            if not job.released:
                job.released = True
                self.busy = False

    def _refuse(self, conn: socket.socket, reason: str) -> None:
        self.counts.declined += 1
        self.counts.last_declined = reason
        _decline(conn, reason)

    def database_current(self) -> bool:
        """Whether the home's database is still at this code's revision (in the main
        thread, before a command: the command would open it anyway)."""
        from shipyard.db import migrate

        try:
            return self.db is not None and migrate.at_head(self.db)
        except Exception:  # unreadable now: the command's own process says why
            return False

    def home_unchanged(self) -> bool:
        """Whether the home and its database are still the ones the daemon opened."""
        try:
            return identity(self.store_paths) == self.stores
        except OSError:
            return False

    def _reply(self, conn: socket.socket, payload: bytes) -> None:
        # ``ask`` reads the first frame and hangs up: the exit frame may find no one there.
        with contextlib.suppress(OSError):
            link.send_frame(conn, link.STDOUT, payload)
            link.send_frame(conn, link.EXIT, b"0")
        conn.close()

    def status(self) -> dict[str, Any]:
        """What ``shipyard daemon status`` shows."""
        return {
            "pid": os.getpid(),
            "home": self.home,
            "socket": self.path,
            "started": self.counts.started,
            "served": self.counts.served,
            "declined": self.counts.declined,
            "last_declined": self.counts.last_declined,
            "busy": self.busy,
            "ready": self.ready.is_set(),
            "env": self.env,
            "install": link.installation(),
            "idle_minutes": self.idle_seconds / 60,
        }

    # -- the main thread -----------------------------------------------------------

    def _on_sigint(self, *_: object) -> None:
        # Runs in the main thread: only the command its caller interrupted is stopped.
        job = self.current
        if job is not None and job.interrupted.is_set():
            raise KeyboardInterrupt

    def _on_sigterm(self, *_: object) -> None:
        # Stop after the running command, if any. Not put from here: the main thread may
        # hold the queue's lock in the middle of `get`.
        threading.Thread(target=self.jobs.put, args=(None,)).start()

    def serve(self) -> None:
        """Run queued commands until idle too long or stopped; then decline what is
        still queued and remove the socket."""
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            idle_since = time.monotonic()
            while True:
                left = idle_since + self.idle_seconds - time.monotonic()
                if left <= 0:
                    return
                try:
                    job = self.jobs.get(timeout=min(left, HOME_CHECK_SECONDS))
                except queue.Empty:
                    if not self.home_unchanged():
                        print("the home has gone or changed: stopping", file=sys.__stderr__)
                        return
                    continue
                if job is None:
                    return
                changed = False
                try:
                    changed = not self.database_current()
                    if changed:
                        self._refuse(job.conn, "database changed")
                    else:
                        self._run(job)
                except KeyboardInterrupt:  # a second Ctrl-C, as the command ended
                    pass
                finally:
                    job.conn.close()
                    # Idle, the daemon holds no SQLite connection: the write-ahead log
                    # is folded into the database file, so that a copy of the file is
                    # whole and a file restored over it is what the next command reads.
                    close_embedded(sqlite_only=True)
                    self._release(job)
                if job.interrupted.is_set():
                    # An interrupted command may leave a request running in the kept
                    # client; a fresh process is the safe place for the next one.
                    print("a command was interrupted: stopping", file=sys.__stderr__)
                    return
                if changed:
                    # Migrated by another installation, or restored from an older copy:
                    # the caller's own process brings it to this code's revision or
                    # says why not; the next daemon starts on what it finds.
                    print("the database's revision changed: stopping", file=sys.__stderr__)
                    return
                idle_since = time.monotonic()
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting, decline what is queued, remove the socket."""
        with self.state_lock:
            self.closing = True
        self.listener.close()
        while True:  # callers admitted as the daemon stopped run their command themselves
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                _decline(job.conn, "stopping")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # ours: no other daemon binds it while we hold the lock

    def _run(self, job: _Job) -> None:
        """Run ``job`` in the caller's folder; declined (never accepted, so the caller
        runs it) where that cannot be done as its own process would."""
        request = job.request
        home_folder = os.getcwd()
        try:
            umask = int(request.get("umask", 0o022))
            streams = {
                name: _stream_codec(request, name)  # the caller's encoding and errors
                for name in ("stdout", "stderr")
            }
            os.chdir(request["cwd"])  # one it cannot enter (no search permission, gone)
        except (OSError, ValueError, TypeError, KeyError, LookupError):
            self._refuse(job.conn, "cannot run it as the caller")
            return
        try:
            self._accepted(job, umask, streams)
        finally:
            os.chdir(home_folder)

    def _accepted(self, job: _Job, umask: int, streams: dict[str, tuple[str, str]]) -> None:
        lock = threading.Lock()
        try:
            link.send_frame(job.conn, link.ACCEPTED)
            # The caller's GO: it is still there and leaves the command to us.
            job.conn.settimeout(HANDSHAKE_SECONDS)
            go = link.read_frame(job.reader)
            job.conn.settimeout(None)
        except OSError:  # the caller left before its command began: nothing to run
            go = None
        if go is None or go[0] != link.GO:
            with contextlib.suppress(OSError):  # its reader holds the socket open
                job.conn.shutdown(socket.SHUT_RDWR)
            return
        tty = job.request.get("tty") or {}
        stdout, stderr = (
            io.TextIOWrapper(
                _FrameWriter(job.conn, lock, kind, bool(tty.get(name))),
                encoding=streams[name][0],
                errors=streams[name][1],
                write_through=True,
            )  # fmt: skip
            for kind, name in ((link.STDOUT, "stdout"), (link.STDERR, "stderr"))
        )
        threading.Thread(target=_watch, args=(job,), daemon=True).start()
        self.counts.served += 1
        with _as_caller(job.request, umask, stdout, stderr):
            self.current = job
            try:
                # As a new process: no cache of stored data from before this command
                # (the database may have been restored or replaced since).
                forget_data()
                code = run_command(list(job.request["argv"]))
            finally:
                job.done.set()
                self.current = None
            stdout.flush()
            stderr.flush()
        if not job.interrupted.is_set():  # an interrupted one stops the daemon: no next
            self._release(job)
        with lock, contextlib.suppress(OSError):
            link.send_frame(job.conn, link.EXIT, str(code).encode())


def _settings() -> Settings:
    from shipyard.config import Settings

    return Settings()


def _stream_codec(request: dict[str, Any], name: str) -> tuple[str, str]:
    """The encoding and error handler of the caller's stream ``name`` (checked: an unknown
    one raises LookupError); UTF-8 with replacement from a caller that sent none."""
    encoding, errors = (request.get("streams") or {}).get(name) or ("utf-8", "replace")
    codecs.lookup(str(encoding))
    codecs.lookup_error(str(errors))
    return str(encoding), str(errors)


def _decline(conn: socket.socket, reason: str) -> None:
    with contextlib.suppress(OSError):
        link.send_frame(conn, link.DECLINED, reason.encode())
    conn.close()


def _watch(job: _Job) -> None:
    """Turn the caller's Ctrl-C (or its going away) into SIGINT while its command runs;
    Python raises KeyboardInterrupt in the main thread, as in the caller's process."""
    try:
        frame = link.read_frame(job.reader)
    except OSError:
        frame = None
    # Its end of the stream also comes once the command is done and the caller leaves.
    if (frame is None or frame[0] == link.INTERRUPT) and not job.done.is_set():
        job.interrupted.set()
        os.kill(os.getpid(), signal.SIGINT)


@contextlib.contextmanager
def _as_caller(
    request: dict[str, Any], umask: int, stdout: io.TextIOBase, stderr: io.TextIOBase
) -> Iterator:
    """For the block (run in the caller's folder): the caller's umask, streams and
    presentation variables, and fresh rich consoles that see them; all put back
    afterwards."""
    from shipyard.cli import output

    saved_streams = sys.stdout, sys.stderr, sys.stdin
    presentation = request.get("presentation") or {}
    saved_env = {key: os.environ.get(key) for key in link.PRESENTATION_VARS}
    devnull = open(os.devnull)  # closed below; served commands read no stdin
    saved_umask = os.umask(umask)
    try:
        for key in link.PRESENTATION_VARS:
            os.environ.pop(key, None)
        shown = {k: str(presentation[k]) for k in link.PRESENTATION_VARS if k in presentation}
        os.environ.update(shown)
        sys.stdout, sys.stderr, sys.stdin = stdout, stderr, devnull
        output.reset_consoles()
        yield
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved_streams
        devnull.close()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        output.reset_consoles()
        os.umask(saved_umask)


@functools.cache
def root_command() -> click.Command:
    """The ``shipyard`` command as click runs it, built once: typer builds it from the
    commands' signatures and type hints on every call, half of a short command's time
    here. Click's commands hold no state of a call, and the lazy groups stay loaded."""
    from shipyard.cli.main import app

    return typer.main.get_command(app)


def run_command(argv: list[str]) -> int:
    """Run ``shipyard ARGV`` in this process as the entry point would: its exit code.
    The collector leaves the daemon's long-lived heap out of the command's passes."""
    from shipyard.heap import older_objects_frozen

    try:
        with older_objects_frozen():
            root_command().main(args=argv, prog_name="shipyard")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):  # bool too: sys.exit(True) is 1
            return int(exc.code or 0)
        sys.stderr.write(f"{exc.code}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def warm_up() -> None:
    """Import what the served commands use and open the home's stores (migrating a
    new or older database, as any first command would)."""
    import importlib

    from shipyard.cli.common import get_client, keep_clients

    keep_clients()
    for module in WARM_MODULES:
        importlib.import_module(module)
    get_client()  # opens the stores here, where a failure ends the start with its error
    # Each group's commands loaded, and a listing of each domain (its client and types
    # imported, its routes built on their first request). Output and any error (a
    # listing refused) go nowhere.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        with contextlib.redirect_stderr(sink):
            for group in sorted(link.SERVED_GROUPS):
                run_command([group, "--help"])
            for listing in WARM_LISTINGS:
                run_command([*listing, "--json"])
    close_embedded(sqlite_only=True)  # idle from here: see CommandDaemon.serve


def main(argv: list[str] | None = None) -> None:
    """``python -m shipyard.cli.daemon --home H``: what ``shipyard daemon start`` runs."""
    parser = argparse.ArgumentParser(prog="shipyard-daemon")
    parser.add_argument("--home", required=True, help="the resolved SHIPYARD_HOME")
    parser.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_MINUTES)
    args = parser.parse_args(argv)
    os.environ["SHIPYARD_HOME"] = args.home  # resolved: commands run in other folders
    daemon = CommandDaemon(args.home, args.idle_minutes * 60)
    daemon.start_accepting()  # callers meanwhile are declined ("starting"), not kept waiting
    try:
        warm_up()
        daemon.opened(args.home)
    except BaseException:
        daemon.close()
        raise
    daemon.ready.set()
    print(f"shipyard daemon {os.getpid()} serving {args.home} on {daemon.path}", flush=True)
    daemon.serve()


if __name__ == "__main__":
    main()
