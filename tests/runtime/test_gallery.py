import hashlib
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

from dagh.runtime.bits import pack_codes, unpack_codes
from dagh.runtime.gallery.file import (
    HEADER,
    GalleryError,
    append_gallery,
    load_gallery,
    remove_from_gallery,
    save_gallery,
)

NAMES = ["Zoë", "李雷", "Ana", "Олег", "محمد", "Zoë Ann-Marie O'Neil"]


@pytest.fixture
def saved(tmp_path, rng):
    codes = pack_codes(rng.choice([-1, 1], (100, 36)))
    ids = rng.permutation(10_000)[:100]
    path = tmp_path / "g.dgal"
    save_gallery(path, codes, ids, 36)
    return path, codes, ids


@pytest.fixture
def named(tmp_path, rng):
    """A labelled gallery: 60 codes of six people (ten each, interleaved), ids unique and unordered."""
    codes = pack_codes(rng.choice([-1, 1], (60, 36)))
    ids = rng.permutation(10_000)[:60] + 1_000_000
    labels = [NAMES[i % len(NAMES)] for i in range(60)]
    path = tmp_path / "named.dgal"
    save_gallery(path, codes, ids, 36, labels=labels)
    return path, codes, ids, labels


# The formats written by hand from the module docstring, independent of the code under test.

def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def _sealed(part: bytes) -> bytes:
    return part + hashlib.sha256(part).digest()


def v2_segment(codes, ids) -> bytes:
    return _sealed(struct.pack("<8sQ", b"DGSEGMNT", len(ids)) + _pad(codes.tobytes())
                   + np.asarray(ids, "<i8").tobytes())


def v3_segment(codes, ids, raw_labels, *, offsets=None, label_bytes=None) -> bytes:
    blob = b"".join(raw_labels)
    if offsets is None:
        offsets = np.cumsum([0] + [len(r) for r in raw_labels])
    start = struct.pack("<8sQQ", b"DGSEGLBL", len(ids), len(blob) if label_bytes is None else label_bytes)
    return _sealed(start + _pad(codes.tobytes()) + np.asarray(ids, "<i8").tobytes()
                   + _pad(np.asarray(offsets, "<u4").tobytes()) + _pad(blob))


def gallery_bytes(version: int, bits: int, segments: list[bytes], count: int) -> bytes:
    body = b"".join(segments)
    fields = struct.pack("<8sIIQIIQ16x", b"DAGHGAL1", version, bits, count, (bits + 7) // 8, len(segments),
                         64 + len(body))
    return fields + hashlib.sha256(fields).digest()[:8] + body


def run_until_killed(script: str) -> None:
    """Run ``script`` in a child Python that SIGKILLs itself midway (a crash no handler can see)."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def version_of(path) -> int:
    return struct.unpack_from("<I", path.read_bytes(), 8)[0]


def test_round_trip(saved):
    path, codes, ids = saved
    g = load_gallery(path, bits=36)
    assert g.bits == 36 and np.array_equal(g.codes, codes) and np.array_equal(g.ids, ids)
    assert g.labels is None and version_of(path) == 2
    d, i = g.to_index().search(codes[:3], 1)
    assert i[:, 0].tolist() == ids[:3].tolist() and (d[:, 0] == 0).all()
    # Without labels the bytes are the version-2 format's, byte for byte.
    assert path.read_bytes() == gallery_bytes(2, 36, [v2_segment(codes, ids)], 100)


def test_round_trip_with_labels(named):
    path, codes, ids, labels = named
    g = load_gallery(path, bits=36)
    assert version_of(path) == 3
    assert np.array_equal(g.codes, codes) and np.array_equal(g.ids, ids)
    assert g.labels == labels and all(type(label) is str for label in g.labels)
    assert g.people() == {name: 10 for name in NAMES} and list(g.people()) == NAMES
    assert [g.label_of(i) for i in ids[:7]] == labels[:7]
    assert g.label_of(np.int64(ids[1])) == "李雷"
    with pytest.raises(GalleryError, match="id 5 is not in the gallery"):
        g.label_of(5)
    # The bytes are exactly the documented version-3 layout.
    raw = [label.encode("utf-8") for label in labels]
    assert path.read_bytes() == gallery_bytes(3, 36, [v3_segment(codes, ids, raw)], 60)


def test_search_returns_ids_whose_labels_are_right(tmp_path, rng):
    bits, n = 64, 300
    signs = rng.choice([-1, 1], (n, bits))
    ids = rng.permutation(1_000_000)[:n] + 7_000_000_000
    labels = [NAMES[j] for j in rng.integers(0, len(NAMES), n)]
    save_gallery(tmp_path / "g", pack_codes(signs), ids, bits, labels=labels)
    g = load_gallery(tmp_path / "g", bits=bits)
    people = rng.choice(n, 40, replace=False)
    noisy = signs[people].copy()
    for row in noisy:  # three bits off: still far nearer its own code than any other (about 32 bits away)
        row[rng.choice(bits, 3, replace=False)] *= -1
    d, i = g.to_index().search(pack_codes(noisy), 2)
    assert (d[:, 0] == 3).all() and i[:, 0].tolist() == ids[people].tolist()
    names = g.labels_of(i)
    assert names.shape == (40, 2) and names[:, 0].tolist() == [labels[p] for p in people]
    assert [g.label_of(x) for x in i[:, 1]] == names[:, 1].tolist()
    _, far = g.to_index().search(pack_codes(noisy[:1]), n + 5)  # k past the gallery: padded with -1
    far_names = g.labels_of(far)
    assert far[0, -1] == -1 and far_names[0, -1] is None and far_names[0, 0] == labels[people[0]]


def test_labels_are_stored_nfc_and_matched_so(tmp_path):
    decomposed = "Zoe\u0308"  # e + combining diaeresis: what a macOS folder name may hold
    save_gallery(tmp_path / "g", np.zeros((2, 2), np.uint8), [1, 2], 12, labels=[decomposed, "Zoë"])
    g = load_gallery(tmp_path / "g")
    assert g.labels == ["Zoë", "Zoë"] and g.people() == {"Zoë": 2}
    assert remove_from_gallery(tmp_path / "g", labels=decomposed) == 2


@pytest.mark.parametrize("label, problem", [
    ("", "empty"),
    ("Ana\0", "control character"),
    ("Ana\nBo", "control character"),
    ("Ana\tBo", "control character"),
    ("Ana\r", "control character"),
    ("Ana\x7f", "control character"),
    ("Ana\x85", "control character"),
    ("Ana\u2028Bo", "control character"),
    (" Ana", "whitespace"),
    ("Ana ", "whitespace"),
    ("   ", "whitespace"),
    ("a" * 257, "257 bytes"),
    ("é" * 129, "258 bytes"),  # 129 characters, two bytes each
    ("\ud800", "surrogate"),
    (5, "int"),
    (b"Ana", "bytes"),
    (None, "NoneType"),
])
def test_bad_labels_refused(tmp_path, label, problem):
    labels = ["Zoë", label, "李雷"]
    with pytest.raises(GalleryError, match=f"label 1 .*{problem}"):
        save_gallery(tmp_path / "g", np.zeros((3, 2), np.uint8), [1, 2, 3], 12, labels=labels)
    assert not (tmp_path / "g").exists()


def test_labels_at_the_limits_and_their_shape(tmp_path):
    longest = ["a" * 256, "é" * 128, "李" * 85, "Q"]  # 256, 256, 255 and 1 bytes
    save_gallery(tmp_path / "g", np.zeros((4, 2), np.uint8), [1, 2, 3, 4], 12, labels=longest)
    assert load_gallery(tmp_path / "g").labels == longest
    codes = np.zeros((2, 2), np.uint8)
    with pytest.raises(GalleryError, match="2 codes but 1 labels"):
        save_gallery(tmp_path / "h", codes, [1, 2], 12, labels=["Ana"])
    with pytest.raises(GalleryError, match="list of str"):
        save_gallery(tmp_path / "h", codes, [1, 2], 12, labels="An")  # a str is not one label per code
    save_gallery(tmp_path / "h", codes[:0], np.zeros(0, np.int64), 12, labels=[])
    g = load_gallery(tmp_path / "h")
    assert len(g) == 0 and g.labels == [] and g.people() == {} and version_of(tmp_path / "h") == 3


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


@pytest.mark.parametrize("cut", [1, 8, 33, 40, 300])  # into the checksum, the blob, the offsets, the ids
def test_truncated_labelled_file(named, cut):
    path = named[0]
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(GalleryError, match="truncated"):
        load_gallery(path)


# header count, committed size, segment, ids, checksum
@pytest.mark.parametrize("offset", [20, 33, 70, 90, -40, -1])
def test_flipped_byte_fails_checksum(saved, offset):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="checksum"):
        load_gallery(path)


def test_flipped_label_byte_fails_checksum(named):
    path, codes, ids, labels = named
    data = path.read_bytes()
    blob = b"".join(label.encode() for label in labels)
    at_blob = data.index(blob)
    at_offsets = at_blob - 8 * ((4 * 61 + 7) // 8)
    for offset in (at_blob, at_blob + len(blob) - 1, at_offsets + 4, 80):  # blob, offsets, label-bytes field
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(GalleryError, match="checksum|corrupt"):
            load_gallery(path)


CODES = np.arange(6, dtype=np.uint8).reshape(3, 2)


@pytest.mark.parametrize("raw, offsets, problem", [
    ([b"Ana", b"\xff\xfe", b"Bo"], None, "not valid UTF-8"),
    ([b"Ana", b"Zo\xc3", b"Bo"], None, "not valid UTF-8"),             # a character cut at the end of a label
    ([b"Ana", b"Zo\xc3", b"\xab"], None, "starts inside a UTF-8"),     # ... and its end starting the next
    ([b"Ana", b"Bo\0", b"Cy"], None, "control character"),
    ([b"Ana", b"Bo\n", b"Cy"], None, "control character"),
    ([b"Ana", b"Bo", b"Cy"], [0, 3, 5, 99], "offsets out of range"),     # past the blob
    ([b"Ana", b"Bo", b"Cy"], [1, 3, 5, 7], "offsets out of range"),      # not starting at 0
    ([b"Ana", b"Bo", b"Cy"], [0, 3, 3, 7], "offsets out of range"),      # an empty label
    ([b"Ana", b"Bo", b"Cy"], [0, 5, 3, 7], "offsets out of range"),      # going backwards
    ([b"A" * 300, b"Bo", b"Cy"], None, "offsets out of range"),          # a label over 256 bytes
])
def test_bad_label_bytes_are_clear_errors(tmp_path, raw, offsets, problem):
    """Bad label bytes under a valid checksum (a buggy writer, not a flipped bit) are still caught."""
    path = tmp_path / "bad.dgal"
    path.write_bytes(gallery_bytes(3, 12, [v3_segment(CODES, [1, 2, 3], raw, offsets=offsets)], 3))
    for verify in (True, False):
        with pytest.raises(GalleryError, match=problem):
            load_gallery(path, verify=verify)
    # The same builder with good labels loads: the errors above come from the labels.
    good = tmp_path / "good.dgal"
    good.write_bytes(gallery_bytes(3, 12, [v3_segment(CODES, [1, 2, 3], [b"Ana", b"Zo\xc3\xab", b"Bo"])], 3))
    assert load_gallery(good).labels == ["Ana", "Zoë", "Bo"]


def test_label_bytes_field_past_the_file_is_an_error(tmp_path):
    path = tmp_path / "bad.dgal"
    segment = v3_segment(CODES, [1, 2, 3], [b"Ana", b"Bo", b"Cy"], label_bytes=10**6)
    path.write_bytes(gallery_bytes(3, 12, [segment], 3))
    with pytest.raises(GalleryError, match="corrupt or truncated"):
        load_gallery(path)


def test_a_labelled_file_repeating_ids_is_corrupt(tmp_path):
    path = tmp_path / "bad.dgal"
    path.write_bytes(gallery_bytes(3, 12, [v3_segment(CODES, [1, 2, 1], [b"Ana", b"Bo", b"Cy"])], 3))
    with pytest.raises(GalleryError, match="repeats ids"):
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
    with pytest.raises(GalleryError, match="version 9.*versions 1 to 3"):
        load_gallery(bad)
    (tmp_path / "pickle").write_bytes(b"\x80\x04" + b"\0" * 200)
    with pytest.raises(GalleryError):
        load_gallery(tmp_path / "pickle")
    assert HEADER.size == 64


def test_segment_magic_must_match_the_version(named, saved):
    """A version-2 segment under a version-3 header (or the other way) is refused, not misread."""
    for path in (named[0], saved[0]):
        data = bytearray(path.read_bytes())
        data[8] = 5 - data[8]  # 3 <-> 2
        header = bytes(data[:56])
        path.write_bytes(header + hashlib.sha256(header).digest()[:8] + bytes(data[64:]))
        with pytest.raises(GalleryError, match="corrupt"):
            load_gallery(path)


def test_mismatched_codes_refused(tmp_path):
    with pytest.raises(Exception, match="mismatch"):
        save_gallery(tmp_path / "g", np.zeros((3, 3), np.uint8), np.arange(3), 36)
    with pytest.raises(GalleryError, match="ids"):
        save_gallery(tmp_path / "g", np.zeros((3, 5), np.uint8), np.arange(2), 36)


@pytest.mark.parametrize("labels", [None, ["Ana", "Ana", "Bo"]])
def test_duplicate_ids_refused_on_save(tmp_path, labels):
    with pytest.raises(GalleryError, match=r"ids must be unique.*\[7\].*labels="):
        save_gallery(tmp_path / "g", np.zeros((3, 2), np.uint8), [7, 3, 7], 12, labels=labels)
    assert not (tmp_path / "g").exists()


def test_duplicate_ids_refused_on_append(named, saved):
    for path, labels in ((named[0], ["Ana", "Bo"]), (saved[0], None)):
        before = path.read_bytes()
        taken = int(load_gallery(path).ids[5])
        with pytest.raises(GalleryError, match=rf"already in the gallery, e.g. \[{taken}\]"):
            append_gallery(path, np.zeros((2, 5), np.uint8), [99_999_999, taken], 36, labels=labels)
        with pytest.raises(GalleryError, match="must be unique"):
            append_gallery(path, np.zeros((2, 5), np.uint8), [99_999_999, 99_999_999], 36, labels=labels)
        assert path.read_bytes() == before


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
    assert g.labels is None and version_of(path) == 2
    d, i = g.to_index().search(more[:2], 1)
    assert i[:, 0].tolist() == [50_000, 50_001] and (d[:, 0] == 0).all()


def test_append_with_labels(named, rng):
    path, codes, ids, labels = named
    before = path.read_bytes()
    more = pack_codes(rng.choice([-1, 1], (5, 36)))
    new_labels = ["Zoë", "Nuevo Niño", "李雷", "Nuevo Niño", "Ōsaka Tarō"]
    append_gallery(path, more, np.arange(5), 36, labels=new_labels)
    append_gallery(path, more[:0], np.zeros(0, np.int64), 36, labels=[])
    append_gallery(path, more[:1] ^ 0xFF, [-1_000], 36, labels=["李雷"])
    assert path.read_bytes()[64:len(before)] == before[64:]
    g = load_gallery(path, bits=36)
    assert version_of(path) == 3 and len(g) == 66
    assert g.labels == labels + new_labels + ["李雷"]
    assert g.ids[-6:].tolist() == [0, 1, 2, 3, 4, -1_000]
    people = g.people()
    assert people["Zoë"] == 11 and people["李雷"] == 12
    assert people["Nuevo Niño"] == 2 and people["Ōsaka Tarō"] == 1
    assert g.label_of(3) == "Nuevo Niño" and g.label_of(-1_000) == "李雷"
    assert g.label_of(ids[4]) == "محمد"
    d, i = g.to_index().search(more[:2], 1)
    assert (d[:, 0] == 0).all() and g.labels_of(i)[:, 0].tolist() == ["Zoë", "Nuevo Niño"]


def test_append_labels_required_refused_and_the_upgrade(named, saved):
    labelled, plain = named[0], saved[0]
    codes = np.zeros((1, 5), np.uint8)
    with pytest.raises(GalleryError, match="has labels.*pass labels="):
        append_gallery(labelled, codes, [1], 36)
    with pytest.raises(GalleryError, match="no labels.*version 2.*save_gallery.*labels="):
        append_gallery(plain, codes, [20_000], 36, labels=["Ana"])
    with pytest.raises(GalleryError, match="1 codes but 2 labels"):
        append_gallery(labelled, codes, [1], 36, labels=["Ana", "Bo"])
    with pytest.raises(GalleryError, match="control character"):
        append_gallery(labelled, codes, [1], 36, labels=["Ana\n"])
    # The upgrade the message describes: write the version-2 gallery again with names, then append.
    g = load_gallery(plain)
    save_gallery(plain, g.codes, g.ids, g.bits, labels=[f"person {i % 7}" for i in range(len(g))])
    append_gallery(plain, codes, [20_000], 36, labels=["Ana"])
    g = load_gallery(plain)
    assert version_of(plain) == 3 and g.labels[-1] == "Ana" and g.people()["person 0"] == 15


def test_append_refuses_another_code_length_and_mismatched_ids(saved):
    path = saved[0]
    with pytest.raises(GalleryError, match="48-bit"):
        append_gallery(path, np.zeros((2, 6), np.uint8), np.arange(2), 48)
    with pytest.raises(GalleryError, match="ids"):
        append_gallery(path, np.zeros((2, 5), np.uint8), np.arange(3), 36)
    with pytest.raises(GalleryError, match="does not exist"):
        append_gallery(path.with_name("none"), np.zeros((2, 5), np.uint8), np.arange(2), 36)


def test_append_refuses_a_corrupt_file(named):
    path = named[0]
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="checksum"):
        append_gallery(path, np.zeros((1, 5), np.uint8), [1], 36, labels=["Ana"])
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize("fixture", ["saved", "named"])
def test_append_killed_before_commit_leaves_the_gallery_as_it_was(fixture, request):
    path, codes, ids = request.getfixturevalue(fixture)[:3]
    labelled = fixture == "named"
    labels = "labels=['Bo'] * 1000" if labelled else "labels=None"
    # A child process appends and is killed after the segment is written, before the header commits it.
    script = (
        "import numpy as np, os, signal\n"
        "import dagh.runtime.gallery.file as G\n"
        "def dying(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "G._header = dying\n"
        f"G.append_gallery({str(path)!r}, np.zeros((1000, 5), np.uint8), np.arange(1000) + 20_000, 36, "
        f"{labels})\n"
    )
    size = path.stat().st_size
    run_until_killed(script)
    assert path.stat().st_size > size + 1000 * 13  # the uncommitted segment is there ...
    g = load_gallery(path, bits=36)                # ... and ignored
    assert np.array_equal(g.codes, codes) and np.array_equal(g.ids, ids)
    append_gallery(path, np.ones((2, 5), np.uint8), np.array([7, 8]) + 30_000, 36,
                   labels=["Ana", "Cy"] if labelled else None)  # overwrites the leftover
    g = load_gallery(path, bits=36)
    assert len(g) == len(ids) + 2 and g.ids[-2:].tolist() == [30_007, 30_008]
    assert (g.labels[-3:] == [named_label(len(ids) - 1), "Ana", "Cy"]) if labelled else g.labels is None


def named_label(i: int) -> str:
    return NAMES[i % len(NAMES)]


def test_version_2_files_still_load(tmp_path, rng):
    codes = pack_codes(rng.choice([-1, 1], (9, 20)))
    path = tmp_path / "v2.dgal"
    segments = [v2_segment(codes[:4], [5, 5, 6, 7]), v2_segment(codes[4:], [10, 11, 12, 13, 14])]
    path.write_bytes(gallery_bytes(2, 20, segments, 9))  # old files may repeat ids: they load as they are
    g = load_gallery(path, bits=20)
    assert np.array_equal(g.codes, codes) and g.ids.tolist() == [5, 5, 6, 7, 10, 11, 12, 13, 14]
    assert g.labels is None
    for ask in (g.people, lambda: g.label_of(5), lambda: g.labels_of([5])):
        with pytest.raises(GalleryError, match="has no labels"):
            ask()
    with pytest.raises(GalleryError, match="no labels.*by ids="):
        remove_from_gallery(path, labels="Ana")
    assert remove_from_gallery(path, ids=5) == 2  # both codes of the repeated id
    assert load_gallery(path).ids.tolist() == [6, 7, 10, 11, 12, 13, 14] and version_of(path) == 2


def test_version_1_files_still_load_and_refuse_appends(tmp_path, rng):
    codes = pack_codes(rng.choice([-1, 1], (5, 12)))
    body = struct.pack("<8sIIQI36x", b"DAGHGAL1", 1, 12, 5, 2) + codes.tobytes() + b"\0" * 6
    body += np.arange(5, dtype="<i8").tobytes()
    path = tmp_path / "v1.dgal"
    path.write_bytes(body + hashlib.sha256(body).digest())
    g = load_gallery(path, bits=12)
    assert np.array_equal(g.codes, codes) and g.ids.tolist() == [0, 1, 2, 3, 4] and g.labels is None
    with pytest.raises(GalleryError, match="version-1"):
        append_gallery(path, codes, np.arange(5) + 10, 12)
    assert remove_from_gallery(path, ids=[1, 3]) == 2  # written again as version 2
    g = load_gallery(path, bits=12)
    assert version_of(path) == 2 and g.ids.tolist() == [0, 2, 4] and np.array_equal(g.codes, codes[[0, 2, 4]])


def test_remove_by_label_and_by_id(named):
    path, codes, ids, labels = named
    assert remove_from_gallery(path, labels="Zoë") == 10
    g = load_gallery(path, bits=36)
    keep = [j for j, label in enumerate(labels) if label != "Zoë"]
    assert g.labels == [labels[j] for j in keep] and np.array_equal(g.ids, ids[keep])
    assert np.array_equal(g.codes, codes[keep]) and "Zoë" not in g.people()
    assert remove_from_gallery(path, ids=ids[1]) == 1  # one code of 李雷; the other nine stay
    # ids[2] is an Ana, ids[3] an Олег: the union is one Ana and ten Олег.
    assert remove_from_gallery(path, ids=[int(ids[2]), int(ids[3])], labels=["Олег", "nobody"]) == 11
    g = load_gallery(path, bits=36)
    assert g.people() == {"李雷": 9, "Ana": 9, "محمد": 10, "Zoë Ann-Marie O'Neil": 10}
    assert ids[1] not in g.ids and g.label_of(ids[7]) == "李雷"
    d, i = g.to_index().search(codes[[4, 7]], 1)
    assert (d[:, 0] == 0).all() and g.labels_of(i)[:, 0].tolist() == ["محمد", "李雷"]
    before = path.read_bytes()
    assert remove_from_gallery(path, labels=["nobody"], ids=[123]) == 0
    assert path.read_bytes() == before  # nothing matched: nothing written
    assert remove_from_gallery(path, labels=list(g.people())) == len(g)
    g = load_gallery(path, bits=36)
    assert len(g) == 0 and g.labels == [] and version_of(path) == 3


def test_remove_after_appends_and_bad_arguments(named, rng):
    path, _, ids, labels = named
    append_gallery(path, np.zeros((2, 5), np.uint8), [1, 2], 36, labels=["Bo", "Cy"])
    assert remove_from_gallery(path, ids=np.array([1, ids[0]])) == 2
    g = load_gallery(path)
    assert len(g) == 60 and g.labels == labels[1:] + ["Cy"] and g.ids[-1] == 2
    with pytest.raises(GalleryError, match="ids= or labels="):
        remove_from_gallery(path)
    with pytest.raises(GalleryError, match="integers"):
        remove_from_gallery(path, ids=[1.5])
    with pytest.raises(GalleryError, match="must be str"):
        remove_from_gallery(path, labels=[7])
    with pytest.raises(GalleryError, match="does not exist"):
        remove_from_gallery(path.with_name("none"), ids=[1])


def test_remove_that_fails_at_the_rename_leaves_the_old_file(named, monkeypatch):
    path = named[0]
    before = path.read_bytes()

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        remove_from_gallery(path, labels="Zoë")
    monkeypatch.undo()
    assert path.read_bytes() == before and load_gallery(path).labels == named[3]
    assert [p for p in os.listdir(path.parent) if p.endswith(".tmp")] == []


def test_remove_killed_midway_leaves_the_old_file(named):
    path = named[0]
    before = path.read_bytes()
    script = (
        "import os, signal\n"
        "import dagh.runtime.gallery.file as G\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"  # killed with the new file written
        f"G.remove_from_gallery({str(path)!r}, labels=['Zoë', '李雷'])\n"
    )
    run_until_killed(script)
    assert path.read_bytes() == before and load_gallery(path).people()["Zoë"] == 10
    assert remove_from_gallery(path, labels=["Zoë", "李雷"]) == 20  # the next try works


def test_codes_round_trip_through_their_bits(named):
    """A labelled file's codes unpack to the signs that were saved (no shift from the label parts)."""
    path, codes, _, _ = named
    assert np.array_equal(unpack_codes(load_gallery(path).codes, 36), unpack_codes(codes, 36))


def test_the_gallery_package_exports_the_new_names():
    import dagh.runtime.gallery as room
    import dagh.runtime.gallery.file as file

    assert room.remove_from_gallery is file.remove_from_gallery and "remove_from_gallery" in room.__all__
    assert room.Gallery is file.Gallery and room.GalleryError is file.GalleryError
