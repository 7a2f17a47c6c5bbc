"""Load: searches and recognitions on several threads while another thread adds and removes codes, for a
bounded time. No error, and every result equals a serial search of the gallery as it was when that search
started: the writer records the gallery of every generation (HammingIndex.generation), each search records
the generations read just before and just after it, and its result must be a serial search's on one of them.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

DURATION_S = 2.0
SEARCHERS = 3


def _writer(index, states, stop, rng, bits, on_add=None, on_remove=None):
    """Add and remove codes until ``stop``; record (packed codes, ids) of each generation."""
    next_id = 10_000
    while not stop.is_set():
        if rng.random() < 0.6 or len(index) < 50:
            n = int(rng.integers(1, 40))
            codes = rng.integers(0, 256, (n, (bits + 7) // 8), dtype=np.uint8)
            ids = np.arange(next_id, next_id + n)
            next_id += n
            (on_add or index.add)(codes, ids)
        else:
            live = index.ids
            drop = rng.choice(live, size=min(len(live), int(rng.integers(1, 30))), replace=False)
            (on_remove or index.remove)(drop)
        states[index.generation] = (index.packed_codes(), index.ids)


_REFERENCES: dict = {}


def _serial(bits, state, queries, k):
    """A serial search of ``state`` (packed codes, ids) with the numpy reference backend."""
    from dagh.runtime import HammingIndex

    key = id(state)
    if key not in _REFERENCES:
        codes, ids = state
        reference = HammingIndex(bits, backend="numpy")
        if len(ids):
            reference.add(codes, ids)
        _REFERENCES[key] = (state, reference)  # the state is kept alive with it: its id stays unique
    return _REFERENCES[key][1].search(queries, k)


def _run(threads, stop, errors, duration, records, states, most_s=60.0):
    """Start the threads; after ``duration``, once there are 100 results over 20 changes (or ``most_s``),
    stop and join them, and fail on any error they met."""
    for thread in threads:
        thread.start()
    began = time.monotonic()
    time.sleep(duration)
    while (len(records) < 100 or max(states) - min(states) < 20) and time.monotonic() - began < most_s:
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_hamming_index_searches_while_the_gallery_changes(backend):
    from dagh.runtime import HammingIndex

    bits, k = 48, 5
    rng = np.random.default_rng(0)
    index = HammingIndex(bits, backend=backend)
    index.add(rng.integers(0, 256, (500, 6), dtype=np.uint8), np.arange(500))
    for nq in range(1, 8):  # compile the kernels first (a cold numba cache takes seconds a kernel)
        index.search(rng.integers(0, 256, (nq, 6), dtype=np.uint8), k)
    index.add(rng.integers(0, 256, (3, 6), dtype=np.uint8), np.arange(500, 503))
    index.remove(np.arange(500, 503))
    states = {index.generation: (index.packed_codes(), index.ids)}
    stop, errors, records = threading.Event(), [], []

    def searcher(seed):
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                queries = local.integers(0, 256, (int(local.integers(1, 8)), 6), dtype=np.uint8)
                before = index.generation
                result = index.search(queries, k)
                records.append((before, index.generation, queries, result))
        except Exception as exc:  # noqa: BLE001 - any error fails the test below
            errors.append(exc)

    writer = threading.Thread(target=_writer, args=(index, states, stop, np.random.default_rng(1), bits))
    threads = [writer] + [threading.Thread(target=searcher, args=(s,)) for s in range(SEARCHERS)]
    _run(threads, stop, errors, DURATION_S, records, states)
    spanning = 0
    for before, after, queries, (distances, ids) in records:
        spanning += after > before
        candidates = [g for g in range(before, after + 1) if g in states]
        assert any(np.array_equal(ids, (serial := _serial(bits, states[g], queries, k))[1])
                   and np.array_equal(distances, serial[0]) for g in candidates), \
            f"no generation in {before}..{after} gives this result"
    changes = max(states) - min(states)
    assert len(records) >= 100 and changes >= 20, (len(records), changes)
    print(f"{backend}: {len(records)} searches on {SEARCHERS} threads in {DURATION_S:.0f}+ s while the gallery "
          f"changed {changes} times; {spanning} searches overlapped a change; all equal a serial search")


def test_recognizer_recognizes_while_people_are_enrolled_and_removed(export_dir):
    from dagh.runtime import Recognizer
    from dagh.runtime.gallery.file import Gallery

    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    bits = 24
    start = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    gallery = Gallery(bits=bits, codes=start, ids=np.arange(200), labels=[f"p{i % 20}" for i in range(200)])
    recognizer = Recognizer.open(export_dir, gallery, detector="whole-image", radius=6)
    frame_codes = [recognizer.encoder.encode(frame) for frame in frames]
    states = {recognizer.index.generation: (recognizer.index.packed_codes(), recognizer.index.ids)}
    names = {}
    names.update({int(i): f"p{i % 20}" for i in range(200)})
    stop, errors, records = threading.Event(), [], []

    def add(codes, ids):
        people = [f"q{int(i) % 13}" for i in ids]
        names.update({int(i): p for i, p in zip(ids, people)})
        recognizer.add(codes, ids, people)

    def remove(ids):
        recognizer.remove(ids=list(ids))

    def watcher(seed):
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                which = int(local.integers(0, len(frames)))
                before = recognizer.index.generation
                matches = recognizer.recognize(frames[which], color_order="RGB")
                records.append((before, recognizer.index.generation, which, matches))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    writer = threading.Thread(target=_writer, args=(recognizer.index, states, stop, np.random.default_rng(3), bits,
                                                    add, remove))
    threads = [writer] + [threading.Thread(target=watcher, args=(s,)) for s in range(SEARCHERS)]
    _run(threads, stop, errors, DURATION_S, records, states)
    for before, after, which, matches in records:
        assert len(matches) == 1
        match = matches[0]
        ok = False
        for g in range(before, after + 1):
            if g not in states:
                continue
            distances, ids = _serial(bits, states[g], frame_codes[which], 1)
            want_id, want_d = int(ids[0, 0]), int(distances[0, 0])
            ok |= (match.id == want_id and match.distance == want_d and match.known == (want_d <= 6)
                   and match.name == names[want_id])
        assert ok, f"frame {which}: {match} is no serial result of generations {before}..{after}"
    changes = max(states) - min(states)
    assert len(records) >= 100 and changes >= 20, (len(records), changes)
    print(f"recognizer: {len(records)} frames on {SEARCHERS} threads in {DURATION_S:.0f}+ s while people were "
          f"enrolled and removed {changes} times; every match equals a serial search")


def test_recognizer_add_and_remove_check_their_input(export_dir):
    from dagh.errors import ConfigError
    from dagh.runtime import Recognizer
    from dagh.runtime.gallery.file import Gallery

    codes = np.zeros((3, 3), np.uint8)
    gallery = Gallery(bits=24, codes=codes, ids=np.arange(3), labels=["ann", "ann", "bob"])
    recognizer = Recognizer.open(export_dir, gallery, detector="whole-image", radius=3)
    with pytest.raises(ConfigError, match="names="):
        recognizer.add(np.ones((1, 3), np.uint8), [7])
    with pytest.raises(ConfigError, match=r"ids \[2\] are in the gallery already"):
        recognizer.add(np.ones((1, 3), np.uint8), [2], ["cyd"])
    recognizer.add(np.full((1, 3), 255, np.uint8), [7], ["cyd"])
    face = np.zeros((32, 32, 3), np.uint8)
    probe = recognizer.encoder.encode(face)
    assert recognizer.identify(np.full((1, 3), 255, np.uint8))[0][:3] == (True, "cyd", 7)
    assert recognizer.remove(names=["ann"]) == 2 and sorted(recognizer.index.ids) == [2, 7]
    assert recognizer.remove(names=["ann"]) == 0  # already gone
    recognizer.add(probe, [0], ["dee"])  # a removed id may come back, under its new name
    assert recognizer.identify(probe)[0][:3] == (True, "dee", 0)
