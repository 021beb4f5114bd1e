"""Page tokens: opaque to clients, an offset inside."""

from __future__ import annotations

import base64
import binascii

from shipyard.errors import InvalidInput
from shipyard.int64 import parse_int64


def encode_page_token(offset: int) -> str:
    """The token of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(str(offset).encode("ascii")).decode("ascii")


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for (0 for none); InvalidInput if it is not ours: one
    that does not decode, or whose offset is negative or past the 64-bit range (every
    caller binds it into SQL)."""
    if not token:
        return 0
    try:
        offset = parse_int64(base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii"))
    except (ValueError, binascii.Error, UnicodeError):
        offset = None
    if offset is None or offset < 0:
        raise InvalidInput(f"invalid page_token {token[:100]!r}")
    return offset


def page_offset(max_results: int, page_token: str | None, most: int) -> int:
    """The offset a page request starts at; InvalidInput when ``max_results`` is outside
    1..``most`` or the token is not ours. Fetch ``max_results + 1`` rows from there and
    give them to :func:`next_token`."""
    if not 1 <= max_results <= most:
        raise InvalidInput(f"max_results must be between 1 and {most}")
    return decode_page_token(page_token)


def next_token(fetched: int, offset: int, max_results: int) -> str | None:
    """The next page's token when ``fetched`` rows (up to ``max_results + 1``) came back
    from ``offset``; None on the last page."""
    return encode_page_token(offset + max_results) if fetched > max_results else None
