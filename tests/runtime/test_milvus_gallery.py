"""MilvusGallery on a real Milvus Lite 2.5.1 (started by pymilvus in a child process, on a local file):
exact results equal to HammingIndex, integrity of what dagh committed, validation of every batch."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus and milvus-lite are not installed (pip install 'dagh[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install 'dagh[milvus]')")

from dagh.errors import DaghError  # noqa: E402
from dagh.runtime import HammingIndex  # noqa: E402
from dagh.runtime.bits import pack_codes  # noqa: E402
from dagh.runtime.gallery.milvus import RECORD_SUFFIX, MilvusGallery, MilvusGalleryError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("milvus") / "galleries.db"


def _gallery_with_ties(rng, n, bits):
    """Random codes, a quarter of them repeated, so that equal distances are common."""
    codes = pack_codes(rng.integers(0, 2, (n, bits)).astype(bool))
    codes[n // 2: n // 2 + n // 4] = codes[: n // 4]
    return codes, rng.permutation(np.arange(n) * 7 + 3)  # ids not in insertion order


@pytest.mark.parametrize("bits", [12, 24, 36, 48, 64, 128])
def test_results_equal_hamming_index(db, bits):
    rng = np.random.default_rng(bits)
    codes, ids = _gallery_with_ties(rng, 600, bits)
    with MilvusGallery.open(db, f"exact_{bits}", bits=bits) as gallery:
        gallery.add(codes[:400], ids[:400], labels=[f"p{i % 13}" for i in range(400)])
        gallery.add(codes[400:], ids[400:], labels=[f"p{i % 13}" for i in range(400, 600)])
        reference = HammingIndex(bits, backend="numpy")
        reference.add(codes, ids)
        queries = np.concatenate([codes[:10], pack_codes(rng.integers(0, 2, (20, bits)).astype(bool))])
        for k in (1, 10, 100):
            got, want = gallery.search(queries, k), reference.search(queries, k)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (bits, k)
        radius = max(1, bits // 6)
        for (gd, gi), (rd, ri) in zip(gallery.range_search(queries, radius), reference.range_search(queries, radius)):
            assert np.array_equal(gd, rd) and np.array_equal(gi, ri)
        assert len(gallery) == 600 and gallery.labels.get(int(ids[5])) == "p5"


def test_padding_short_galleries_and_removal(db):
    rng = np.random.default_rng(1)
    codes = pack_codes(rng.integers(0, 2, (5, 24)).astype(bool))
    with MilvusGallery.open(db, "small", bits=24) as gallery:
        gallery.add(codes, np.arange(5))
        distances, ids = gallery.search(codes[:2], 8)
        assert (ids[:, 5:] == -1).all() and (distances[:, 5:] == -1).all() and ids[0, 0] == 0
        assert gallery.remove([1, 2, 99]) == 2 and len(gallery) == 3
        assert sorted(gallery.ids().tolist()) == [0, 3, 4]
        assert gallery.search(codes[1:2], 1)[1][0, 0] != 1


@pytest.mark.parametrize("change, expect", [
    (lambda g: g.add(np.zeros((2, 4), np.uint8), [1, 2]), "packed uint8 rows [n, 3]"),
    (lambda g: g.add(np.zeros((2, 3), np.float32), [1, 2]), "packed uint8 rows"),
    (lambda g: g.add(np.zeros((2, 3), np.uint8), [1, 1]), "repeat"),
    (lambda g: g.add(np.zeros((2, 3), np.uint8), [1.5, 2]), "integers"),
    (lambda g: g.add(np.zeros((1, 3), np.uint8), [0]), "already"),
    (lambda g: g.add(np.zeros((1, 3), np.uint8), [7], labels=["x" * 300]), "longer than 256"),
    (lambda g: g.search(np.zeros((1, 3), np.uint8), 0), "k must be"),
    (lambda g: g.search(np.zeros((1, 3), np.uint8), 20_000), "Milvus' limit"),
    (lambda g: g.range_search(np.zeros((1, 3), np.uint8), -1), "radius"),
], ids=["width", "float", "repeated ids", "float ids", "id present", "long label", "k=0", "k too large",
        "radius<0"])
def test_every_batch_is_validated_before_it_is_sent(db, change, expect):
    with MilvusGallery.open(db, "validated", bits=24) as gallery:
        if not len(gallery):
            gallery.add(np.zeros((1, 3), np.uint8), [0])
        with pytest.raises(DaghError, match=expect.replace("[", r"\[").replace("]", r"\]")):
            change(gallery)
        assert len(gallery) == 1  # nothing was sent


def test_padding_bits_must_be_zero(db):
    with MilvusGallery.open(db, "padded", bits=12) as gallery, pytest.raises(DaghError, match="padding bits"):
        gallery.add(np.array([[0, 0x0F]], np.uint8), [1])


def test_a_collection_changed_behind_daghs_back_is_refused(db):
    from pymilvus import MilvusClient

    with MilvusGallery.open(db, "watched", bits=16) as gallery:
        gallery.add(np.arange(20, dtype=np.uint8).reshape(10, 2), np.arange(10))
    client = MilvusClient(str(db))
    client.delete("watched", ids=[3])  # rows lost outside dagh
    client.close()
    with pytest.raises(MilvusGalleryError, match="holds 9 codes but dagh committed 10"):
        MilvusGallery.open(db, "watched", bits=16)
    client = MilvusClient(str(db))
    client.insert("watched", [{"id": 77, "code": b"\x01\x02", "label": "", "site": ""}])  # same count, other ids
    client.close()
    with pytest.raises(MilvusGalleryError, match="other ids than dagh committed"):
        MilvusGallery.open(db, "watched", bits=16)
    assert len(MilvusGallery.open(db, "watched", bits=16, verify=False)) == 10  # count only: it matches
    with pytest.raises(MilvusGalleryError, match="holds 16-bit codes, not 24-bit"):
        MilvusGallery.open(db, "watched", bits=24)


def test_a_change_cut_short_is_settled_by_what_the_collection_holds(db):
    """A kill between the record's 'pending' and its commit: the next open takes the state the collection is in."""
    with MilvusGallery.open(db, "settled", bits=16) as gallery:
        gallery.add(np.zeros((4, 2), np.uint8), np.arange(4))
    record_path = f"{db}{RECORD_SUFFIX}"
    data = json.loads(open(record_path).read())
    committed = data["settled"]
    data["settled"] = {**committed, "pending": {"count": 9, "digest": 12345}}  # an insert that never landed
    open(record_path, "w").write(json.dumps(data))
    with MilvusGallery.open(db, "settled", bits=16) as gallery:
        assert len(gallery) == 4
    assert json.loads(open(record_path).read())["settled"] == committed


@pytest.fixture(scope="module")
def full_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("milvus-full") / "full.db"
    with MilvusGallery.open(path, "faces", bits=64) as gallery:
        gallery.add(np.random.default_rng(0).integers(0, 256, (20_000, 8), dtype=np.uint8), np.arange(20_000))
    return path


def test_a_zero_byte_milvus_lite_file_is_refused(tmp_path, full_db):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(MilvusGalleryError, match="is empty .0 bytes.: it was truncated"):
        MilvusGallery.open(empty, "faces", bits=64)


def test_garbage_in_the_middle_of_a_milvus_lite_file_is_refused(tmp_path, full_db):
    damaged = tmp_path / "damaged.db"
    shutil.copy(full_db, damaged)
    shutil.copy(f"{full_db}{RECORD_SUFFIX}", f"{damaged}{RECORD_SUFFIX}")
    size = damaged.stat().st_size
    with open(damaged, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(65536))
    with pytest.raises(MilvusGalleryError, match="but dagh committed 20000"):
        MilvusGallery.open(damaged, "faces", bits=64)


def test_a_lost_collection_is_not_recreated_empty(tmp_path, full_db):
    """The database replaced by an empty one: the record remembers there was a gallery."""
    moved = tmp_path / "moved.db"
    shutil.copy(f"{full_db}{RECORD_SUFFIX}", f"{moved}{RECORD_SUFFIX}")
    with pytest.raises(MilvusGalleryError, match="is gone but dagh's record says it held codes"):
        MilvusGallery.open(moved, "faces", bits=64)


# -- sync between .dgal files and Milvus, and the recognizer on Milvus ---------------------------------
def _cli(args):
    from click.testing import CliRunner

    from dagh.cli.gallery import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_push_is_idempotent_and_resumes_and_pull_gives_the_gallery_back(tmp_path):
    from dagh.runtime import load_gallery, save_gallery

    rng = np.random.default_rng(5)
    codes, ids = rng.integers(0, 256, (300, 6), dtype=np.uint8), np.arange(300) + 1000
    names = [f"person{i % 11}" for i in range(300)]
    save_gallery(tmp_path / "site.dgal", codes, ids, 48, labels=names)
    target = f"milvus:{tmp_path / 'central.db'}#all"
    # a push cut short: the first 120 codes are in Milvus already
    with MilvusGallery.open(tmp_path / "central.db", "all", bits=48) as partial:
        partial.add(codes[:120], ids[:120], labels=names[:120])
    first = _cli(["push", tmp_path / "site.dgal", target, "--site", "gate-1"])
    assert first.exit_code == 0, first.output
    assert "pushed 180 new codes" in first.output and "(120 were there already); 300 codes in all" in first.output
    again = _cli(["push", tmp_path / "site.dgal", target])
    assert again.exit_code == 0 and "pushed 0 new codes" in again.output and "300 codes in all" in again.output
    pulled = _cli(["pull", target, tmp_path / "back.dgal", "--bits", 48])
    assert pulled.exit_code == 0, pulled.output
    back = load_gallery(tmp_path / "back.dgal")
    assert np.array_equal(back.ids, ids) and np.array_equal(back.codes, codes) and list(back.labels) == names
    # another gallery reusing the ids with other codes is refused, nothing sent
    save_gallery(tmp_path / "other.dgal", codes[::-1].copy(), ids, 48, labels=names)
    clash = _cli(["push", tmp_path / "other.dgal", target])
    assert clash.exit_code == 2 and "hold other codes" in clash.output
    assert len(MilvusGallery.open(tmp_path / "central.db", "all", bits=48)) == 300
    bad = _cli(["push", tmp_path / "site.dgal", "central.db"])
    assert bad.exit_code == 2 and "milvus:URI#COLLECTION" in bad.output


def test_the_recognizer_identifies_from_milvus_as_from_the_file(tmp_path, export_dir):
    from dagh.runtime import Recognizer, save_gallery

    rng = np.random.default_rng(6)
    crops = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    with Recognizer.open(export_dir, _empty_gallery(), detector="whole-image", radius=4) as probe:
        codes = probe.encoder.encode(crops)
    names = [f"p{i}" for i in range(8)]
    save_gallery(tmp_path / "g.dgal", codes, np.arange(8), 24, labels=names)
    assert _cli(["push", tmp_path / "g.dgal", f"milvus:{tmp_path / 'm.db'}#faces"]).exit_code == 0
    frames = [crops[i] for i in range(8)] + [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)]
    with Recognizer.open(export_dir, tmp_path / "g.dgal", detector="whole-image", radius=4) as local, \
            Recognizer.open(export_dir, f"milvus:{tmp_path / 'm.db'}#faces", detector="whole-image",
                            radius=4) as central:
        for frame in frames:
            a, b = local.recognize(frame, color_order="RGB")[0], central.recognize(frame, color_order="RGB")[0]
            assert (a.known, a.name, a.id, a.distance) == (b.known, b.name, b.id, b.distance)
        expected = local.recognize(crops[3], color_order="RGB")[0]
        central.add(rng.integers(0, 256, (1, 3), dtype=np.uint8), [99], ["newcomer"])
        assert len(central.index) == 9 and central.labels.get(99) == "newcomer"
    from PIL import Image

    Image.fromarray(crops[3]).save(tmp_path / "face.png")
    result = _cli(["identify", f"milvus:{tmp_path / 'm.db'}#faces", tmp_path / "face.png", "--export", export_dir,
                   "--detector", "whole-image", "--radius", 4])
    assert result.exit_code == 0 and f"] {expected.name} (distance {expected.distance}," in result.output, result.output
    result = _cli(["identify", f"milvus:{tmp_path / 'm.db'}#faces", tmp_path / "g.dgal", "--export", export_dir,
                   "--detector", "whole-image", "--radius", 4])
    assert result.exit_code == 2 and "g.dgal" in result.output  # a .dgal is not an image: said so, exit 2


def _empty_gallery():
    from dagh.runtime.gallery.file import Gallery

    return Gallery(bits=24, codes=np.zeros((0, 3), np.uint8), ids=np.zeros(0, np.int64), labels=[])


def test_search_by_site(db):
    codes = np.array([[0, 0], [0, 1], [0, 3]], np.uint8)
    with MilvusGallery.open(db, "sites", bits=16) as gallery:
        gallery.add(codes[:2], [1, 2], site="gate-1")
        gallery.add(codes[2:], [3], site="lobby")
        assert gallery.search(codes[:1], 3)[1].tolist() == [[1, 2, 3]]
        assert gallery.search(codes[:1], 3, site="lobby")[1].tolist() == [[3, -1, -1]]
        assert [ids.tolist() for _, ids in gallery.range_search(codes[:1], 16, site="gate-1")] == [[1, 2]]
        with pytest.raises(DaghError, match="site"):
            gallery.search(codes[:1], 3, site='x" or id > 0 or site == "')
