"""Shipyard: ML infrastructure in one pip install.

The public SDK surface is listed in ``__all__``. Everything is imported on
first use, so ``import shipyard`` costs next to nothing and never loads the
server stack (FastAPI, SQLAlchemy) in a process that only talks to a server.
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing costs ~8 ms, which every
# `shipyard` command the daemon serves would pay for a constant (type checkers read
# any variable of this name as typing's).
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Client": "shipyard.client.client",
    "ActiveRun": "shipyard.tracking.run",
    "start_run": "shipyard.tracking.fluent",
    "end_run": "shipyard.tracking.fluent",
    "active_run": "shipyard.tracking.fluent",
    "log_metric": "shipyard.tracking.fluent",
    "log_metrics": "shipyard.tracking.fluent",
    "log_param": "shipyard.tracking.fluent",
    "log_params": "shipyard.tracking.fluent",
    "set_tag": "shipyard.tracking.fluent",
    "set_tags": "shipyard.tracking.fluent",
    "log_artifact": "shipyard.tracking.fluent",
    "log_artifacts": "shipyard.tracking.fluent",
    "log_model": "shipyard.tracking.fluent",
    "log_input": "shipyard.tracking.fluent",
    "set_experiment": "shipyard.tracking.fluent",
    "get_client": "shipyard.tracking.fluent",
    "ShipyardError": "shipyard.errors",
    "InvalidInput": "shipyard.errors",
    "Unauthenticated": "shipyard.errors",
    "PermissionDenied": "shipyard.errors",
    "NotFound": "shipyard.errors",
    "Conflict": "shipyard.errors",
    "PayloadTooLarge": "shipyard.errors",
    "IntegrityError": "shipyard.errors",
    "Unavailable": "shipyard.errors",
}

__all__ = [
    "ActiveRun",
    "Client",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ShipyardError",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "active_run",
    "end_run",
    "get_client",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]

if TYPE_CHECKING:
    from typing import Any

    from shipyard.client.client import Client
    from shipyard.errors import (
        Conflict,
        IntegrityError,
        InvalidInput,
        NotFound,
        PayloadTooLarge,
        PermissionDenied,
        ShipyardError,
        Unauthenticated,
        Unavailable,
    )
    from shipyard.tracking.fluent import (
        active_run,
        end_run,
        get_client,
        log_artifact,
        log_artifacts,
        log_input,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from shipyard.tracking.run import ActiveRun


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
