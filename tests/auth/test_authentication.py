"""Authentication against a real server that requires it: tokens and password login."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from shipyard.auth.tables import TokenRow, UserRow
from shipyard.clock import now_ms
from shipyard.errors import Unauthenticated

from .conftest import Secured


def _assert_401(response, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "unauthenticated"
    assert fragment in body["error"]["message"]
    assert set(body["error"]) == {"code", "message", "details"}


def test_no_token_is_401(secured: Secured) -> None:
    http = secured.http()
    for path in ("/projects", "/users/me", "/projects/default", "/tokens", "/audit"):
        _assert_401(http.get(path), "authentication required")
    _assert_401(http.post("/projects", json={"name": "x"}), "authentication required")
    # Nothing was created by the refused request.
    assert [p.name for p in secured.sdk(secured.admin_token).projects.list()] == ["default"]


def test_health_needs_no_token(secured: Secured) -> None:
    import httpx

    assert httpx.get(secured.url + "/healthz").status_code == 200


def test_the_api_docs_need_a_signed_in_caller(secured: Secured) -> None:
    import httpx

    with httpx.Client(base_url=secured.url, timeout=30) as http:
        _assert_401(http.get("/openapi.json"), "authentication required")
        for page in ("/docs", "/redoc"):  # a page: the browser goes to sign in
            r = http.get(page)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert http.get("/docs/oauth2-redirect").status_code == 404
        signed_in = {"authorization": f"Bearer {secured.user('reader')}"}
        schema = http.get("/openapi.json", headers=signed_in)
        assert schema.status_code == 200 and "/api/v1/projects" in schema.json()["paths"]
        for page in ("/docs", "/redoc"):
            r = http.get(page, headers=signed_in)
            assert r.status_code == 200 and "/openapi.json" in r.text


BAD_HEADERS = [
    ("Basic cm9vdDpwYXNz", "invalid username or password"),  # root:pass, no such user
    ("Basic !!not-base64", "malformed Basic credentials"),
    ("Basic bm8tY29sb24=", "malformed Basic credentials"),  # "no-colon"
    ("Bearer", "unsupported Authorization header"),
    ("Bearer shy_not-a-real-token", "invalid token"),
    ("Bearer " + "x" * 5000, "invalid token"),
    ("Token abc", "unsupported Authorization header"),
]


def test_malformed_or_unknown_token_is_401(secured: Secured) -> None:
    http = secured.http()
    for header, fragment in BAD_HEADERS:
        _assert_401(http.get("/projects", headers={"authorization": header}), fragment)
        _assert_401(
            http.post("/projects", json={"name": "x"}, headers={"authorization": header}), fragment
        )
    assert [p.name for p in secured.sdk(secured.admin_token).projects.list()] == ["default"]


def test_sdk_raises_unauthenticated(secured: Secured) -> None:
    with pytest.raises(Unauthenticated, match="invalid token"):
        secured.sdk("shy_bogus").projects.list()


def test_valid_token_works_and_records_last_use(secured: Secured) -> None:
    token = secured.user("ann", roles={"default": "viewer"})
    assert secured.sdk(token).users.me().username == "ann"
    with secured.platform.db.read() as session:
        used = session.scalar(
            select(TokenRow.last_used_at)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(UserRow.username == "ann")
        )
    assert used is not None


def test_expired_token_refused(secured: Secured) -> None:
    token = secured.user("bob", roles={"default": "editor"})
    http = secured.http(token)
    assert http.get("/projects/default").status_code == 200
    # Time travel: the token's expiry passes.
    with secured.platform.db.write() as session:
        session.execute(
            update(TokenRow).where(TokenRow.prefix == token[:12]).values(expires_at=now_ms() - 1)
        )
    _assert_401(http.get("/projects/default"), "expired")
    _assert_401(http.post("/projects", json={"name": "late"}), "expired")


def test_token_created_with_expiry_has_it(secured: Secured) -> None:
    secured.user("eve")
    before = now_ms()
    created = secured.sdk(secured.admin_token).tokens.create(
        "short", expires_in_days=2, username="eve"
    )
    assert created.expires_at is not None
    assert before + 2 * 86_400_000 <= created.expires_at <= now_ms() + 2 * 86_400_000
    forever = secured.sdk(secured.admin_token).tokens.create(
        "forever", expires_in_days=None, username="eve"
    )
    assert forever.expires_at is None


def test_revoked_token_refused(secured: Secured) -> None:
    token = secured.user("carl", roles={"default": "viewer"})
    sdk = secured.sdk(token)
    mine = sdk.tokens.list()
    assert [t.prefix for t in mine] == [token[:12]]
    sdk.tokens.revoke(mine[0].id)
    _assert_401(secured.http(token).get("/projects"), "revoked")
    listed = secured.sdk(secured.admin_token).tokens.list("carl", include_revoked=True)
    assert listed[0].revoked_at is not None
    assert secured.sdk(secured.admin_token).tokens.list("carl") == []


def test_disabled_user_refused(secured: Secured) -> None:
    token = secured.user("dora", password="password-dora", roles={"default": "viewer"})
    admin = secured.sdk(secured.admin_token)
    admin.users.update("dora", disabled=True)
    _assert_401(secured.http(token).get("/projects"), "disabled")
    with pytest.raises(Unauthenticated):
        secured.sdk("").tokens.login("dora", "password-dora")
    admin.users.update("dora", disabled=False)
    assert secured.http(token).get("/projects").status_code == 200


def test_login_with_password(secured: Secured) -> None:
    secured.user("fay", password="correct horse", roles={"default": "viewer"})
    anonymous = secured.sdk("")
    before = now_ms()
    created = anonymous.tokens.login("fay", "correct horse")
    assert created.token.startswith("shy_")
    assert created.name == "login"
    assert created.expires_at is not None
    assert before + 12 * 3_600_000 <= created.expires_at <= now_ms() + 12 * 3_600_000
    assert secured.sdk(created.token).users.me().username == "fay"


@pytest.mark.parametrize(
    ("username", "password"),
    [("fay", "wrong password"), ("nobody", "correct horse"), ("nopw", "anything-at-all")],
)
def test_login_refused(secured: Secured, username: str, password: str) -> None:
    secured.user("fay", password="correct horse")
    secured.user("nopw")  # a token-only user has no password to log in with
    count = len(secured.sdk(secured.admin_token).tokens.list("fay", include_revoked=True))
    response = secured.http().post("/auth/login", json={"username": username, "password": password})
    _assert_401(response, "invalid username or password")
    after = secured.sdk(secured.admin_token).tokens.list("fay", include_revoked=True)
    assert len(after) == count


def test_passwords_stored_as_argon2_and_never_returned(secured: Secured) -> None:
    secured.user("gus", password="s3cret-pass")
    with secured.platform.db.read() as session:
        stored = session.scalar(select(UserRow.password_hash).where(UserRow.username == "gus"))
        hashes = list(session.scalars(select(TokenRow.token_hash)))
    assert stored is not None and stored.startswith("$argon2id$")
    assert "s3cret-pass" not in stored
    admin = secured.http(secured.admin_token)
    for path in ("/users", "/tokens?username=gus", "/users/me", "/audit"):
        text = admin.get(path).text
        assert "$argon2" not in text and "s3cret-pass" not in text
        assert not any(h in text for h in hashes)
        assert "password_hash" not in text and "token_hash" not in text


def test_token_secret_is_stored_hashed(secured: Secured) -> None:
    token = secured.user("hal")
    assert token.startswith("shy_") and len(token) > 40
    with secured.platform.db.read() as session:
        row = session.scalars(select(TokenRow).where(TokenRow.prefix == token[:12])).one()
    assert row.token_hash != token and len(row.token_hash) == 64
    assert token not in row.token_hash


def _raw_post(url: str, path: str, headers: dict[str, str], body_start: bytes) -> bytes:
    """Send a request's head and the first bytes of a body it says is far longer, and
    return what the server answers without the rest (empty if it waits for it)."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\n{head}"
            f"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode()
            + body_start
        )
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


def test_no_credentials_are_refused_before_the_body_is_read(secured: Secured) -> None:
    """An unauthenticated API request with a body gets its 401 at once: the server
    neither waits for nor parses a body it was sent (it read and parsed up to 64 MiB
    for each such request before)."""
    for path in ("/api/v1/projects/default/experiments", "/api/2.0/mlflow/runs/create"):
        for headers in ({}, {"Authorization": "Bearer shy_not-a-token"}):
            answer = _raw_post(secured.url, path, headers, b'{"name": "')
            assert answer.startswith(b"HTTP/1.1 401"), (path, headers, answer[:200])
    # The answer is in the shape of the path's API.
    import httpx

    native = httpx.post(secured.url + "/api/v1/projects/default/experiments", content=b"{bad")
    _assert_401(native, "authentication required")
    mlflow = httpx.post(secured.url + "/api/2.0/mlflow/runs/create", content=b"{bad")
    assert mlflow.status_code == 401
    assert mlflow.json()["error_code"] == "UNAUTHENTICATED"
    # With a token, the body is read and judged as before.
    token = {"Authorization": f"Bearer {secured.admin_token}"}
    bad = httpx.post(
        secured.url + "/api/v1/projects/default/experiments", content=b"{bad", headers=token
    )
    assert bad.status_code == 400
    # Signing in needs no token: its body is read.
    login = httpx.post(secured.url + "/api/v1/auth/login", content=b"{bad")
    assert login.status_code == 400
