"""Files appear whole or not at all: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(target: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a temporary file beside ``target``, then rename it into place."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_UMASK)  # ordinary modes (mkstemp makes 0600)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
