"""Datasets: ingestion, content-addressed versions, validation, profiles, diffs and
lineage. The SDK entry point is ``Client().datasets``; the shapes are in ``types``."""

from shipyard.datasets.types import (
    Dataset,
    DatasetVersion,
    DatasetVersionDetail,
    ExpectationSuite,
    Lineage,
    Profile,
    ValidationReport,
    VersionDiff,
)

__all__ = [
    "Dataset",
    "DatasetVersion",
    "DatasetVersionDetail",
    "ExpectationSuite",
    "Lineage",
    "Profile",
    "ValidationReport",
    "VersionDiff",
]
