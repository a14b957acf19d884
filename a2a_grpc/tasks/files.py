"""Files only their owner may read: the task store's folder, database (and its ``-wal``/``-shm``)
and key file.

The database holds every task's messages and artifacts and the push configs; nothing in it is
for other users of the machine, whatever the process's umask says. Modes are set explicitly
(``os.open(..., 0o600)``, ``chmod``) rather than through the umask, which can only remove bits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dirs", "make_private_file", "tighten"]

log = logging.getLogger("a2a_grpc.tasks")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: str) -> None:
    """Create the folder ``path`` and its missing parents, each ``0700``; folders that exist are
    left as they are (they are the operator's). Raises what :func:`os.makedirs` raises."""
    missing: list[str] = []
    at = os.path.abspath(path)
    while not os.path.lexists(at):
        missing.append(at)
        parent = os.path.dirname(at)
        if parent == at:
            break
        at = parent
    os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
    for made in missing:
        # makedirs gives the mode to the last folder only, and through the umask.
        with contextlib.suppress(OSError):  # made by someone else meanwhile: theirs to set
            os.chmod(made, PRIVATE_DIR_MODE)


def make_private_file(path: str) -> bool:
    """Create ``path`` empty with mode ``0600`` if it does not exist (True); an existing file is
    left as it is (False: see :func:`tighten`).

    An OSError while creating is left to the caller's own open to report (in its words).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except OSError:
        return False
    os.close(fd)
    return True


def tighten(path: str, what: str = "task store file") -> None:
    """Make an existing file ``0600`` (owner bits kept) if group or others have any access to it,
    with a warning naming it; nothing if it does not exist."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    private = mode & 0o700
    try:
        os.chmod(path, private)
    except OSError as exc:
        log.warning(
            "%s %s is open to other users (mode %04o) and cannot be made private: %s",
            what,
            path,
            mode,
            exc.strerror or exc,
        )
        return
    log.warning(
        "%s %s was open to other users (mode %04o): made private (mode %04o)", what, path, mode, private
    )
