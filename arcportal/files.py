"""Private files and directories of an installation: ``var/``, the SQLite database, keys and secrets.

Pure (no Django import): the settings module uses it before Django is set up. Whatever the umask, what these
functions create or find is readable by its owner only; other users' files (another owner) are left as they are.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
GROUP_AND_OTHER = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make it ``rwx------``."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _owner_only(path)
    return path


def private_file(path: Path, *, create: bool = False) -> Path:
    """Make ``path`` ``rw-------``; with ``create``, create it empty (never world-readable, not even for a moment)."""
    if create:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    _owner_only(path)
    return path


def _owner_only(path: Path) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & GROUP_AND_OTHER and info.st_uid == os.geteuid():
        os.chmod(path, mode & ~GROUP_AND_OTHER)
