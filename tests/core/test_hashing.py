"""The content hash: the same digest whichever way a file is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from shipyard.hashing import hash_file


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 - 1, 3 * 1024 * 1024 + 17])
def test_mapped_and_read_hashes_agree_with_blake3(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = blake3(data).hexdigest()
    assert hash_file(path) == expected
    assert hash_file(path, mapped=True) == expected


def test_a_missing_file_raises_either_way(tmp_path: Path) -> None:
    for mapped in (False, True):
        with pytest.raises(FileNotFoundError):
            hash_file(tmp_path / "absent", mapped=mapped)
