"""A disk that fills up in the middle of a file, for the tests of atomic writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, BinaryIO


class _FillingStream:
    """A binary stream that takes ``room`` bytes, then fails as a full disk does (the bytes that fit are written)."""

    def __init__(self, stream: BinaryIO, disk: FullDisk) -> None:
        self._stream = stream
        self._disk = disk

    def write(self, data: bytes) -> int:
        data = bytes(data)
        room = self._disk.room - self._disk.written
        if len(data) > room:
            self._stream.write(data[:room])
            self._disk.written += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.written += len(data)
        return self._stream.write(data)

    def __enter__(self) -> _FillingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class FullDisk:
    """Stands for the ``os`` module inside :mod:`stepwise.core.io`: the temporary file of a destination named in
    ``names`` (of every destination when None) fails with ``ENOSPC`` once ``room`` bytes are written to it.

    ``failed`` lists the temporary files that failed, ``written`` counts the bytes that fitted. Use it with
    ``monkeypatch.setattr(stepwise.core.io, "os", FullDisk(room=100))``: the rest of the process keeps ``os``.
    """

    def __init__(self, room: int, names: tuple[str, ...] | None = None) -> None:
        self.room = room
        self.names = names
        self.written = 0
        self.failed: list[Path] = []
        self._paths: dict[int, Path] = {}

    def open(self, path: str | os.PathLike, flags: int, mode: int = 0o777) -> int:
        fd = os.open(path, flags, mode)
        self._paths[fd] = Path(path)
        return fd

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        stream = os.fdopen(fd, *args, **kwargs)
        path = self._paths.pop(fd, None)
        if path is None or not (self.names is None or any(path.name.startswith(f".{n}.") for n in self.names)):
            return stream
        self.failed.append(path)
        return _FillingStream(stream, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (hidden ones too, such as a temporary file left behind) and its bytes."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
