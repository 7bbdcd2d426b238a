"""The OCR tests share one engine, built and used with the network cut off.

The models ship inside the rapidocr-onnxruntime wheel; if the engine ever tried to fetch
anything, building or running it here would fail loudly instead of hanging on a proxy.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from bot.ocr import Reader, get_reader

from .helpers import SCREENSHOTS, TIMINGS


class NetworkUsed(AssertionError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkUsed(f"OCR tried to use the network: {args!r}")


@pytest.fixture(scope="package", autouse=True)
def no_network() -> Iterator[None]:
    """No connection, no name lookup while the OCR tests run (local Unix sockets still work)."""
    saved = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
        socket.create_connection,
    )
    original_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_UNIX:
            return original_connect(self, address)
        _refuse(address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.getaddrinfo = _refuse
    socket.create_connection = _refuse
    try:
        yield
    finally:
        (
            socket.socket.connect,
            socket.socket.connect_ex,
            socket.getaddrinfo,
            socket.create_connection,
        ) = saved


@pytest.fixture(scope="package")
def reader(no_network: None) -> Reader:
    return get_reader()


@pytest.fixture(scope="package")
def screenshot() -> Any:
    def load(name: str) -> bytes:
        return (SCREENSHOTS / f"{name}.png").read_bytes()

    return load


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.write_sep("-", "OCR timings (2 cores, engine shared, not asserted)")
    for what, size, seconds, lines in TIMINGS:
        terminalreporter.write_line(f"{what:<38} {size:>17} {lines:>3} lines {seconds:6.2f} s")
