"""The one error tree. Each error has a code and an HTTP status; the server
answers ``{"error": {"code", "message", "details"}}`` and the client raises the
same class again."""

from __future__ import annotations

from typing import Any, ClassVar


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_payload(self) -> dict[str, Any]:
        """The JSON body the server sends for this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    @classmethod
    def from_payload(cls, status: int, payload: Any) -> ShipyardError:
        """Rebuild the error a server sent; unknown shapes become a plain error."""
        err = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(err, dict):
            return _BY_STATUS.get(status, ShipyardError)(f"HTTP {status}: {payload!r:.500}")
        klass = _BY_CODE.get(str(err.get("code")), _BY_STATUS.get(status, ShipyardError))
        return klass(str(err.get("message", "")), err.get("details") or {})


class InvalidInput(ShipyardError):
    """The request is malformed or breaks a rule; nothing was changed."""

    code = "invalid_input"
    status = 400


class Unauthenticated(ShipyardError):
    """No valid credentials were given."""

    code = "unauthenticated"
    status = 401


class PermissionDenied(ShipyardError):
    """The caller is known but may not do this."""

    code = "permission_denied"
    status = 403


class NotFound(ShipyardError):
    """The object does not exist (or the caller may not know it exists)."""

    code = "not_found"
    status = 404


class Conflict(ShipyardError):
    """The change clashes with existing state, e.g. a duplicate name or a logged param."""

    code = "conflict"
    status = 409


class PayloadTooLarge(ShipyardError):
    """The request body is over the server's limit."""

    code = "payload_too_large"
    status = 413


class IntegrityError(ShipyardError):
    """Stored content does not match its hash."""

    code = "integrity_error"
    status = 500


class ValidationFailed(InvalidInput):
    """Data broke its dataset's expectations under the reject policy; no version was made.
    ``details["report"]`` is the validation report (each failed expectation, with counts
    and sample rows)."""

    code = "validation_failed"
    status = 422


class TooManyRequests(ShipyardError):
    """The caller must wait before trying again (e.g. after repeated failed sign-ins);
    ``details["retry_after_s"]`` says how long."""

    code = "too_many_requests"
    status = 429


class Unavailable(ShipyardError):
    """A backend the server needs is down."""

    code = "unavailable"
    status = 503


_ALL: list[type[ShipyardError]] = [
    ShipyardError,
    InvalidInput,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    PayloadTooLarge,
    IntegrityError,
    ValidationFailed,
    TooManyRequests,
    Unavailable,
]
_BY_CODE = {k.code: k for k in _ALL}
_BY_STATUS = {k.status: k for k in _ALL if k is not ShipyardError}
# A 422 from FastAPI's own request validation carries no code of ours: plain bad input.
_BY_STATUS[422] = InvalidInput
