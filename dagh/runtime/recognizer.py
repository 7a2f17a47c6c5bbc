"""Frames in, names out: detect, align, encode, search, decide known or unknown.

    from dagh.runtime import Recognizer

    with Recognizer.open("runs/demo/export", "people.dgal") as recognizer:
        for match in recognizer.recognize(frame_bgr):          # an OpenCV frame: color_order="BGR"
            print(match.box, match.name if match.known else "unknown", match.distance)

Per frame: the detector finds faces (box, score, 5 landmarks); each is aligned
onto the model's landmark template (or cropped by its box where there are no
landmarks or no template); quality gates mark faces that cannot be recognized
reliably as unusable (``Match.usable`` False, with the reason): those get no
name and no "unknown". All usable faces of a frame are encoded in one batch
and searched in the gallery; a face is *known* when its person's distance is
within the radius, which the export measured for a target false-accept rate
(``manifest.open_set``) unless ``radius=`` says otherwise.

A person's distance: ``decision="best"`` (default) takes the nearest of the
person's codes; ``decision="vote"`` takes the k nearest codes within the radius
and names the person most of them belong to (ties: the nearer best code).

``recognize`` is safe to call from several threads (the tracker, when on, is
shared state under a lock: feed it one camera's frames in order).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dagh.errors import ConfigError
from dagh.runtime.face.align import face_crop
from dagh.runtime.face.detect import Detection, Detector
from dagh.runtime.face.detectors import open_detector
from dagh.runtime.face.frame import as_rgb_frame
from dagh.runtime.face.quality import QualityGates

Decision = Literal["best", "vote"]
VOTE_K = 5  # codes consulted by decision="vote"


@dataclasses.dataclass(frozen=True)
class Match:
    """One face of a frame and what the recognizer decided about it.

    ``box`` (x1, y1, x2, y2) and ``landmarks`` ([5, 2] or None) are frame pixels. ``known``: the
    person's distance (Hamming bits) is within the radius; then ``name`` and ``id`` are the gallery's.
    For an unknown face they are the nearest person's, for information. ``usable`` False: a quality
    gate failed (``reason`` says which); such a face is neither named nor called unknown.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None
    usable: bool
    known: bool
    name: str | None
    id: int | None
    distance: int | None
    reason: str | None = None
    track: int | None = None

    @property
    def label(self) -> str:
        """What to draw: the name, "unknown", or "unusable: <reason>"."""
        if not self.usable:
            return f"unusable: {self.reason}"
        return self.name if self.known and self.name is not None else (
            f"id {self.id}" if self.known else "unknown")


@dataclasses.dataclass
class StageTimes:
    """Seconds each stage of one frame took."""

    detect: float = 0.0
    align: float = 0.0
    encode: float = 0.0
    search: float = 0.0

    @property
    def total(self) -> float:
        return self.detect + self.align + self.encode + self.search


class Recognizer:
    """Detector + aligner + Encoder + gallery index + open-set decision (see the module docstring)."""

    def __init__(self, encoder, index, labels: dict[int, str] | None, detector: Detector, radius: int, *,
                 quality: QualityGates | None = None, decision: Decision = "best", tracker=None):
        if decision not in ("best", "vote"):
            raise ConfigError(f"decision must be 'best' or 'vote', got {decision!r}")
        if not isinstance(radius, (int, np.integer)) or not 0 <= radius <= encoder.bits:
            raise ConfigError(f"radius must be an integer number of bits in 0..{encoder.bits}, got {radius!r}")
        self.encoder, self.index, self.labels, self.detector = encoder, index, labels, detector
        self.radius, self.decision, self.tracker = int(radius), decision, tracker
        size = encoder.preprocess.size
        self.quality = quality if quality is not None else QualityGates(min_face=max(16.0, float(size)))
        self.template = encoder.preprocess.face_template
        self._lock = threading.Lock()
        self._writer = threading.Lock()  # add / remove, one at a time; recognize takes no lock for the gallery
        self._remote = labels is not None and not isinstance(labels, dict)  # names live in the gallery (Milvus)

    @classmethod
    def open(cls, export_dir: str | os.PathLike, gallery: Any, *, detector: str | Detector = "retinaface",
             radius: int | None = None, precision: str = "fp32", backend: str = "auto",
             index_backend: str = "cpu", quality: QualityGates | None = None, decision: Decision = "best",
             track: bool = False) -> Recognizer:
        """A recognizer for the model in ``export_dir`` and ``gallery``: a .dgal path, a loaded Gallery,
        ``milvus:URI#COLLECTION`` or a MilvusGallery (searched in Milvus, names fetched with the results).

        ``radius``: the largest Hamming distance still called known. Defaults to the export's measured
        radius (manifest.open_set). ``detector``: a registered name or a Detector. ``track``: follow
        faces across frames (IoU) and vote their names over recent frames, so a name does not flicker.
        """
        from dagh.runtime.encode.encoder import Encoder
        from dagh.runtime.gallery.file import load_gallery
        from dagh.runtime.gallery.milvus import MilvusGallery, parse_gallery_uri

        encoder = Encoder.open(export_dir, precision=precision, backend=backend)
        milvus = parse_gallery_uri(gallery) if isinstance(gallery, str) else None
        if milvus is not None:
            gallery = MilvusGallery.open(milvus[0], milvus[1], encoder.bits, create=False)
        elif isinstance(gallery, (str, os.PathLike)):
            gallery = load_gallery(Path(gallery), bits=encoder.bits)
        if gallery.bits != encoder.bits:
            raise ConfigError(f"the gallery holds {gallery.bits}-bit codes, the model makes {encoder.bits}-bit "
                              "codes: enroll the gallery with this model")
        if radius is None:
            open_set = getattr(encoder.manifest, "open_set", None)
            if open_set is None:
                raise ConfigError(f"{os.fspath(export_dir)!r} records no open-set radius; re-export it with "
                                  "this dagh (dagh-export measures one), or pass radius=")
            if open_set.radius < 0:
                raise ConfigError(f"no Hamming radius of this model meets its target false-accept rate "
                                  f"{open_set.target_far:g} on {open_set.identities} (its impostors are too "
                                  "close): train it further, re-export with a larger --target-far, or pass radius=")
            radius = open_set.radius
        found = open_detector(detector) if isinstance(detector, str) else detector
        from dagh.runtime.track import Tracker

        if isinstance(gallery, MilvusGallery):  # searched where it lives; names fetched with the results
            index, labels = gallery, gallery.labels
        else:
            labels = None
            if getattr(gallery, "labels", None) is not None:
                labels = {int(i): name for i, name in zip(gallery.ids, gallery.labels)}
            index = gallery.to_index(index_backend)
        if len(index):  # load the compiled search now, not on the first frame (~50 ms from numba's cache)
            index.search(np.zeros((1, (encoder.bits + 7) // 8), np.uint8), 1)
        return cls(encoder, index, labels, found, radius, quality=quality,
                   decision=decision, tracker=Tracker() if track else None)

    # -- the verbs ---------------------------------------------------------------
    def detect(self, frame: Any, color_order: str = "BGR") -> list[Detection]:
        """The faces in ``frame`` (see dagh.runtime.face.detect), best score first."""
        return self.detector.detect(as_rgb_frame(frame, color_order))

    def recognize(self, frame: Any, color_order: str = "BGR") -> list[Match]:
        """Every face in ``frame`` (uint8 HxWx3 in ``color_order``, a Pillow image or a path) and its decision."""
        return self.recognize_timed(frame, color_order)[0]

    def recognize_timed(self, frame: Any, color_order: str = "BGR") -> tuple[list[Match], StageTimes]:
        """``recognize`` and the seconds each stage took (detect / align / encode / search)."""
        times = StageTimes()
        rgb = as_rgb_frame(frame, color_order)
        t0 = time.perf_counter()
        detections = self.detector.detect(rgb)
        t1 = time.perf_counter()
        crops, reasons = self._crops(rgb, detections)
        t2 = time.perf_counter()
        usable = [i for i, reason in enumerate(reasons) if reason is None]
        codes = self.encoder.encode(np.stack([crops[i] for i in usable])) if usable else None
        t3 = time.perf_counter()
        decided = self.identify(codes) if usable else []
        t4 = time.perf_counter()
        times.detect, times.align, times.encode, times.search = t1 - t0, t2 - t1, t3 - t2, t4 - t3
        matches = []
        by_face = dict(zip(usable, decided))
        for i, det in enumerate(detections):
            if i in by_face:
                known, name, ident, distance = by_face[i]
                matches.append(Match(det.box, det.score, det.landmarks, True, known, name, ident, distance))
            else:
                matches.append(Match(det.box, det.score, det.landmarks, False, False, None, None, None, reasons[i]))
        if self.tracker is not None:
            with self._lock:
                matches = self.tracker.update(matches)
        return matches, times

    def align(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """The model-sized crop of ``detection``: landmark-aligned where possible, else by box."""
        return face_crop(rgb, detection, self.template, self.encoder.preprocess.size)

    def add(self, codes: np.ndarray, ids: np.ndarray, names: list[str] | None = None) -> None:
        """Enroll codes while recognizing: packed ``codes`` with new ``ids`` and their people's ``names``
        (required when the gallery has names). Frames being recognized meanwhile see the gallery as it
        was, or with all of these. The gallery file is not changed (dagh.runtime.append_gallery does that)."""
        ids = np.asarray(ids).reshape(-1)
        if self.labels is not None and (names is None or len(names) != len(ids)):  # names required
            raise ConfigError(f"this gallery names its codes: pass names=, one per code ({len(ids)})")
        if self.labels is None and names is not None:
            raise ConfigError("this gallery has no names (a version-2 file): add codes without names=")
        if self._remote:  # a Milvus gallery keeps names beside the codes
            self.index.add(codes, ids, labels=names)
            return
        with self._writer:
            present = np.intersect1d(self.index.ids, ids.astype(np.int64))
            if len(present):
                raise ConfigError(f"ids {present[:5].tolist()} are in the gallery already: an id names one code")
            if self.labels is not None:
                # names first, then the codes: a search that finds a new id finds its name
                self.labels = {**self.labels, **{int(i): str(n) for i, n in zip(ids, names)}}
            self.index.add(codes, ids)

    def remove(self, *, names: list[str] | None = None, ids: list[int] | None = None) -> int:
        """Forget people (every code of ``names``) or codes (``ids``) while recognizing; returns how many codes
        went. Frames being recognized meanwhile see the gallery with or without all of them. The gallery file
        is not changed (dagh.runtime.remove_from_gallery does that)."""
        with self._writer:
            drop = set() if ids is None else {int(i) for i in ids}
            if names is not None:
                if self.labels is None:
                    raise ConfigError("this gallery has no names: remove its codes by ids=")
                wanted, live = set(names), {int(i) for i in self.index.ids}
                drop |= {i for i, name in self.labels.items() if name in wanted and i in live}
            # The names stay: a search that started before the removal may still find these ids, and reads
            # the names after it. (A few bytes a removed code; a re-added id takes its new name.)
            return self.index.remove(np.fromiter(drop, np.int64, len(drop)))

    def identify(self, codes: np.ndarray) -> list[tuple[bool, str | None, int | None, int | None]]:
        """Packed codes -> per code (known, name, id, distance) under this recognizer's radius and decision."""
        k = VOTE_K if self.decision == "vote" else 1
        distances, ids = self.index.search(codes, k)
        labels = self.labels  # read after the search: every id it found has its name here (see add / remove)
        out = []
        for d_row, i_row in zip(distances, ids):
            if i_row[0] < 0:  # an empty gallery
                out.append((False, None, None, None))
                continue
            best_d, best_id = int(d_row[0]), int(i_row[0])
            if self.decision == "vote":
                best_id, best_d = self._vote(d_row, i_row, labels)
            name = labels.get(best_id) if labels else None
            out.append((best_d <= self.radius, name, best_id, best_d))
        return out

    def _vote(self, d_row: np.ndarray, i_row: np.ndarray, labels: dict[int, str] | None) -> tuple[int, int]:
        """The (id, distance) of the best code of the person most of the codes within the radius name."""
        within = [(int(d), int(i)) for d, i in zip(d_row, i_row) if i >= 0 and d <= self.radius]
        if not within:
            return int(i_row[0]), int(d_row[0])
        person = (lambda i: labels.get(i, i)) if labels else (lambda i: i)
        votes: dict[Any, list[tuple[int, int]]] = {}
        for d, i in within:
            votes.setdefault(person(i), []).append((d, i))
        winner = min(votes.values(), key=lambda hits: (-len(hits), hits[0][0]))
        return winner[0][1], winner[0][0]

    def _crops(self, rgb: np.ndarray, detections: list[Detection]) -> tuple[list, list[str | None]]:
        crops, reasons = [], []
        for det in detections:
            crop = self.align(rgb, det)
            crops.append(crop)
            reasons.append(self.quality.check(det, rgb.shape, crop))
        return crops, reasons

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Release the encoder's runner (device memory, sessions)."""
        close = getattr(self.encoder, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
