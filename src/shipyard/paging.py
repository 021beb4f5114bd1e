"""Page tokens: opaque to clients, an offset inside."""

from __future__ import annotations

import base64
import binascii

from shipyard.errors import InvalidInput


def encode_page_token(offset: int) -> str:
    """The token of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(str(offset).encode("ascii")).decode("ascii")


def decode_page_token(token: str | None) -> int:
    """The offset a token stands for (0 for none); InvalidInput if it is not ours."""
    if not token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii"))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput(f"invalid page_token {token[:100]!r}") from None
    if offset < 0:
        raise InvalidInput(f"invalid page_token {token[:100]!r}")
    return offset
