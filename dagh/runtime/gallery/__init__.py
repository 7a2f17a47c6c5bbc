"""Gallery stores: the .dgal file (``file``: codes, ids and labels). Names load on first use."""

from dagh._optional import lazy_attribute

_EXPORTS = {
    "Gallery": "dagh.runtime.gallery.file",
    "GalleryError": "dagh.runtime.gallery.file",
    "load_gallery": "dagh.runtime.gallery.file",
    "save_gallery": "dagh.runtime.gallery.file",
    "append_gallery": "dagh.runtime.gallery.file",
    "remove_from_gallery": "dagh.runtime.gallery.file",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
