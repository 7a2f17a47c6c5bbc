"""The torch-free runtime that ships inside camera apps.

    from dagh.runtime import Encoder, HammingIndex, load_gallery, save_gallery

    encoder = Encoder.open("runs/demo/export", precision="int8")
    codes = encoder.encode(face_crops, color_order="BGR")        # packed uint8 [n, ceil(bits/8)]
    save_gallery("people.dgal", codes, ids, encoder.bits, labels=names)   # one id a code, names repeat
    index = load_gallery("people.dgal", bits=encoder.bits).to_index()
    distances, ids = index.search(encoder.encode(crop), k=5)

Rooms by job: ``recognizer`` (frames in, names out), ``face`` (detection,
alignment, quality gates), ``encode`` (Encoder and its onnxruntime and TensorRT runners),
``search`` (HammingIndex and its CPU, GPU and reference backends), ``gallery``
(the .dgal file), ``preprocess`` (shared with training) and ``bits`` (the
packed-code format). The names below load on first use: importing
``dagh.runtime`` needs only the standard library and numpy, and onnxruntime,
numba, TensorRT and CUDA load when a backend that needs them is opened.
"""

from dagh._optional import lazy_exports

_EXPORTS = {
    "Recognizer": "dagh.runtime.recognizer",
    "Match": "dagh.runtime.recognizer",
    "Detection": "dagh.runtime.face.detect",
    "open_detector": "dagh.runtime.face.detectors",
    "QualityGates": "dagh.runtime.face.quality",
    "Encoder": "dagh.runtime.encode.encoder",
    "EngineMismatchError": "dagh.runtime.encode.tensorrt_runner",
    "HammingIndex": "dagh.runtime.search.index",
    "Gallery": "dagh.runtime.gallery.file",
    "GalleryError": "dagh.runtime.gallery.file",
    "load_gallery": "dagh.runtime.gallery.file",
    "save_gallery": "dagh.runtime.gallery.file",
    "append_gallery": "dagh.runtime.gallery.file",
    "remove_from_gallery": "dagh.runtime.gallery.file",
    "PreprocessConfig": "dagh.runtime.preprocess",
    "preprocess_batch": "dagh.runtime.preprocess",
    "load_image": "dagh.runtime.preprocess",
    "pack_codes": "dagh.runtime.bits",
    "unpack_codes": "dagh.runtime.bits",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
