"""The registry of face detectors: a name -> a factory, and ``open_detector``.

A module of its own so that detector backends (which import dagh.runtime.face.detect
for Detection) are imported by name here, lazily, and never import back.
"""

from __future__ import annotations

from collections.abc import Callable

from dagh.errors import ConfigError
from dagh.runtime.face.detect import Detector, WholeImageDetector


def _retinaface(**options) -> Detector:
    from dagh.runtime.face.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(**options)


DETECTORS: dict[str, Callable[..., Detector]] = {
    "retinaface": _retinaface,
    "whole-image": lambda **options: WholeImageDetector(**options),
}
DEFAULT_DETECTOR = "retinaface"


def open_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """The detector registered as ``name`` (see DETECTORS), made with ``options``."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}") from None
    return factory(**options)
