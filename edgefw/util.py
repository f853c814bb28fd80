"""Small helpers shared by the host tools."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
