"""Files written atomically: a temporary file in the destination folder, flushed, then renamed over it.

A failed write (an error, a full disk, an interruption) leaves any previous file as it was and no temporary file
behind. Every file the library writes goes through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "atomic_write", "file_part", "save_figure", "write_file"]

#: The resolution of saved figures, in dots per inch.
DPI = 110


def _fsync_folder(folder: Path) -> None:
    """Flush the rename to disk where the system allows it; the file is in place whatever happens here."""
    if os.name != "posix":  # a folder cannot be opened for fsync elsewhere
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | PathLike, dump: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically: ``dump`` writes into a temporary file next to ``path``, which is flushed to disk
    and then renamed over ``path``. If ``dump`` fails, the previous file is intact and no temporary file is left.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    dump : callable
        Called with the temporary file opened for binary writing.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    """
    path = Path(os.path.realpath(path))  # through a symbolic link, as open() writes
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {folder} does not exist. Create it first, for example with "
            "Path(folder).mkdir(parents=True)."
        )
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as stream:
            dump(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def write_file(path: str | PathLike, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically: a temporary file in the same folder, then a rename.

    The writer :mod:`stepwise.readwrite` uses for graph files; a failed write leaves any previous file as it was.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    data : str or bytes

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    TypeError
        If ``data`` is neither str nor bytes.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes):
        raise TypeError(f"write_file writes str or bytes; got {type(data).__name__}.")
    atomic_write(Path(path), lambda stream: stream.write(data))


def save_figure(fig: Figure, path: str | PathLike, *, dpi: int = DPI) -> None:
    """Render a matplotlib figure in the format its suffix names (``.png``, ``.pdf``, ``.svg``, ...), write it
    atomically and close the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path-like
    dpi : int, default=110
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    buffer = io.BytesIO()
    try:
        fmt = path.suffix.lstrip(".").lower() or "png"
        # No "Software" entry naming matplotlib's version: the same figure gives the same file on any machine.
        metadata = {"Software": None} if fmt == "png" else None
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    finally:
        plt.close(fig)
    write_file(path, buffer.getvalue())


def file_part(name: str) -> str:
    """A level's name as part of a file name: letters, digits, ``.``, ``_`` and ``-`` kept, anything else ``_``.

    >>> file_part("encoder.layer.0/attention")
    'encoder.layer.0_attention'
    """
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
