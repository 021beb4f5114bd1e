"""The S3 fixture lives in tests/conftest.py; these names stay importable here."""

from tests.conftest import S3_BUCKET, S3_KEY, S3_REGION, S3_SECRET

__all__ = ["S3_BUCKET", "S3_KEY", "S3_REGION", "S3_SECRET"]
