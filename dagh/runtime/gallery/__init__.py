"""Gallery stores: the .dgal file (``file``: codes, ids and labels). Names load on first use."""

from dagh._optional import lazy_exports

_EXPORTS = {
    "Gallery": "dagh.runtime.gallery.file",
    "GalleryError": "dagh.runtime.gallery.file",
    "load_gallery": "dagh.runtime.gallery.file",
    "save_gallery": "dagh.runtime.gallery.file",
    "append_gallery": "dagh.runtime.gallery.file",
    "remove_from_gallery": "dagh.runtime.gallery.file",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
