import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from dagh.runtime.bits import pack_codes
from dagh.runtime.gallery import HEADER, GalleryError, load_gallery, save_gallery


@pytest.fixture
def saved(tmp_path, rng):
    codes = pack_codes(rng.choice([-1, 1], (100, 36)))
    ids = rng.permutation(10_000)[:100]
    path = tmp_path / "g.dgal"
    save_gallery(path, codes, ids, 36)
    return path, codes, ids


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


@pytest.mark.parametrize("offset", [70, -40, -1])
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
        "import dagh.runtime.gallery as G\n"
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
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    load_gallery(path)
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) <= 1  # a killed process cannot clean up; the target is what matters
