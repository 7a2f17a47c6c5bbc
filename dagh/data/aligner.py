"""Raw photos -> aligned face crops, the way the recognizer will see faces (``dagh-align``).

``align_folder(RAW, OUT)`` reads ``RAW/<person>/*.jpg|png``, finds the one face
in each photo, aligns it onto a landmark template and writes
``OUT/<person>/<photo>.png``. A photo with no face or with several is skipped
and counted (or, with ``strict``, refuses the folder). ``OUT/dagh-align.json``
records the template and crop size, and ``dagh-train --data OUT`` stores that
template in the checkpoint, so the export and the runtime align faces the
same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dagh.errors import DataError
from dagh.fileio import atomic_directory

ALIGN_RECORD = "dagh-align.json"


@dataclasses.dataclass
class AlignReport:
    """What aligning a folder did: crops written, photos skipped and why."""

    written: int = 0
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # reason -> photo paths

    def summary(self) -> str:
        parts = [f"{len(v)} skipped ({k})" for k, v in sorted(self.skipped.items())]
        return ", ".join([f"{self.written} crops written", *parts])


def read_template_record(root: str | os.PathLike):
    """The template ``dagh-align`` recorded in ``root``, or None where the folder was not made by it."""
    path = Path(root) / ALIGN_RECORD
    if not path.is_file():
        return None
    from dagh.runtime.face.align import check_template

    try:
        return check_template(json.loads(path.read_text(encoding="utf-8"))["template"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is malformed ({exc}); re-run dagh-align") from exc


def align_folder(source: str | os.PathLike, output: str | os.PathLike, *, detector, template, size: int,
                 strict: bool = False, force: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print) -> AlignReport:
    """Align every photo of ``source`` into ``output`` (written whole, or not at all)."""
    from PIL import Image

    from dagh.runtime.face.crops import person_photos, photo_crops

    photos = person_photos(source)
    report = AlignReport()
    iterator = photos
    if progress:
        from dagh.progress import progress_bar

        iterator = progress_bar(photos, desc="aligning", unit="photo")
    with atomic_directory(output, force=force) as partial:
        for person, path, crop in photo_crops(iterator, detector, template, size, strict=strict,
                                              skipped=report.skipped):
            (partial / person).mkdir(exist_ok=True)
            Image.fromarray(np.ascontiguousarray(crop)).save(partial / person / f"{path.stem}.png")
            report.written += 1
        if not report.written:
            raise DataError(f"no face was found in any of the {len(photos)} photos of {str(source)!r}")
        record = {"template": [list(p) for p in template] if template else None, "size": size,
                  "detector": getattr(detector, "name", type(detector).__name__), "written": report.written,
                  "skipped": {k: len(v) for k, v in report.skipped.items()}}
        (partial / ALIGN_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
    log(f"{output}: {report.summary()}")
    return report
