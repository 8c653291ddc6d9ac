"""Files appear whole or not at all: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


NAME_LIMIT = 200
"""Bytes of a file name made from data (a domain in a TLS-RPT report's name): a valid
253-character domain must still fit, with the temporary suffix a write adds, in the
255 bytes a file system allows."""


def bounded_file_name(name: str, limit: int = NAME_LIMIT) -> str:
    """``name`` as it is when it fits in ``limit`` bytes; else cut, with a stable
    suffix of its SHA-256 so that two long names never collide (extension kept)."""
    encoded = name.encode()
    if len(encoded) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = f"~{hashlib.sha256(encoded).hexdigest()[:12]}" + (f".{extension}" if dot else "")
    room = limit - len(suffix.encode())
    cut = (stem if dot else name).encode()[:room].decode("utf-8", "ignore")
    return cut + suffix


def write_atomic(target: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a temporary file beside ``target``, then rename it into place."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_UMASK)  # ordinary modes (mkstemp makes 0600)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.filename in (None, name):  # name the file the user knows, not the temporary one
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(target: Path, text: str) -> Path:
    """``text`` as UTF-8 in ``target``, whole or not at all."""
    return write_atomic(target, lambda path: path.write_text(text, encoding="utf-8"))


class NotAnOutputFolder(Exception):
    """The destination exists and holds something other than a tlssim result."""


class FolderBusy(NotAnOutputFolder):
    """Another tlssim process is writing the folder."""


@contextmanager
def folder_lock(target: Path, *, wait: bool) -> Iterator[None]:
    """One writer per output folder: an ``fcntl`` lock on ``.NAME.lock`` beside it (the
    folder itself is swapped, so the lock cannot live inside). ``wait``: block until the
    holder is done (a run's few seconds of writing); else raise ``FolderBusy`` naming the
    holder's pid (a sweep, which can take hours). Holding the lock, hidden
    ``.NAME.new-*`` and ``.NAME.old-*`` folders are leftovers of a killed writer: removed."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderBusy(f"is being written by another tlssim (pid {holder}); wait for it") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        for stale in (*target.parent.glob(f".{target.name}.new-*"), *target.parent.glob(f".{target.name}.old-*")):
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def replace_folder(target: Path, write: Callable[[Path], list[Path]], marker: str = "manifest.json") -> list[Path]:
    """Write a whole result folder beside ``target``, then swap it in: ``target`` holds
    either the complete previous result or the complete new one, never a mix. A failure
    part-way leaves the previous result as it was. An existing ``target`` that is not a
    tlssim result (no ``marker`` file) is refused rather than replaced."""
    resolved = target.resolve()
    if resolved.exists() and (not resolved.is_dir() or (any(resolved.iterdir()) and not (resolved / marker).exists())):
        raise NotAnOutputFolder(f"exists and is not a tlssim result folder (no {marker})")
    return swap_folder(target, write)


def swap_folder(target: Path, write: Callable[[Path], list[Path]]) -> list[Path]:
    """Call ``write`` on a fresh folder beside ``target`` and swap it in for ``target``
    (whatever that held), or leave ``target`` untouched if ``write`` fails. Returns the
    written paths as they are named under ``target``."""
    named, target = target, target.resolve()  # "." and "out/.." have no name of their own
    if target.exists() and not target.is_dir():
        raise NotAnOutputFolder("is a file, not a folder")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise NotAnOutputFolder("is the current folder or holds it; it cannot be swapped for a new result")
    with folder_lock(target, wait=True):  # a concurrent writer waits its turn
        fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        os.chmod(fresh, 0o777 & ~_UMASK)
        try:
            written = write(fresh)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.rename(target, old)
        os.rename(fresh, target)
        shutil.rmtree(old, ignore_errors=True)
    return [named / path.relative_to(fresh) for path in written]


def link_or_copy(source: str, destination: str) -> None:
    """A hard link where the file system allows one (no bytes copied), else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
