"""HTTP routes of run artifacts (to be filled in)."""

from fastapi import APIRouter

router = APIRouter()
