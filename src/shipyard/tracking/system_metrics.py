"""System metrics of a run, sampled in the background: CPU, memory, disk, network, GPUs.

Every ``interval`` seconds a thread reads psutil (and NVML when the optional
``pynvml`` module of the ``nvidia-ml-py`` package is installed and a GPU is
there) and logs the values through the run's metric buffer, under keys such as
``system/cpu_percent`` or ``system/gpu/0/utilization``; the step is the sample
number. Disk I/O and network counters are megabytes since the run started.
A failing probe is skipped, never raised: system metrics must not break a run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("shipyard.tracking")

MB = 1024 * 1024
WARMUP_S = 1.0

LogFn = Callable[[dict[str, float], int], None]
"""Receives one sample (key -> value) and its step."""


class GpuProbe:
    """Reads every NVIDIA GPU through NVML; empty when NVML or a GPU is missing."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        try:
            import pynvml
        except Exception:  # not installed (the optional nvidia-ml-py package), or broken
            return
        try:
            pynvml.nvmlInit()
        except Exception:  # no driver, no GPU: nothing to sample
            return
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:
            self._handles = []

    @property
    def count(self) -> int:
        """How many GPUs are sampled."""
        return len(self._handles)

    def sample(self) -> dict[str, float]:
        """``system/gpu/<i>/<name>`` for every GPU and every readable probe."""
        nvml = self._nvml
        out: dict[str, float] = {}
        for i, handle in enumerate(self._handles):
            prefix = f"system/gpu/{i}/"
            probes: dict[str, Callable[[], float]] = {
                "utilization": lambda h=handle: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
                "memory_used_mb": lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h).used / MB,
                "memory_percent": lambda h=handle: _percent(nvml.nvmlDeviceGetMemoryInfo(h)),
                "temperature": lambda h=handle: float(
                    nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
                ),
                "power_w": lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
            }
            for name, probe in probes.items():
                try:
                    out[prefix + name] = probe()
                except Exception:  # a probe this GPU does not support
                    continue
        return out

    def close(self) -> None:
        """Release NVML."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self._handles = []


def _percent(info: Any) -> float:
    return 100.0 * info.used / info.total if info.total else 0.0


class HostProbe:
    """CPU, memory, disk and network of this machine through psutil."""

    def __init__(self, disk_path: Path) -> None:
        import psutil

        self._psutil = psutil
        self._disk_path = str(_existing(disk_path))
        psutil.cpu_percent(interval=None)  # primes the counter: the first call returns 0
        self._disk0 = self._disk_io()
        self._net0 = self._net_io()

    def _disk_io(self) -> tuple[float, float] | None:
        try:
            io = self._psutil.disk_io_counters()
        except Exception:
            return None
        return None if io is None else (io.read_bytes / MB, io.write_bytes / MB)

    def _net_io(self) -> tuple[float, float] | None:
        try:
            io = self._psutil.net_io_counters()
        except Exception:
            return None
        return None if io is None else (io.bytes_sent / MB, io.bytes_recv / MB)

    def sample(self) -> dict[str, float]:
        """``system/<name>`` for every readable probe."""
        ps = self._psutil
        out: dict[str, float] = {}
        try:
            out["system/cpu_percent"] = float(ps.cpu_percent(interval=None))
        except Exception:
            pass
        try:
            mem = ps.virtual_memory()
            out["system/memory_used_mb"] = mem.used / MB
            out["system/memory_percent"] = float(mem.percent)
        except Exception:
            pass
        try:
            out["system/disk_percent"] = float(ps.disk_usage(self._disk_path).percent)
        except Exception:
            pass
        disk = self._disk_io()
        if disk is not None and self._disk0 is not None:
            out["system/disk_read_mb"] = disk[0] - self._disk0[0]
            out["system/disk_write_mb"] = disk[1] - self._disk0[1]
        net = self._net_io()
        if net is not None and self._net0 is not None:
            out["system/network_sent_mb"] = net[0] - self._net0[0]
            out["system/network_recv_mb"] = net[1] - self._net0[1]
        return out


def _existing(path: Path) -> Path:
    # The home folder may not exist (remote mode): measure the disk it would be on.
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class SystemMetricsSampler:
    """A thread that samples the host and GPUs every ``interval`` seconds.

    ``start`` returns at once: the probes are set up on the thread, since
    NVML start-up can take a while. The first sample is taken one interval
    after the start (at least two intervals when ``interval`` is under a
    second).
    """

    def __init__(self, log_sample: LogFn, *, interval: float, disk_path: Path) -> None:
        self._log = log_sample
        self._interval = interval
        self._disk_path = disk_path
        self._stop = threading.Event()
        self._step = 0
        self._thread = threading.Thread(
            target=self._run, name="shipyard-system-metrics", daemon=True
        )

    def start(self) -> SystemMetricsSampler:
        """Start sampling in the background."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait (at most ``timeout`` seconds: a stuck driver must
        not hold up the end of a run) for the thread to finish."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        # Probes are set up only once the run has lasted a moment: importing
        # psutil and starting NVML cost ~0.1 s, which a short run would
        # otherwise wait for when it ends.
        warmup = min(self._interval, WARMUP_S)
        if self._stop.wait(warmup):
            return
        try:
            host: HostProbe | None = HostProbe(self._disk_path)
        except Exception:
            log.warning("system metrics: psutil is not usable", exc_info=True)
            host = None
        gpus = GpuProbe()
        try:
            # At least `warmup` after set-up, so the first CPU reading spans time.
            next_at = time.monotonic() + max(self._interval - warmup, warmup)
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                self._sample(host, gpus)
                next_at += self._interval
                # Fell behind (a suspended laptop): skip the missed samples.
                next_at = max(next_at, time.monotonic())
        finally:
            gpus.close()

    def _sample(self, host: HostProbe | None, gpus: GpuProbe) -> None:
        values: dict[str, float] = {}
        if host is not None:
            values.update(host.sample())
        values.update(gpus.sample())
        if not values:
            return
        try:
            self._log(values, self._step)
        except Exception:  # the run has ended under us
            self._stop.set()
            return
        self._step += 1
