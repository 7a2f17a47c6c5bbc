import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from dagh.runtime.bits import pack_codes
from dagh.runtime.gallery.file import HEADER, GalleryError, append_gallery, load_gallery, save_gallery


@pytest.fixture
def saved(tmp_path, rng):
    codes = pack_codes(rng.choice([-1, 1], (100, 36)))
    ids = rng.permutation(10_000)[:100]
    path = tmp_path / "g.dgal"
    save_gallery(path, codes, ids, 36)
    return path, codes, ids


def run_until_killed(script: str) -> None:
    """Run ``script`` in a child Python that SIGKILLs itself midway (a crash no handler can see)."""
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL


def test_round_trip(saved):
    path, codes, ids = saved
    g = load_gallery(path, bits=36)
    assert g.bits == 36 and np.array_equal(g.codes, codes) and np.array_equal(g.ids, ids)
    d, i = g.to_index().search(codes[:3], 1)
    assert i[:, 0].tolist() == ids[:3].tolist() and (d[:, 0] == 0).all()


def test_empty_gallery(tmp_path):
    save_gallery(tmp_path / "e", np.zeros((0, 2), np.uint8), np.zeros(0, np.int64), 12)
    assert len(load_gallery(tmp_path / "e")) == 0


@pytest.mark.parametrize("cut", [10, 64, 200, 1])
def test_truncated_file(saved, cut):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[:-cut] if cut != 1 else data[:40])
    with pytest.raises(GalleryError, match="truncated|too short"):
        load_gallery(path)


@pytest.mark.parametrize("offset", [20, 33, 70, 90, -40, -1])  # header count, committed size, segment, ids, sum
def test_flipped_byte_fails_checksum(saved, offset):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="checksum"):
        load_gallery(path)


def test_wrong_magic_version_and_bits(saved, tmp_path):
    path = saved[0]
    data = bytearray(path.read_bytes())
    with pytest.raises(GalleryError, match="48-bit"):
        load_gallery(path, bits=48)
    bad = tmp_path / "bad"
    bad.write_bytes(b"NOTGALRY" + bytes(data[8:]))
    with pytest.raises(GalleryError, match="magic"):
        load_gallery(bad)
    data[8] = 9  # version
    bad.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="version 9"):
        load_gallery(bad)
    (tmp_path / "pickle").write_bytes(b"\x80\x04" + b"\0" * 200)
    with pytest.raises(GalleryError):
        load_gallery(tmp_path / "pickle")
    assert HEADER.size == 64


def test_mismatched_codes_refused(tmp_path):
    with pytest.raises(Exception, match="mismatch"):
        save_gallery(tmp_path / "g", np.zeros((3, 3), np.uint8), np.arange(3), 36)
    with pytest.raises(GalleryError, match="ids"):
        save_gallery(tmp_path / "g", np.zeros((3, 5), np.uint8), np.arange(2), 36)


def test_save_killed_midway_leaves_old_file_intact(saved, tmp_path):
    path, codes, ids = saved
    before = path.read_bytes()
    # A child process writes a large gallery over it and is killed mid-write.
    script = (
        "import numpy as np, sys, os, signal\n"
        "import dagh.runtime.gallery.file as G\n"
        "real = G.atomic_write\n"
        "from contextlib import contextmanager\n"
        "@contextmanager\n"
        "def slow(path):\n"
        "    with real(path) as h:\n"
        "        class W:\n"
        "            n = 0\n"
        "            def write(self, b):\n"
        "                h.write(b); W.n += 1\n"
        "                if W.n == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
        "        yield W()\n"
        "G.atomic_write = slow\n"
        f"G.save_gallery({str(path)!r}, np.zeros((100000, 5), np.uint8), np.arange(100000), 36)\n"
    )
    run_until_killed(script)
    assert path.read_bytes() == before
    load_gallery(path)
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) <= 1  # a killed process cannot clean up; the target is what matters


def test_append_adds_codes_without_rewriting(saved, rng):
    path, codes, ids = saved
    before = path.read_bytes()
    more = pack_codes(rng.choice([-1, 1], (30, 36)))
    append_gallery(path, more, np.arange(50_000, 50_030), 36)
    append_gallery(path, more[:0], np.zeros(0, np.int64), 36)  # an empty append is a no-op segment
    after = path.read_bytes()
    assert after[64:len(before)] == before[64:]  # the first segment's bytes are untouched
    g = load_gallery(path, bits=36)
    assert np.array_equal(g.codes, np.concatenate([codes, more]))
    assert np.array_equal(g.ids, np.concatenate([ids, np.arange(50_000, 50_030)]))
    d, i = g.to_index().search(more[:2], 1)
    assert i[:, 0].tolist() == [50_000, 50_001] and (d[:, 0] == 0).all()


def test_append_refuses_another_code_length_and_mismatched_ids(saved):
    path = saved[0]
    with pytest.raises(GalleryError, match="48-bit"):
        append_gallery(path, np.zeros((2, 6), np.uint8), np.arange(2), 48)
    with pytest.raises(GalleryError, match="ids"):
        append_gallery(path, np.zeros((2, 5), np.uint8), np.arange(3), 36)
    with pytest.raises(GalleryError, match="does not exist"):
        append_gallery(path.with_name("none"), np.zeros((2, 5), np.uint8), np.arange(2), 36)


def test_append_killed_before_commit_leaves_the_gallery_as_it_was(saved, tmp_path):
    path, codes, ids = saved
    # A child process appends and is killed after the segment is written, before the header commits it.
    script = (
        "import numpy as np, os, signal\n"
        "import dagh.runtime.gallery.file as G\n"
        "def dying(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "G._header = dying\n"
        f"G.append_gallery({str(path)!r}, np.zeros((1000, 5), np.uint8), np.arange(1000), 36)\n"
    )
    run_until_killed(script)
    assert path.stat().st_size > 64 + 100 * 13  # the uncommitted segment is there ...
    g = load_gallery(path, bits=36)              # ... and ignored
    assert np.array_equal(g.codes, codes) and np.array_equal(g.ids, ids)
    append_gallery(path, np.ones((2, 5), np.uint8), np.array([7, 8]), 36)  # overwrites the leftover
    g = load_gallery(path, bits=36)
    assert len(g) == 102 and g.ids[-2:].tolist() == [7, 8]


def test_version_1_files_still_load_and_refuse_appends(tmp_path, rng):
    import hashlib
    import struct

    codes = pack_codes(rng.choice([-1, 1], (5, 12)))
    body = struct.pack("<8sIIQI36x", b"DAGHGAL1", 1, 12, 5, 2) + codes.tobytes() + b"\0" * 6
    body += np.arange(5, dtype="<i8").tobytes()
    path = tmp_path / "v1.dgal"
    path.write_bytes(body + hashlib.sha256(body).digest())
    g = load_gallery(path, bits=12)
    assert np.array_equal(g.codes, codes) and g.ids.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(GalleryError, match="version-1"):
        append_gallery(path, codes, np.arange(5), 12)
