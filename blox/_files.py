"""Writing a file without ever destroying what was there.

A regular file is written to a short-named temporary file in the same folder and renamed
over the target only once every byte is on disk, so a failure at any point leaves the old
file as it was. The replacement keeps the old file's mode (and owner, where the process may
set it). A symlink is followed and the file it points to is replaced, so the link survives.
Character devices and FIFOs (``/dev/null``, ``/dev/stdout``, a named pipe) cannot be
replaced by renaming; they are written to directly, and a failed write is reported.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterable

from ._errors import OutputError

MSG_EMPTY = "no output file given (the path is empty); pass a file name."
MSG_FOLDER = "{path}: is a folder, not a file; pass a file name inside it, e.g. {example}."
MSG_NO_FOLDER = "{path}: folder {folder} does not exist; create it first or choose another path."
MSG_READ_ONLY = "{path}: {why}; it was left unchanged. Make it writable (chmod u+w) or choose another name."
MSG_SPECIAL = "{path}: is a {kind}; write to a regular file, a FIFO or a character device instead."
MSG_FAILED = "{path}: cannot write it: {why}. {kept}"
MSG_STREAM = "{path}: writing to this {kind} failed: {why}."
KEPT_OLD = "The existing file is unchanged."
KEPT_NONE = "No file was created."

_TEMP_TRIES = 16


def atomic_write(file: str | os.PathLike, chunks: bytes | bytearray | memoryview | Iterable[bytes]) -> None:
    """Writes ``chunks`` (bytes, or an iterable of bytes-like pieces) to ``file``, all or nothing.

    Raises:
        OutputError: the file cannot be written (read-only, a folder, a missing folder, a full
            disk, ...). The message names ``file`` and says why; an existing file is unchanged.

    Example:
        >>> import os, tempfile
        >>> f = os.path.join(tempfile.mkdtemp(), 'out.txt')
        >>> atomic_write(f, [b'hello ', b'world'])
        >>> open(f, 'rb').read()
        b'hello world'
    """
    path = os.fspath(file)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = [chunks]
    if path == "":
        raise OutputError(MSG_EMPTY)
    if path.endswith(os.sep):
        raise OutputError(MSG_FOLDER.format(path=path, example=os.path.join(path, "out")))
    # Write where a symlink points, so the link itself is kept.
    target = os.path.realpath(path)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(MSG_FAILED.format(path=path, why=_why(e), kept="")) from e
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = file_kind(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(MSG_FOLDER.format(path=path, example=os.path.join(path, "out")))
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            _stream(path, target, kind, chunks)
            return
        raise OutputError(MSG_SPECIAL.format(path=path, kind=kind))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError(MSG_NO_FOLDER.format(path=path, folder=folder))
    if st is not None:
        why = _not_writable(target, folder, st)
        if why:
            raise OutputError(MSG_READ_ONLY.format(path=path, why=why))
    kept = KEPT_OLD if st is not None else KEPT_NONE
    try:
        tmp, fd = _create_temp(folder, st)
    except OSError as e:
        raise OutputError(
            MSG_FAILED.format(path=path, why=f"cannot create a file in {folder}: {_why(e)}", kept=kept)
        ) from e
    _PENDING.add(tmp)
    try:
        with open(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OutputError(MSG_FAILED.format(path=path, why=_why(e), kept=kept)) from e
        raise
    finally:
        _PENDING.discard(tmp)
    _sync_folder(folder)


# Temporary files of atomic writes in flight, so a process that must end at once (blox-inspect on
# Ctrl-C) removes them first instead of leaving `.name.tmp...` files beside the user's.
_PENDING: set[str] = set()


def discard_pending() -> None:
    """Removes the temporary files of every atomic write in flight (their targets stay as they were)."""
    for tmp in list(_PENDING):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _PENDING.discard(tmp)


def _why(e: OSError) -> str:
    # strerror leaves out the file name, which may be our temporary file's rather than the user's.
    return e.strerror or str(e) or type(e).__name__


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (for messages)."""
    for test, name in [
        (stat.S_ISDIR, "folder"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
    ]:
        if test(mode):
            return name
    return "special file"


def _not_writable(target: str, folder: str, st: os.stat_result) -> str | None:
    """Why an existing file must not be replaced, or None when it may be."""
    try:
        read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    if read_only_fs:
        return "is on a read-only file system"
    # Checked by mode bits as well as access(): root may write anything, but a file someone made
    # read-only (chmod a-w) is a file they asked not to be overwritten.
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        return f"is read-only (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _create_temp(folder: str, old: os.stat_result | None) -> tuple[str, int]:
    """A new, empty file in ``folder`` with a short name (a long target name stays legal)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_TRIES):
        tmp = os.path.join(folder, f".{secrets.token_hex(4)}.tmp")
        try:
            # New files get 0o666 less the umask, as a plain open() would give them.
            fd = os.open(tmp, flags, 0o600 if old is not None else 0o666)
        except FileExistsError:
            continue
        if old is not None:
            try:
                _keep_owner_and_mode(fd, old)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return tmp, fd
    raise FileExistsError(errno.EEXIST, "no free temporary file name")


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        # Only root may give a file away; anyone may set a group they belong to.
        for uid in (old.st_uid, -1):
            try:
                os.fchown(fd, uid, old.st_gid)
                break
            except OSError:
                continue
    # After chown, which clears set-id bits.
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def _stream(path: str, target: str, kind: str, chunks: Iterable[bytes]) -> None:
    """Writes straight into a device or FIFO (renaming over one would replace the node itself)."""
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise OutputError(MSG_STREAM.format(path=path, kind=kind, why=_why(e))) from e
    try:
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while view:
                view = view[os.write(fd, view) :]
    except OSError as e:
        raise OutputError(MSG_STREAM.format(path=path, kind=kind, why=_why(e))) from e
    finally:
        os.close(fd)


def _sync_folder(folder: str) -> None:
    """Makes the rename itself durable; some file systems cannot, which is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
