"""Reading a file a user named, or a file of a run directory: regular files only, bounded.

Every reader of scenarios, packs and run files opens them here, so that a FIFO or a device
(which would block or never end) is refused at once, a file too large is refused before it
is read whole, and, where `follow_links` is off (the files of a run directory), a symbolic
link is refused instead of being followed out of the folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from xinyong.errors import XinyongError


def read_bytes(path: str | Path, limit: int, *, follow_links: bool = True) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them; one-line errors naming
    the file otherwise (missing, not a regular file, a symbolic link, too large)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO does not wait for a writer
    except FileNotFoundError:
        raise XinyongError("file not found", file=path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise XinyongError("is a symbolic link (not followed here)", file=path) from None
        raise XinyongError(f"cannot read file ({_reason(exc)})", file=path) from None
    except ValueError:  # a NUL in the name
        raise XinyongError("cannot read file (a NUL in its name)", file=path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
            raise XinyongError(f"is {kind}, not a regular file", file=path)
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise XinyongError(f"cannot read file ({_reason(exc)})", file=path) from None
    finally:
        os.close(fd)
    if size > limit:
        raise XinyongError(f"file is larger than {_size(limit)}", file=path)
    return b"".join(chunks)


def read_text(path: str | Path, limit: int, *, follow_links: bool = True) -> str:
    """`read_bytes`, decoded as UTF-8 (a one-line error when it is not)."""
    try:
        return read_bytes(path, limit, follow_links=follow_links).decode("utf-8")
    except UnicodeDecodeError:
        raise XinyongError("not UTF-8 text", file=path) from None


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else exc.__class__.__name__


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit:,} bytes"
