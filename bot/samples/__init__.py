"""The bundled offline sample feeds: fictional outlets, realistic entries.

Eight feeds (RSS 2.0 and Atom) dated 2026-11-19 to 2026-11-22, for the demo and tests.
They include syndicated copies of the same story, wire copies whose links carry tracking
parameters, off-topic entries, hostile HTML (scripts, boilerplate) and malformed-ish
entries (no date, no link, a repeated GUID).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

# A "now" just after the newest sample entry; every entry is within the 84 hours before it.
SAMPLE_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def sample_dir() -> Path:
    """The directory holding the sample feed files."""
    return Path(__file__).resolve().parent


def sample_files() -> list[Path]:
    """Every sample feed file, sorted by name."""
    return sorted(sample_dir().glob("*.xml"))
