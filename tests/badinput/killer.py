"""Run one dagh write and SIGKILL it at a chosen point (the child of tests/badinput/test_kill9.py).

    python -m tests.badinput.killer SCENARIO POINT K SPEC_JSON

POINT names a call inside the write: ``write`` (the K-th write into the file being written: half its
bytes go out, then the kill, as a write cut short), ``write-before`` (the K-th write not made),
``fsync``, ``replace``, ``exchange`` (before the K-th call), ``replace-after``, ``exchange-after``
(right after it), ``rmtree`` (before removing the old copy), ``step`` / ``step-after`` (before / after
the K-th call of the scenario's own mid-work function; for ``push``, the Milvus record's writes). A process killed there exits by SIGKILL; one whose write has
fewer than K such calls finishes normally. Nothing here is imported by dagh: the hooks are patched
in from outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Counter:
    def __init__(self, k: int):
        self.k, self.calls = k, 0

    def hit(self) -> bool:
        self.calls += 1
        return self.calls == self.k


def arm(owner, name: str, counter: Counter, after: bool = False) -> None:
    """Kill the process at the counter's call of ``owner.name`` (before it runs, or right after)."""
    real = getattr(owner, name)

    def hooked(*args, **kwargs):
        if not after and counter.hit():
            die()
        result = real(*args, **kwargs)
        if after and counter.hit():
            die()
        return result

    setattr(owner, name, hooked)


class CuttingHandle:
    """A file handle whose counter's write sends half its bytes (or none), then kills the process."""

    def __init__(self, handle, counter: Counter, half: bool):
        self._handle, self._counter, self._half = handle, counter, half

    def write(self, data):
        if self._counter.hit():
            if self._half:
                self._handle.write(bytes(data)[: len(data) // 2])
                self._handle.flush()
            die()
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def arm_writes(module, counter: Counter, half: bool) -> None:
    """Cut the writes of ``module``'s atomic_write handles and of the files it opens itself."""
    import builtins

    if hasattr(module, "atomic_write"):
        real_atomic = module.atomic_write

        @contextlib.contextmanager
        def atomic(path):
            with real_atomic(path) as handle:
                yield CuttingHandle(handle, counter, half)

        module.atomic_write = atomic
    real_open = builtins.open

    def cutting_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return CuttingHandle(handle, counter, half) if any(m in mode for m in "wa+") else handle

    module.open = cutting_open  # the module's own global, ahead of builtins


def install_fake_tensorrt(version: str) -> None:
    """tests/fake_tensorrt's modules, put in sys.modules without pytest's monkeypatch."""
    from tests import fake_tensorrt

    class Patch:
        @staticmethod
        def setitem(mapping, key, value):
            mapping[key] = value

    fake_tensorrt.install(Patch(), version)


def main() -> None:
    scenario, point, k, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    import shutil

    import numpy as np

    import dagh.fileio as fileio
    import dagh.runtime.gallery.file as gallery_file

    counter = Counter(k)
    targets = {"fsync": (os, "fsync"), "replace": (os, "replace"), "exchange": (fileio, "exchange_paths"),
               "rmtree": (shutil, "rmtree")}
    write_module = {"save_gallery": gallery_file, "append_gallery": gallery_file, "enroll": gallery_file,
                    "engine": fileio}.get(scenario, fileio)
    if point in ("write", "write-before"):
        arm_writes(write_module, counter, half=point == "write")
    elif point in ("step", "step-after"):
        owner, name = {"export": ("dagh.export.pipeline", "_verification"),
                       "engine": ("dagh.export.engines", "check_engine"),
                       "push": ("dagh.runtime.gallery.milvus", "_SidecarRecord.write")}[scenario]
        module = __import__(owner, fromlist=["_"])
        if "." in name:  # a method: patch it on its class
            cls_name, name = name.split(".")
            module = getattr(module, cls_name)
        arm(module, name, counter, after=point == "step-after")
    else:
        base = point.removesuffix("-after")
        owner, name = targets[base]
        arm(owner, name, counter, after=point.endswith("-after"))

    if scenario == "save_gallery":
        data = np.load(spec["new"])
        gallery_file.save_gallery(spec["path"], data["codes"], data["ids"], int(data["bits"]),
                                  labels=list(data["labels"]))
    elif scenario == "append_gallery":
        data = np.load(spec["new"])
        gallery_file.append_gallery(spec["path"], data["codes"], data["ids"], int(data["bits"]),
                                    labels=list(data["labels"]))
    elif scenario == "enroll":
        from dagh.cli.gallery import main as gallery_cli

        gallery_cli(["enroll", spec["path"], spec["photos"], "--export", spec["export"], "--detector",
                     "whole-image", "--append", "--quiet"], standalone_mode=False)
    elif scenario == "export":
        from dagh.export.pipeline import ExportOptions, export_checkpoint

        export_checkpoint(spec["checkpoint"], spec["path"], ExportOptions(fp16=True, force=True, parity_limit=200),
                          log=lambda m: None)
    elif scenario == "engine":
        install_fake_tensorrt("10.0.1")
        from dagh.export.engines import EngineSettings, build_engines

        build_engines(spec["path"], EngineSettings(), log=lambda m: None)
    elif scenario == "push":
        from dagh.cli.gallery import main as gallery_cli

        gallery_cli(["push", spec["path"], spec["target"]], standalone_mode=False)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
