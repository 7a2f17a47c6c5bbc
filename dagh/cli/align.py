"""dagh-align: raw photos -> aligned face crops for training or enrollment."""

from __future__ import annotations

import click

from dagh.cli._common import handle_errors

TEMPLATES = ("arcface", "synthetic", "none")


def template_named(name: str):
    """The landmark template called ``name`` (see TEMPLATES): fractions of the crop side, or None."""
    if name == "arcface":
        from dagh.runtime.face.align import ARCFACE_TEMPLATE

        return ARCFACE_TEMPLATE
    if name == "synthetic":
        from dagh.data.synthetic import synthetic_face_template

        return synthetic_face_template()
    return None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder to write OUTPUT/<person>/<photo>.png into (must be empty or absent unless --force).")
@click.option("--size", default=112, show_default=True, type=click.IntRange(16, 1024),
              help="Side of the square crops in pixels (training resizes them to the model's input).")
@click.option("--template", "template_name", default="arcface", show_default=True, type=click.Choice(TEMPLATES),
              help="Where the eyes, nose and mouth corners go in the crop: 'arcface' (the common alignment "
                   "of real face crops), 'synthetic' (dagh's synthetic faces), 'none' (box crops).")
@click.option("--detector", default="retinaface", show_default=True, help="Face detector (dagh.runtime.face).")
@click.option("--strict", is_flag=True, help="Refuse the folder at the first photo without exactly one face.")
@click.option("--force", is_flag=True, help="Replace a non-empty OUTPUT.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def main(source, output, size, template_name, detector, strict, force, quiet):
    """Find the one face in each photo of SOURCE/<person>/ and write it aligned.

    Each face is aligned onto a landmark template by a similarity transform
    through its 5 detected landmarks (eyes, nose tip, mouth corners), the same
    alignment the recognizer applies at run time. A photo with no face or with
    several faces is skipped and counted (--strict refuses instead). OUTPUT
    gets a dagh-align.json recording the template; dagh-train --data OUTPUT
    stores it in the checkpoint, so export and runtime align faces the same way.

    \b
    Example:
      dagh-align photos/ -o runs/faces-aligned            # photos/<person>/*.jpg
      dagh-train --data runs/faces-aligned -o runs/faces.pt --bits 48
    """
    from dagh.data.aligner import align_folder
    from dagh.runtime.face.detectors import open_detector

    report = align_folder(source, output, detector=open_detector(detector), template=template_named(template_name),
                          size=size, strict=strict, force=force, progress=not quiet, log=click.echo)
    for reason, paths in sorted(report.skipped.items()):
        click.echo(f"skipped ({reason}): " + ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else ""), err=True)


if __name__ == "__main__":
    main()
