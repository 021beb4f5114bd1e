"""Page modules, one per domain: each declares ``router = page_router()``."""
