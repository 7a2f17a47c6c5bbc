"""Recognizer: frames in, names out, on real photographs; bad frames; quality gates; threads; tracking."""

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dagh.errors import ConfigError, DataError
from dagh.runtime.face.detect import Detection
from dagh.runtime.recognizer import Match, Recognizer
from dagh.runtime.track import Tracker

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skimage") is None or importlib.util.find_spec(
    "onnxruntime") is None, reason="needs scikit-image's photographs and onnxruntime")


def photo(name):
    root = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data"
    return np.asarray(Image.open(root / name).convert("RGB"))


def composed(head, spots):
    frame = Image.new("RGB", (640, 480), (90, 110, 100))
    for (x, y), scale in spots:
        frame.paste(Image.fromarray(head).resize((int(150 * scale), int(180 * scale))), (x, y))
    return np.asarray(frame)


@pytest.fixture(scope="module")
def people(export_dir, tmp_path_factory):
    """A gallery with the astronaut enrolled from her photo, and a recognizer over it."""
    from dagh.runtime.encode.encoder import Encoder
    from dagh.runtime.enroll import enroll_photos
    from dagh.runtime.face.detectors import open_detector
    from dagh.runtime.gallery.file import save_gallery

    root = tmp_path_factory.mktemp("people")
    Image.fromarray(photo("astronaut.png")).save(root / "eileen.png")
    encoder = Encoder.open(export_dir)
    enrolled = enroll_photos([("eileen", root / "eileen.png")], encoder, open_detector())
    save_gallery(root / "g.dgal", enrolled.codes, enrolled.ids + 100, encoder.bits, labels=enrolled.labels)
    return root / "g.dgal"


@pytest.fixture(scope="module")
def recognizer(export_dir, people):
    with Recognizer.open(export_dir, people, radius=3) as rec:
        yield rec


def test_the_enrolled_person_is_named(recognizer):
    (match,) = recognizer.recognize(photo("astronaut.png"), color_order="RGB")
    assert match.usable and match.known and match.name == "eileen" and match.id == 100 and match.distance == 0
    assert match.label == "eileen"


def test_five_faces_are_encoded_in_one_batch(recognizer):
    head = photo("astronaut.png")[30:210, 150:300]
    frame = composed(head, [((245, 150), 1.0), ((20, 40), 0.8), ((460, 40), 0.9), ((60, 280), 0.7),
                            ((450, 270), 1.0)])
    calls = []
    encode = recognizer.encoder.encode
    recognizer.encoder.encode = lambda crops, **kw: calls.append(len(crops)) or encode(crops, **kw)
    try:
        matches, times = recognizer.recognize_timed(frame, color_order="RGB")
    finally:
        recognizer.encoder.encode = encode
    assert len(matches) == 5 and calls == [5]
    assert all(m.usable and m.distance is not None for m in matches)
    assert times.detect > 0 and times.encode > 0 and times.total >= times.detect


def test_bgr_frames_are_the_default(recognizer):
    rgb = photo("astronaut.png")
    assert recognizer.recognize(np.ascontiguousarray(rgb[..., ::-1]))[0].distance == 0  # OpenCV order


@pytest.mark.parametrize("frame, message", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((64, 64, 3), np.float64), "uint8"),
    (np.zeros((64, 64, 4), np.uint8), "alpha"),
    (np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (20000, 20000, 3)), "MP"),
    ("not/a/file.jpg", "does not exist"),
])
def test_bad_frames_are_clear_errors(recognizer, frame, message):
    with pytest.raises(DataError, match=message):
        recognizer.recognize(frame)


def test_frames_without_faces_give_no_matches(recognizer):
    assert recognizer.recognize(np.zeros((1, 1, 3), np.uint8)) == []
    assert recognizer.recognize(photo("coffee.png"), color_order="RGB") == []


def test_a_face_too_small_is_unusable_not_unknown(recognizer):
    small = np.asarray(Image.fromarray(photo("astronaut.png")).resize((160, 160)))  # head ~30 px < 32
    (match,) = recognizer.recognize(small, color_order="RGB")
    assert not match.usable and "too small" in match.reason
    assert match.name is None and match.distance is None and not match.known


def test_a_code_beyond_the_radius_is_unknown(recognizer):
    from dagh.runtime.bits import pack_codes, unpack_codes

    enrolled = recognizer.index.packed_codes()
    bits = unpack_codes(enrolled, recognizer.encoder.bits, signed=False).copy()
    bits[0, :4] = 1 - bits[0, :4]  # 4 bits away from eileen's code; the radius is 3
    (decision,) = recognizer.identify(pack_codes(bits))
    assert decision == (False, "eileen", 100, 4)
    bits[0, 3] = 1 - bits[0, 3]  # 3 bits away: within the radius
    assert recognizer.identify(pack_codes(bits))[0] == (True, "eileen", 100, 3)


def test_concurrent_recognize_calls_agree(recognizer):
    frame = photo("astronaut.png")
    expected = recognizer.recognize(frame, color_order="RGB")[0].distance
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(recognizer.recognize(frame, color_order="RGB")[0].distance)
        except Exception as exc:  # noqa: BLE001 - the test reports any
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [expected] * 20


def test_open_checks_radius_and_bits(export_dir, people, tmp_path):
    with pytest.raises(ConfigError, match="radius"):
        Recognizer.open(export_dir, people, radius=-1)
    from dagh.runtime.gallery.file import GalleryError, save_gallery

    save_gallery(tmp_path / "g48.dgal", np.zeros((1, 6), np.uint8), np.array([1]), 48, labels=["x"])
    with pytest.raises(GalleryError, match="48-bit"):
        Recognizer.open(export_dir, tmp_path / "g48.dgal", radius=2)


def _match(box, known, name, distance=1, usable=True):
    return Match(box, 0.99, None, usable, known, name, 1 if name else None, distance)


def test_the_tracker_keeps_a_name_through_one_bad_frame():
    tracker = Tracker(window=5)
    box = (100.0, 100.0, 200.0, 220.0)
    seen = [tracker.update([_match(box, True, "eileen")])[0] for _ in range(3)]
    flicker = tracker.update([_match((104.0, 102.0, 204.0, 222.0), False, "bob", 9)])[0]
    assert flicker.known and flicker.name == "eileen" and flicker.track == seen[0].track
    other = tracker.update([_match(box, True, "eileen"), _match((400.0, 100.0, 480.0, 200.0), False, None)])
    assert len({m.track for m in other}) == 2 and not other[1].known


def test_vote_decision_names_the_person_most_codes_belong_to(export_dir):
    from dagh.runtime.encode.encoder import Encoder
    from dagh.runtime.face.detect import WholeImageDetector
    from dagh.runtime.search.index import HammingIndex

    encoder = Encoder.open(export_dir)
    bits = encoder.bits
    index = HammingIndex(bits)
    base = np.zeros((1, bits), np.int8)
    codes = np.repeat(base, 5, axis=0)
    codes[0, 0] = 1                      # id 0 (ann): 1 bit away
    codes[1:4, 1:3] = 1                  # ids 1-3 (bob): 2 bits away
    codes[4, :6] = 1                     # id 4 (cy): 6 bits away
    from dagh.runtime.bits import pack_codes

    index.add(pack_codes(codes), np.arange(5))
    labels = {0: "ann", 1: "bob", 2: "bob", 3: "bob", 4: "cy"}
    query = pack_codes(base)
    best = Recognizer(encoder, index, labels, WholeImageDetector(), 3, decision="best").identify(query)
    vote = Recognizer(encoder, index, labels, WholeImageDetector(), 3, decision="vote").identify(query)
    assert best[0][:3] == (True, "ann", 0) and vote[0][:3] == (True, "bob", 1) and vote[0][3] == 2
    with pytest.raises(ConfigError, match="decision"):
        Recognizer(encoder, index, labels, WholeImageDetector(), 3, decision="majority")
    assert Detection((0, 0, 1, 1), 1.0).width == 1
