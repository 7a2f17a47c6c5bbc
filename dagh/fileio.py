"""Crash-safe file writing: write a temporary file beside the target, fsync, rename.

A crash midway leaves the old file intact, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file for binary writing; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def check_directory_target(target: str | os.PathLike, *, force: bool = False) -> None:
    """ConfigError unless ``target`` is absent, an empty directory, or (with ``force``) any directory."""
    from dagh.errors import ConfigError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{str(target)!r} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(f"{str(target)!r} is not empty; choose another directory or pass --force to replace it")


def exchange_paths(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # no glibc 2.28+
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), os.fspath(a))


def _put_in_place(partial: Path, target: Path) -> None:
    """Make ``partial`` the directory at ``target``; the old one, if any, is removed after.

    Where the system can swap the two in one step, a crash at any moment leaves ``target`` either the
    old directory or the new one. Elsewhere it takes two renames, and a crash between them leaves the
    old directory at ``.<name>.old-<pid>`` beside the target."""
    import shutil

    if not target.exists():
        os.replace(partial, target)
        return
    if exchange_paths(partial, target):  # partial now holds the old directory
        shutil.rmtree(partial, ignore_errors=True)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    os.replace(target, old)
    try:
        os.replace(partial, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary directory beside ``target``; on success it becomes ``target``.

    A non-empty ``target`` is refused unless ``force`` (then it is replaced, and
    removed only after the new one is in place). On failure the temporary
    directory is removed and ``target`` is left as it was.
    """
    import shutil

    target = Path(target)
    check_directory_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield partial
        _put_in_place(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


@contextlib.contextmanager
def updated_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a copy of the directory ``target`` to change; on success it replaces ``target`` whole.

    The copy's files are hard links (copies where links cannot be made), so it costs no space, and
    the changes must replace files (atomic_write, os.replace), never write into them: a write into a
    link would change the original too. A crash or an error leaves ``target`` as it was.
    """
    import shutil

    target = Path(target)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for source in sorted(target.rglob("*")):
            copy = partial / source.relative_to(target)
            if source.is_dir():
                copy.mkdir(exist_ok=True)
                continue
            copy.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, copy)
            except OSError:
                shutil.copy2(source, copy)
        yield partial
        _put_in_place(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
