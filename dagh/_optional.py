"""Lazy imports of heavy optional modules.

``require("torch", extra="train", purpose="training")`` imports and returns the
module, or raises :class:`~dagh.errors.DependencyError` naming the extra that
provides it. Nothing here imports an optional module at import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dagh.errors import DependencyError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise a DependencyError that names ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing top-level package is "not installed"; a broken install
        # (ImportError inside the package) is re-raised so the real cause shows.
        missing = getattr(exc, "name", None)
        if missing is not None and module.split(".")[0] != missing.split(".")[0]:
            raise
        raise DependencyError(module, extra, purpose) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (imports it as a side effect)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def lazy_attribute(package: str, exports: dict[str, str], name: str):
    """A package's ``__getattr__``: import the module ``exports[name]`` names and return its ``name``.

    Lets a package list its public names without importing their modules, so
    ``import dagh.runtime`` stays light until a name is used. The value is
    cached in the package's namespace: the next access is a plain lookup.
    """
    import sys

    try:
        module = exports[name]
    except KeyError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    setattr(sys.modules[package], name, value)
    return value


def lazy_exports(package: str, exports: dict[str, str]):
    """A package's ``(__getattr__, __dir__, __all__)`` for names that load on first use (lazy_attribute).

        __getattr__, __dir__, __all__ = lazy_exports(__name__, {"Encoder": "dagh.runtime.encode.encoder"})
    """
    import sys

    def __getattr__(name: str):
        return lazy_attribute(package, exports, name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
