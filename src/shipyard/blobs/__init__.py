"""Content-addressed blob store (BLAKE3) over fsspec: a local folder or S3."""

from shipyard.blobs.store import HASH_HEADER, BlobRef, BlobStore, open_blob_store

__all__ = ["HASH_HEADER", "BlobRef", "BlobStore", "open_blob_store"]
