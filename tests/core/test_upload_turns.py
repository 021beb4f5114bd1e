"""Uploads take turns: the server receives at most ``max_uploads`` units at once, first
come first served, and a waiting upload's body is not read until its turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pydantic
import pytest
from blake3 import blake3
from tests.conftest import build_platform, run_async

from shipyard.client import Client
from shipyard.client.api import API_PREFIX
from shipyard.config import Settings
from shipyard.turns import UploadTurns


async def _take(turns: UploadTurns, units: int, log: list[str], name: str, hold: asyncio.Event):
    async with turns.held(units):
        log.append(name)
        await hold.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_turns_are_first_come_first_served_and_count_units() -> None:
    async def scenario() -> None:
        turns = UploadTurns(4)
        log: list[str] = []
        release = {name: asyncio.Event() for name in "ajb"}
        a = asyncio.create_task(_take(turns, 3, log, "a", release["a"]))
        await _settle()
        join = asyncio.create_task(_take(turns, 4, log, "j", release["j"]))
        await _settle()
        b = asyncio.create_task(_take(turns, 1, log, "b", release["b"]))
        await _settle()
        # One unit is free, but b came after the join, which waits for all four.
        assert log == ["a"]
        assert (turns.in_use(), turns.waiting()) == (3, 2)
        release["a"].set()
        await _settle()
        assert log == ["a", "j"]
        assert (turns.in_use(), turns.waiting()) == (4, 1)
        release["j"].set()
        release["b"].set()
        await asyncio.gather(a, join, b)
        assert log == ["a", "j", "b"]
        assert (turns.in_use(), turns.waiting()) == (0, 0)

    run_async(scenario())


def test_a_cancelled_waiter_gives_up_its_place() -> None:
    async def scenario() -> None:
        turns = UploadTurns(2)
        log: list[str] = []
        release = {name: asyncio.Event() for name in "abc"}
        a = asyncio.create_task(_take(turns, 1, log, "a", release["a"]))
        await _settle()
        # b waits for both units, c for one (behind b); b's client goes away.
        b = asyncio.create_task(_take(turns, 2, log, "b", release["b"]))
        c = asyncio.create_task(_take(turns, 1, log, "c", release["c"]))
        await _settle()
        assert log == ["a"]
        b.cancel()
        await _settle()
        assert log == ["a", "c"]  # the free unit goes to c at once
        assert b.cancelled()
        release["a"].set()
        release["c"].set()
        await asyncio.gather(a, c)
        assert (turns.in_use(), turns.waiting()) == (0, 0)

    run_async(scenario())


def test_more_units_than_the_capacity_take_all_of_it() -> None:
    async def scenario() -> None:
        turns = UploadTurns(2)
        async with turns.held(8):
            assert turns.in_use() == 2
        assert turns.in_use() == 0

    run_async(scenario())


def test_capacity_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UploadTurns(0)
    with pytest.raises(pydantic.ValidationError, match="max_uploads"):
        Settings(home=tmp_path, max_uploads=0)


def _wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def one_upload_server(
    request: pytest.FixtureRequest, tmp_path: Path, server_for: object
) -> Iterator[tuple[object, str]]:
    platform = build_platform(request, "sqlite", tmp_path / "home")
    platform.upload_turns = UploadTurns(1)
    srv = server_for(platform)  # type: ignore[operator]
    yield platform, srv.url
    platform.close()


def test_an_upload_waits_unread_while_another_holds_the_only_turn(
    one_upload_server: tuple[object, str], tmp_path: Path
) -> None:
    platform, url = one_upload_server
    turns: UploadTurns = platform.upload_turns  # type: ignore[attr-defined]
    client = Client(url, settings=platform.settings)  # type: ignore[attr-defined]
    run_id = client.runs.create("turns").id

    # The first upload sends a piece of its body, then stalls, holding the turn.
    go_on = threading.Event()
    first = b"first " * 50_000

    def stalled_body() -> Iterator[bytes]:
        yield first[:65536]
        go_on.wait(30)
        yield first[65536:]

    replies: dict[str, httpx.Response] = {}

    def send_stalled() -> None:
        replies["first"] = httpx.put(
            f"{url}{API_PREFIX}/runs/{run_id}/artifacts/first.bin",
            content=stalled_body(),
            timeout=60,
        )

    def send_second() -> None:
        replies["second"] = httpx.put(
            f"{url}{API_PREFIX}/runs/{run_id}/artifacts/second.bin", content=b"second", timeout=60
        )

    stalled = threading.Thread(target=send_stalled)
    stalled.start()
    _wait_for(lambda: turns.in_use() == 1, "the first upload's turn")
    waiting = threading.Thread(target=send_second)
    waiting.start()
    _wait_for(lambda: turns.waiting() == 1, "the second upload to wait")
    assert "second" not in replies
    go_on.set()
    stalled.join(30)
    waiting.join(30)
    assert replies["first"].status_code == 200, replies["first"].text
    assert replies["second"].status_code == 200, replies["second"].text
    assert (turns.in_use(), turns.waiting()) == (0, 0)
    infos = {i.path: i for i in client.artifacts.list(run_id)}
    assert infos["first.bin"].hash == blake3(first).hexdigest()
    assert infos["second.bin"].hash == blake3(b"second").hexdigest()
    client.close()


def test_big_json_bodies_take_turns_and_small_ones_never_wait(
    one_upload_server: tuple[object, str],
) -> None:
    platform, url = one_upload_server
    turns: UploadTurns = platform.upload_turns  # type: ignore[attr-defined]
    endpoint = f"{url}{API_PREFIX}/projects/default/experiments"
    padding = "x" * (3 << 20)
    big = orjson.dumps({"name": "big", "description": padding})
    go_on = threading.Event()

    def stalled_body() -> Iterator[bytes]:
        yield big[:65536]
        go_on.wait(30)
        yield big[65536:]

    replies: dict[str, httpx.Response] = {}

    def send(name: str, content: object) -> None:
        headers = {"content-type": "application/json", "content-length": str(len(big))}
        replies[name] = httpx.post(endpoint, content=content, headers=headers, timeout=60)  # type: ignore[arg-type]

    first = threading.Thread(target=send, args=("first", stalled_body()))
    first.start()
    _wait_for(lambda: turns.in_use() == 1, "the first big body's turn")
    second = threading.Thread(target=send, args=("second", big))
    second.start()
    _wait_for(lambda: turns.waiting() == 1, "the second big body to wait")
    # A small body is not held up by the big ones.
    small = httpx.post(endpoint, json={"name": "small"}, timeout=30)
    assert small.status_code == 201, small.text
    assert "second" not in replies
    go_on.set()
    first.join(30)
    second.join(30)
    for name in ("first", "second"):
        assert replies[name].status_code < 500, replies[name].text[:300]
    assert (turns.in_use(), turns.waiting()) == (0, 0)
