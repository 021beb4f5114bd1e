"""``latest`` names a dataset's newest version in any case, so no tag can be named like
it: one rule, shared by the tag setter and the version selector."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import select
from tests.conftest import embedded_client

from shipyard.client import Client
from shipyard.datasets.tables import DatasetRow, DatasetTagRow
from shipyard.datasets.types import LATEST, check_tag, is_latest
from shipyard.datasets.versions import parse_selector
from shipyard.errors import InvalidInput, NotFound
from shipyard.platform import Platform

TABLE = pa.table({"id": [1, 2]})


@pytest.mark.parametrize("name", ["latest", "LATEST", "Latest", "lATEst"])
def test_the_setter_refuses_what_the_selector_reads_as_latest(name: str) -> None:
    assert is_latest(name) and parse_selector(name) == LATEST
    with pytest.raises(InvalidInput, match=f"tag '{name}' is reserved: 'latest', in any case"):
        check_tag(name)


def test_a_tag_named_latest_in_any_case_is_refused_and_changes_nothing(client: Client) -> None:
    client.datasets.ingest("d", TABLE)
    client.datasets.ingest("d", TABLE)
    client.datasets.set_tag("d", "prod", 1)
    for name in ("LATEST", "Latest", "latest"):
        with pytest.raises(InvalidInput, match="is reserved") as caught:
            client.datasets.set_tag("d", name, 1)
        assert caught.value.details == {"tag": name}
        with pytest.raises(InvalidInput, match="is reserved"):
            client.datasets.ingest("d", TABLE, tags=[name])
    assert client.datasets.get("d").tags == {"latest": 2, "prod": 1}
    assert [v.version for v in client.datasets.versions("d").versions] == [2, 1]
    # Selecting is as it was: any case of latest is the newest version.
    assert client.datasets.get_version("d", "LATEST").version == 2
    assert client.datasets.get_version("d", "Latest").version == 2


def test_a_tag_like_latest_set_before_it_was_refused_can_be_removed(platform: Platform) -> None:
    with embedded_client(platform) as client:
        first = client.datasets.ingest("d", TABLE)
        client.datasets.ingest("d", TABLE)
        with platform.db.write() as session:  # as an older version let it be set
            dataset = session.scalar(select(DatasetRow.id).where(DatasetRow.name == "d"))
            assert dataset is not None
            session.add(DatasetTagRow(dataset_id=dataset, tag="LATEST", version_id=first.id))
        assert client.datasets.get("d").tags == {"latest": 2, "LATEST": 1}
        client.datasets.delete_tag("d", "LATEST")
        assert client.datasets.get("d").tags == {"latest": 2}
        with pytest.raises(NotFound, match="has no tag 'LATEST'"):
            client.datasets.delete_tag("d", "LATEST")
        with pytest.raises(InvalidInput, match="is reserved"):
            client.datasets.delete_tag("d", "latest")
