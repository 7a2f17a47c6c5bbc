"""dagh-gallery: enroll people, list, remove and identify, on a .dgal gallery file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from dagh.cli._common import echo_err, handle_errors

EXPORT = click.option("--export", "export_dir", required=True, type=click.Path(file_okay=False),
                      help="Export directory of the model (dagh-export), whose codes the gallery holds.")
DETECTOR = click.option("--detector", default="retinaface", show_default=True,
                        help="Face detector: 'retinaface', or 'whole-image' for photos that are face crops.")
PRECISION = click.option("--precision", default="fp32", show_default=True,
                         type=click.Choice(["fp32", "fp16", "int8"]), help="Which of the export's models.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Galleries of known people: codes with ids and names, in a .dgal file or a Milvus collection.

    \b
    Example:
      dagh-gallery enroll people.dgal photos/ --export runs/demo/export   # photos/<name>/*.jpg
      dagh-gallery list people.dgal
      dagh-gallery identify people.dgal frame.jpg --export runs/demo/export
      dagh-gallery remove people.dgal alice
      dagh-gallery push people.dgal milvus:central.db#all      # into Milvus (Lite file or server)
      dagh-gallery identify milvus:central.db#all frame.jpg --export runs/demo/export
    """


def _next_id(path: Path, bits: int) -> int:
    """The first free id of the gallery at ``path`` (0 for a new one): ids stay unique in a file."""
    from dagh.runtime.gallery.file import load_gallery

    if not path.exists():
        return 0
    existing = load_gallery(path, bits=bits)
    return int(existing.ids.max()) + 1 if len(existing) else 0


def _store(path: Path, enrolled, bits: int) -> None:
    """Write ``enrolled`` (an Enrollment) into the gallery at ``path``: a new file, or a new segment."""
    from dagh.runtime.gallery.file import append_gallery, save_gallery

    write = append_gallery if path.exists() else save_gallery
    write(path, enrolled.codes, enrolled.ids, bits, labels=enrolled.labels)


def _encoder(export_dir: str, precision: str):
    from dagh.runtime.encode.encoder import Encoder

    return Encoder.open(export_dir, precision=precision)


@main.command()
@click.argument("gallery", type=click.Path(dir_okay=False))
@click.argument("root", type=click.Path(file_okay=False, exists=True))
@EXPORT
@DETECTOR
@PRECISION
@click.option("--strict", is_flag=True, help="Refuse ROOT at the first photo without exactly one face.")
@click.option("--append", "append_", is_flag=True, help="Add to an existing GALLERY instead of refusing it.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def enroll(gallery, root, export_dir, detector, precision, strict, append_, quiet):
    """Enroll ROOT/<name>/*.jpg into GALLERY: one code per usable photo, named by its folder.

    Each photo's one face is detected, aligned onto the model's template and
    encoded; a photo with no face or with several is skipped and counted
    (--strict refuses instead).
    """
    from dagh.errors import ConfigError
    from dagh.runtime.enroll import enroll_folder
    from dagh.runtime.face.detectors import open_detector

    path = Path(gallery)
    if path.exists() and not append_:
        raise ConfigError(f"{gallery!r} exists; pass --append to add to it, or choose a new file")
    encoder = _encoder(export_dir, precision)
    first_id = _next_id(path, encoder.bits)
    progress = None
    if not quiet:
        from dagh.progress import progress_bar

        progress = lambda photos: progress_bar(photos, desc="enrolling", unit="photo")  # noqa: E731
    result = enroll_folder(root, encoder, open_detector(detector), strict=strict, first_id=first_id,
                           progress=progress)
    _store(path, result, encoder.bits)
    click.echo(f"{gallery}: enrolled {result.summary()}")
    for reason, paths in sorted(result.skipped.items()):
        echo_err(f"skipped ({reason}): " + ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else ""))


@main.command()
@click.argument("gallery", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--name", required=True, help="The person the photos show.")
@EXPORT
@DETECTOR
@PRECISION
@click.option("--strict", is_flag=True, help="Refuse the photos if one lacks exactly one face.")
@handle_errors
def add(gallery, images, name, export_dir, detector, precision, strict):
    """Add photos of one person (--name) to GALLERY (created if absent)."""
    from dagh.runtime.enroll import enroll_photos
    from dagh.runtime.face.detectors import open_detector

    path = Path(gallery)
    encoder = _encoder(export_dir, precision)
    result = enroll_photos([(name, Path(p)) for p in images], encoder, open_detector(detector), strict=strict,
                           first_id=_next_id(path, encoder.bits))
    _store(path, result, encoder.bits)
    click.echo(f"{gallery}: added {result.summary()}")


@main.command()
@click.argument("gallery", type=click.Path(dir_okay=False, exists=True))
@click.argument("names", nargs=-1, required=True)
@handle_errors
def remove(gallery, names):
    """Remove every code of the people NAMES from GALLERY (the file is rewritten atomically)."""
    from dagh.errors import DataError
    from dagh.runtime.gallery.file import load_gallery, remove_from_gallery

    people = set(load_gallery(gallery).labels)
    absent = [name for name in names if name not in people]
    if absent:  # a misspelt name must not look like a removal
        known = ", ".join(sorted(people)[:10]) + (" ..." if len(people) > 10 else "")
        raise DataError(f"{gallery} has no one named {', '.join(map(repr, absent))}; nothing removed "
                        f"(it has: {known or 'nobody'})")
    removed = remove_from_gallery(gallery, labels=list(names))
    click.echo(f"{gallery}: removed {removed} codes of {', '.join(names)}")


@main.command(name="list")
@click.argument("gallery", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {name: number of codes}.")
@handle_errors
def list_(gallery, as_json):
    """The people in GALLERY and how many codes each has."""
    from dagh.runtime.gallery.file import load_gallery

    loaded = load_gallery(gallery)
    people = loaded.people()
    if as_json:
        click.echo(json.dumps({"bits": loaded.bits, "codes": len(loaded), "people": people}, indent=2))
        return
    click.echo(f"{gallery}: {len(loaded)} codes of {loaded.bits} bits, {len(people)} people")
    for name, count in sorted(people.items()):
        click.echo(f"  {name:<30} {count:>5} codes")


@main.command()
@click.argument("gallery")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@EXPORT
@DETECTOR
@PRECISION
@click.option("--radius", type=click.IntRange(0, 256), default=None,
              help="Largest Hamming distance called known. Default: the export's measured radius.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
@handle_errors
def identify(gallery, images, export_dir, detector, precision, radius, as_json):
    """Who is in each of IMAGES: per face its name, or unknown, or why it is unusable.

    GALLERY is a .dgal file or a Milvus collection, milvus:URI#COLLECTION.
    """
    from dagh.runtime.recognizer import Recognizer

    with Recognizer.open(export_dir, gallery, detector=detector, radius=radius, precision=precision) as rec:
        for image in images:
            matches = rec.recognize(image)
            if as_json:
                click.echo(json.dumps({"image": image, "faces": [
                    {"box": [round(v, 1) for v in m.box], "known": m.known, "usable": m.usable, "name": m.name,
                     "id": m.id, "distance": m.distance, "reason": m.reason} for m in matches]}))
                continue
            if not matches:
                click.echo(f"{image}: no face")
            for m in matches:
                where = ",".join(f"{v:.0f}" for v in m.box)
                told = m.label if not m.usable or not m.known else f"{m.name if m.name is not None else m.id}"
                distance = "" if m.distance is None else f" (distance {m.distance}, radius {rec.radius})"
                click.echo(f"{image}: [{where}] {told}{distance}")


def _milvus_target(target: str):
    from dagh.runtime.gallery.milvus import parse_gallery_uri

    parsed = parse_gallery_uri(target)
    if parsed is None:
        from dagh.errors import ConfigError

        raise ConfigError(f"{target!r} is not a Milvus gallery: write milvus:URI#COLLECTION, e.g. "
                          "milvus:people.db#site_a (Milvus Lite) or milvus:http://milvus:19530#all")
    return parsed


@main.command()
@click.argument("gallery", type=click.Path(dir_okay=False, exists=True))
@click.argument("target")
@click.option("--site", default="", help="Site or camera name stored with every code pushed (to filter by).")
@handle_errors
def push(gallery, target, site):
    """Copy GALLERY (.dgal) into the Milvus collection TARGET (milvus:URI#COLLECTION).

    Codes already there are skipped (their codes must match), so pushing twice
    adds nothing and a push cut short resumes where it stopped.

    \b
    Example:
      dagh-gallery push people.dgal milvus:central.db#all --site gate-1
      dagh-gallery push people.dgal milvus:http://milvus:19530#all
    """
    from dagh.errors import DataError
    from dagh.runtime.gallery.file import load_gallery
    from dagh.runtime.gallery.milvus import MilvusGallery

    local = load_gallery(gallery)
    uri, collection = _milvus_target(target)
    codes, ids = np.asarray(local.codes), np.asarray(local.ids)
    labels = list(local.labels) if local.labels is not None else None
    with MilvusGallery.open(uri, collection, local.bits) as remote:
        there = remote.holding(ids)
        stored = remote.fetch(there)
        by_id = {int(i): row for i, row in zip(ids, codes)}
        differ = [i for i in there if stored[int(i)] != by_id[int(i)].tobytes()]
        if differ:
            raise DataError(f"{len(differ)} ids of {gallery} hold other codes in {target} (e.g. id {differ[0]}): "
                            "two galleries use the same ids; give one of them new ids before pushing")
        new = ~np.isin(ids, there)
        remote.add(codes[new], ids[new], labels=[labels[i] for i in np.flatnonzero(new)] if labels else None,
                   site=site)
        total = len(remote)
    click.echo(f"{target}: pushed {int(new.sum())} new codes of {gallery} ({len(there)} were there already); "
               f"{total} codes in all")


@main.command()
@click.argument("target")
@click.argument("gallery", type=click.Path(dir_okay=False))
@click.option("--bits", required=True, type=click.IntRange(1, 32768), help="The code length of the collection.")
@handle_errors
def pull(target, gallery, bits):
    """Copy the Milvus collection TARGET (milvus:URI#COLLECTION) into GALLERY (.dgal), written atomically.

    \b
    Example:
      dagh-gallery pull milvus:central.db#all site.dgal --bits 48
    """
    from dagh.runtime.gallery.file import save_gallery
    from dagh.runtime.gallery.milvus import MilvusGallery

    uri, collection = _milvus_target(target)
    with MilvusGallery.open(uri, collection, bits, create=False) as remote:
        codes, ids, labels = remote.rows()
    named = all(labels)
    if not named and any(labels):
        echo_err(f"some codes of {target} have no name: {gallery} is written without names")
    save_gallery(gallery, codes, ids, bits, labels=labels if named and labels else None)
    click.echo(f"{gallery}: {len(ids)} codes of {bits} bits from {target}")


if __name__ == "__main__":
    main()
