"""System metrics: host probes, GPU probes (NVML when present), the sampler thread."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.client import Client
from shipyard.tracking import fluent
from shipyard.tracking.system_metrics import GpuProbe, HostProbe, SystemMetricsSampler

HOST_KEYS = {
    "system/cpu_percent",
    "system/memory_used_mb",
    "system/memory_percent",
    "system/disk_percent",
}


def test_host_probe_reads_cpu_memory_disk_network(tmp_path: Path) -> None:
    probe = HostProbe(tmp_path / "not" / "created" / "yet")
    sample = probe.sample()
    assert HOST_KEYS <= set(sample)
    assert 0 <= sample["system/cpu_percent"] <= 100
    assert 0 < sample["system/memory_percent"] <= 100
    assert 0 < sample["system/disk_percent"] <= 100
    for key in ("system/disk_read_mb", "system/network_sent_mb"):
        if key in sample:  # containers may hide the counters
            assert sample[key] >= 0


def test_gpu_probe_is_empty_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    probe = GpuProbe()
    assert probe.count == 0
    assert probe.sample() == {}
    probe.close()


class FakeNvml(types.ModuleType):
    """Stands in for the nvidia-ml-py module (its camelCase names): two GPUs, the
    second without power readings."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail_init: bool = False) -> None:
        super().__init__("pynvml")
        self.fail_init = fail_init
        self.shut_down = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return types.SimpleNamespace(gpu=40 + h, memory=10)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return types.SimpleNamespace(used=512 * 1024 * 1024, total=1024 * 1024 * 1024)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return 65

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise RuntimeError("Not Supported")
        return 250_000  # milliwatts


def test_gpu_probe_reads_every_gpu_and_skips_unsupported_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    probe = GpuProbe()
    assert probe.count == 2
    sample = probe.sample()
    assert sample["system/gpu/0/utilization"] == 40
    assert sample["system/gpu/1/utilization"] == 41
    assert sample["system/gpu/0/memory_used_mb"] == 512
    assert sample["system/gpu/0/memory_percent"] == 50
    assert sample["system/gpu/0/temperature"] == 65
    assert sample["system/gpu/0/power_w"] == 250
    assert "system/gpu/1/power_w" not in sample
    probe.close()
    assert nvml.shut_down


def test_gpu_probe_is_empty_when_nvml_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail_init=True))
    assert GpuProbe().sample() == {}


def test_sampler_logs_numbered_samples_and_stops(tmp_path: Path) -> None:
    got: list[tuple[dict[str, float], int]] = []
    three = threading.Event()

    def record(values: dict[str, float], step: int) -> None:
        got.append((values, step))
        if len(got) >= 3:
            three.set()

    sampler = SystemMetricsSampler(record, interval=0.01, disk_path=tmp_path).start()
    assert three.wait(30)
    sampler.stop()
    assert not sampler.running
    count = len(got)
    assert [step for _, step in got] == list(range(count))
    assert HOST_KEYS <= set(got[0][0])
    sampler.stop()
    assert len(got) == count  # the thread is gone: nothing comes after stop


def test_sampler_stops_when_the_run_refuses_samples(tmp_path: Path) -> None:
    calls = threading.Event()

    def refuse(values: dict[str, float], step: int) -> None:
        calls.set()
        raise shipyard.InvalidInput("the run has ended")

    sampler = SystemMetricsSampler(refuse, interval=0.01, disk_path=tmp_path).start()
    assert calls.wait(30)
    sampler._thread.join(30)
    assert not sampler.running


def test_run_gets_system_metrics_when_the_interval_is_small(client: Client) -> None:
    with fluent.start_run(client=client, system_metrics_interval=0.05) as run:
        deadline = time.monotonic() + 60
        while True:
            run.flush()
            metrics = client.runs.get(run.id).metrics
            if HOST_KEYS <= set(metrics) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert HOST_KEYS <= set(metrics)
    history = client.runs.metric_history(run.id, "system/cpu_percent")
    assert history.steps == list(range(len(history.steps)))


def test_zero_interval_turns_sampling_off(client: Client) -> None:
    with fluent.start_run(client=client, system_metrics_interval=0) as run:
        assert run._sampler is None
    assert client.runs.get(run.id).metrics == {}
