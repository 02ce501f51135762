"""blox._files.atomic_write: a write either lands whole or leaves the old file exactly as it was."""

import os
import stat
import threading

import pytest

import blox as bx
from blox._files import atomic_write


def _listing(folder):
    return sorted(os.listdir(folder))


def test_new_file_gets_the_mode_a_plain_open_would(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a").read_bytes() == b"x"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    assert _listing(tmp_path) == ["a"]


def test_existing_file_keeps_its_mode_and_owner(tmp_path):
    f = tmp_path / "secret"
    f.write_bytes(b"old")
    os.chmod(f, 0o600)
    if os.geteuid() == 0:
        os.chown(f, 1234, 4321)
    atomic_write(f, [b"new ", b"data"])
    st = f.stat()
    assert f.read_bytes() == b"new data" and stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert _listing(tmp_path) == ["secret"]


def test_a_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_bytes(b"old")
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    atomic_write(link, b"new")
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert real.read_bytes() == b"new"
    dangling = tmp_path / "dangling"
    dangling.symlink_to("made.txt")
    atomic_write(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "made.txt").read_bytes() == b"made"


def test_read_only_file_is_refused_and_kept(tmp_path):
    f = tmp_path / "frozen"
    f.write_bytes(b"keep me")
    os.chmod(f, 0o444)
    with pytest.raises(
        bx.OutputError, match=r"frozen: is read-only \(mode 0444\); it was left unchanged\. Make it writable"
    ):
        atomic_write(f, b"new")
    assert f.read_bytes() == b"keep me" and _listing(tmp_path) == ["frozen"]


def test_a_failed_write_keeps_the_old_file_and_names_the_users_path(tmp_path, monkeypatch):
    f = tmp_path / "m.bin"
    f.write_bytes(b"old")

    def crash(*args):
        raise OSError(28, "No space left on device", str(args[0]))

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(
        bx.OutputError, match=r"m.bin: cannot write it: No space left on device\. The existing file is unchanged\.$"
    ) as e:
        atomic_write(f, b"new")
    assert ".tmp" not in str(e.value)
    monkeypatch.undo()
    assert f.read_bytes() == b"old" and _listing(tmp_path) == ["m.bin"]
    assert isinstance(e.value, OSError)  # callers that catch OSError still do


def test_failure_while_producing_chunks_keeps_the_old_file(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"old")

    def chunks():
        yield b"half"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(f, chunks())
    assert f.read_bytes() == b"old" and _listing(tmp_path) == ["m.bin"]


def test_a_long_legal_name_works(tmp_path):
    name = "n" * 250
    atomic_write(tmp_path / name, b"x")
    assert (tmp_path / name).read_bytes() == b"x"
    atomic_write(tmp_path / name, b"y")  # over an existing one too
    assert (tmp_path / name).read_bytes() == b"y" and _listing(tmp_path) == [name]
    with pytest.raises(bx.OutputError, match=r"cannot write it: File name too long"):
        atomic_write(tmp_path / ("n" * 256), b"x")


@pytest.mark.parametrize(
    "target, match",
    [
        ("", r"^no output file given \(the path is empty\)"),
        ("{tmp}", r"is a folder, not a file; pass a file name inside it"),
        ("{tmp}/sub/", r"sub/: is a folder, not a file"),
        ("{tmp}/missing/out.txt", r"out.txt: folder .*missing does not exist; create it first"),
    ],
)
def test_bad_targets_are_clear_errors(tmp_path, target, match):
    with pytest.raises(bx.OutputError, match=match):
        atomic_write(target.format(tmp=tmp_path), b"x")
    assert _listing(tmp_path) == []


def test_a_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    atomic_write(fifo, [b"through ", b"the pipe"])
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_character_devices_are_written_to_not_replaced():
    before = os.stat("/dev/null")
    atomic_write("/dev/null", b"discarded")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_device_is_reported():
    with pytest.raises(
        bx.OutputError, match=r"^/dev/full: writing to this character device failed: No space left on device"
    ):
        atomic_write("/dev/full", b"x" * 10)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_socket_is_refused(tmp_path):
    import socket

    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
        with pytest.raises(
            bx.OutputError, match=r"s: is a socket; write to a regular file, a FIFO or a character device"
        ):
            atomic_write(path, b"x")


def test_a_process_ending_mid_write_can_remove_its_temporary_file(tmp_path):
    """blox-inspect's Ctrl-C handler ends the process at once; discard_pending runs first."""
    from blox._files import discard_pending

    f = tmp_path / "m.bin"
    f.write_bytes(b"old")
    seen = []

    def chunks():
        yield b"half"
        seen.append(sorted(p.name for p in tmp_path.iterdir()))  # the temporary file exists now
        discard_pending()  # what the handler does just before os._exit
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(f, chunks())
    assert len(seen[0]) == 2 and seen[1] == ["m.bin"] and f.read_bytes() == b"old"
