"""gir.data.storage.Location on a folder and on a loopback S3 server (moto): listing only
regular files (a bad entry is one entry, never the whole folder), atomic and exclusive writes,
conditional replace, the temp-file sweep, and timeouts on every remote call."""

from __future__ import annotations

import os
import time

import pytest

from batchkit import s3  # noqa: F401


def tree(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_scan_lists_regular_files_and_reports_each_bad_entry_alone(tmp_path):
    from gir.data.storage import Location

    tree(tmp_path, {"a/one.png": b"1", "two.png": b"22", ".hidden.png": b"", "a/.tmp/x": b""})
    os.symlink("two.png", tmp_path / "link.png")            # a link to a file: listed
    os.symlink("loop2.png", tmp_path / "loop1.png")         # a loop: one failed entry each
    os.symlink("loop1.png", tmp_path / "loop2.png")
    os.symlink("gone.png", tmp_path / "dangling.png")       # dangling: one failed entry
    os.mkfifo(tmp_path / "pipe.jpg")                        # a FIFO: skipped, never opened
    os.symlink("a", tmp_path / "dirlink")                   # a folder link: not followed
    got = Location(tmp_path).scan()
    assert [(s.rel, s.size) for s in got.files] == [("a/one.png", 1), ("link.png", 2),
                                                    ("two.png", 2)]
    assert dict(got.failed) == {"loop1.png": "symlink loop", "loop2.png": "symlink loop",
                                "dangling.png": "dangling symlink (to gone.png)"}
    assert dict(got.skipped) == {"pipe.jpg": "not a regular file (a FIFO)",
                                 "dirlink": "symlink to a folder (not followed)"}
    assert Location(tmp_path).list() == got.files


def test_stat_read_and_why_not(tmp_path):
    from gir.data.storage import Location

    tree(tmp_path, {"f.png": b"abc"})
    os.mkfifo(tmp_path / "p.png")
    os.symlink("nope", tmp_path / "d.png")
    loc = Location(tmp_path)
    st = loc.stat("f.png")
    assert st.size == 3 and st.stamp.startswith("3:")
    assert loc.stat("p.png") is None and loc.why_not("p.png") == "not a regular file (a FIFO)"
    assert loc.why_not("d.png") == "dangling symlink (to nope)"
    assert loc.why_not("absent.png") == "no such file or object"
    with pytest.raises(OSError, match="not a regular file"):
        loc.read("p.png")               # returns at once: a FIFO is refused, not waited on
    assert loc.read("f.png") == b"abc" and loc.read_many(["f.png", "absent.png"]) == {
        "f.png": b"abc"}


def test_local_create_is_exclusive_and_replace_needs_the_same_version(tmp_path):
    from gir.data.storage import Location

    loc = Location(tmp_path)
    assert loc.create("l/x.json", b"first") is True
    assert loc.create("l/x.json", b"second") is False
    data, stamp = loc.read_stamped("l/x.json")
    assert data == b"first"
    time.sleep(0.01)
    assert loc.replace_if("l/x.json", b"third", stamp) is True
    assert loc.read("l/x.json") == b"third"
    assert loc.replace_if("l/x.json", b"fourth", stamp) is False       # stale version
    assert loc.read("l/x.json") == b"third"
    stamp = loc.read_stamped("l/x.json")[1]                             # gapless (a renewal)
    time.sleep(0.01)
    assert loc.replace_if("l/x.json", b"fifth", stamp, gapless=True) is True
    assert loc.replace_if("l/x.json", b"sixth", stamp, gapless=True) is False
    assert loc.read("l/x.json") == b"fifth"
    assert loc.replace_if("l/gone.json", b"x", stamp, gapless=True) is False
    assert loc.replace_if("nofolder/x.json", b"x", stamp, gapless=True) is False
    loc.delete("l/x.json")
    loc.delete("l/x.json")                                              # gone: no error
    assert loc.read_stamped("l/x.json") is None
    assert sorted(p.name for p in (tmp_path / "l").iterdir()) == []     # no temp files left


def test_sweep_removes_only_old_temp_files(tmp_path):
    from gir.data.storage import Location

    tree(tmp_path, {"a/.x.png.abc.tmp": b"", "a/.y.png.def.tmp": b"", "a/x.png": b"",
                    ".notes.txt": b""})
    old = time.time() - 7200
    os.utime(tmp_path / "a/.x.png.abc.tmp", (old, old))
    os.utime(tmp_path / "a/x.png", (old, old))
    os.utime(tmp_path / ".notes.txt", (old, old))
    assert Location(tmp_path).sweep_temp(3600) == ["a/.x.png.abc.tmp"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".y.png.def.tmp", "x.png"]
    assert (tmp_path / ".notes.txt").exists()


def test_write_is_atomic_and_a_full_disk_is_one_line(tmp_path):
    from gir.data.storage import Location, one_line

    loc = Location(tmp_path)
    loc.write("d/e/f.bin", b"x" * 10)
    assert (tmp_path / "d/e/f.bin").read_bytes() == b"x" * 10
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    try:
        with open("/dev/full", "wb") as f:
            f.write(b"x")
            f.flush()
    except OSError as exc:
        assert one_line(exc) == "OSError: No space left on device"


def test_s3_conditional_writes_and_scan(s3):
    from gir.data.storage import Location

    url, client = s3
    client.create_bucket(Bucket="gir-storage")
    loc = Location("s3://gir-storage/p")
    assert loc.create("l/x.json", b"first") is True
    assert loc.create("l/x.json", b"second") is False                   # If-None-Match: *
    data, etag = loc.read_stamped("l/x.json")
    assert data == b"first"
    assert loc.replace_if("l/x.json", b"third", etag) is True          # If-Match: that ETag
    assert loc.replace_if("l/x.json", b"fourth", etag) is False
    assert loc.read("l/x.json") == b"third"
    loc.write("a/b.png", b"12")
    got = loc.scan()
    assert [s.rel for s in got.files] == ["a/b.png", "l/x.json"] and not got.failed
    loc.delete("l/x.json")
    assert loc.read_stamped("l/x.json") is None and loc.stat("l/x.json") is None


def test_every_remote_call_has_timeouts(s3):
    from gir.data.storage import Location, Timeouts, remote_options, set_timeouts

    opts = remote_options("s3://b/p", Timeouts(connect_s=1.5, read_s=4, attempts=3))
    assert opts["config_kwargs"]["connect_timeout"] == 1.5
    assert opts["config_kwargs"]["read_timeout"] == 4
    assert opts["config_kwargs"]["retries"]["max_attempts"] == 3
    assert opts["endpoint_url"] == s3[0]
    set_timeouts(Timeouts(connect_s=2, read_s=3, attempts=1))
    try:
        loc = Location("s3://gir-storage/q")
        assert loc.fs.retries == 1
        config = loc.fs.config_kwargs
        assert config["read_timeout"] == 3 and config["connect_timeout"] == 2
    finally:
        set_timeouts(Timeouts())
    assert remote_options("/local/folder") == {}


def test_an_object_that_arrives_after_a_listing_can_be_read(s3):
    """A watcher lists, then reads what arrived since: no stale listing says "not found"."""
    from gir.data.storage import Location

    url, client = s3
    client.create_bucket(Bucket="gir-arrivals")
    client.put_object(Bucket="gir-arrivals", Key="in/sub/first.png", Body=b"1")
    loc = Location("s3://gir-arrivals/in")
    assert [s.rel for s in loc.list()] == ["sub/first.png"]
    client.put_object(Bucket="gir-arrivals", Key="in/sub/second.png", Body=b"22")
    assert loc.read("sub/second.png") == b"22"
    assert loc.stat("sub/second.png").size == 2
    assert [s.rel for s in loc.list()] == ["sub/first.png", "sub/second.png"]
