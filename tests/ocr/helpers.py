"""Where the screenshots are, and the timings the OCR tests print and summarise."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parent.parent / "fixtures" / "screenshots"
# (what was read, its size, seconds, lines found), shown at the end of the run.
TIMINGS: list[tuple[str, str, float, int]] = []


def record(what: str, size: str, seconds: float, lines: int) -> None:
    """Print one timing now (seen with -s) and keep it for the summary at the end."""
    TIMINGS.append((what, size, seconds, lines))
    print(f"OCR {what}: {size}, {lines} lines, {seconds:.2f} s")
