"""dagh-eval: retrieval quality of a checkpoint (mAP, precision@k, radius-2) and verification
(TAR at FAR 1e-2/1e-3/1e-4, EER, the open-set radius for a target FAR)."""

from __future__ import annotations

import json

import click

from dagh.cli._common import echo_err, handle_errors, parse_int_list
from dagh.eval.metrics import RetrievalReport
from dagh.eval.verification import OperatingPoint, VerificationReport, min_impostor_pairs


def _print_retrieval(report: RetrievalReport, radius: int) -> None:
    click.echo(f"{'metric':<22}{'value':>10}")
    click.echo(f"{'mAP':<22}{report.map:>10.4f}")
    for k, v in report.precision_at_k.items():
        click.echo(f"{f'precision@{k}':<22}{v:>10.4f}")
    click.echo(f"{f'precision (r<={radius})':<22}{report.precision_at_radius:>10.4f}")
    click.echo(f"{f'recall (r<={radius})':<22}{report.recall_at_radius:>10.4f}")


def _too_few(p: OperatingPoint) -> str:
    return "" if p.far_measurable else f"; too few impostor pairs, need {min_impostor_pairs(p.target_far)}"


def _print_verification(report: VerificationReport) -> None:
    click.echo(f"\nverification on {report.identity_set}: {report.num_identities} identities, {report.codes} "
               f"faces, {report.genuine_pairs} genuine / {report.impostor_pairs} impostor pairs")
    for p in report.points:
        click.echo(f"{f'TAR@FAR={p.target_far:g}':<22}{p.tar:>10.4f}   "
                   f"(radius {p.radius}, FAR {p.far:.2g}{_too_few(p)})")
    click.echo(f"{'EER':<22}{report.eer:>10.4f}")
    t = report.target
    click.echo(f"{f'radius (FAR<={t.target_far:g})':<22}{t.radius:>10d}   "
               f"(FAR {t.far:.2g}, TAR {t.tar:.4f}{_too_few(t)})")
    _print_histograms(report, t.radius)


def _print_histograms(report: VerificationReport, radius: int, rows: int = 24, width: int = 30) -> None:
    """Genuine (#) and impostor (.) pairs per Hamming distance, as shares of each, binned to ``rows`` rows."""
    import numpy as np

    genuine = np.asarray(report.genuine_histogram, float)
    impostor = np.asarray(report.impostor_histogram, float)
    genuine, impostor = genuine / max(genuine.sum(), 1), impostor / max(impostor.sum(), 1)
    step = max(1, -(-len(genuine) // rows))
    starts = range(0, len(genuine), step)
    binned = [(lo, genuine[lo:lo + step].sum(), impostor[lo:lo + step].sum()) for lo in starts]
    click.echo("\ndistance   genuine  impostor   (# genuine, . impostor; share of each kind's pairs)")
    top = max(max(g, i) for _, g, i in binned) or 1.0
    for lo, g, i in binned:
        if g == 0 and i == 0:
            continue
        hi = min(lo + step, len(genuine)) - 1
        label = f"{lo}" if hi == lo else f"{lo}-{hi}"
        mark = " <- radius" if lo <= radius <= hi else ""
        click.echo(f"{label:>8} {100 * g:>8.2f}% {100 * i:>8.2f}%   "
                   f"{'#' * round(width * g / top):<{width}} {'.' * round(width * i / top)}{mark}")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", default=None,
              help="Dataset to evaluate on; default: the one the checkpoint was trained on.")
@click.option("--topk", default="1,10,100", show_default=True, callback=parse_int_list,
              help="Comma-separated k for precision@k.")
@click.option("--radius", default=2, show_default=True, type=int, help="Hamming radius for P/R.")
@click.option("--target-far", default=1e-3, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="False-accept rate to choose the open-set radius for.")
@click.option("--bits", type=int, default=None, help="Refuse a checkpoint of another code length.")
@click.option("--model", "model_name", default=None, help="Refuse a checkpoint of another architecture.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the report as JSON to this file.")
@handle_errors
def main(checkpoint, data, topk, radius, target_far, bits, model_name, device, json_path):
    """Encode the query (test) and database (train) splits with CHECKPOINT and
    print mAP, precision@k and precision/recall within a Hamming radius; then
    verification over all pairs of a face set: TAR at FAR 1e-2/1e-3/1e-4, the
    EER and the radius for --target-far. On synthetic data the verification set
    is identities the model never saw; otherwise the test split (seen in training).

    \b
    Example:
      dagh-eval runs/demo/dagh48.pt --json runs/demo/eval.json
    """
    from dagh.data import DataSource, load_splits
    from dagh.eval.encode import encode_faces
    from dagh.eval.metrics import evaluate_retrieval
    from dagh.eval.verification import evaluate_verification, verification_faces
    from dagh.train.checkpoint import load_checkpoint
    from dagh.train.loop import resolve_device

    ckpt = load_checkpoint(checkpoint, expect_model=model_name, expect_bits=bits)
    stored = DataSource.from_dict(ckpt.state.get("data", {"kind": "synthetic"}))
    source = stored if data is None else DataSource.parse(data, size=ckpt.preprocess.size,
                                                          seed=stored.seed)
    if source.size != ckpt.preprocess.size:
        source = DataSource.from_dict({**source.to_dict(), "size": ckpt.preprocess.size})
    splits = load_splits(source, log=echo_err)
    vset = verification_faces(source, splits, log=echo_err)
    dev = resolve_device(device)
    model = ckpt.build_model().to(dev)
    echo_err(f"encoding {len(splits.test)} queries and {len(splits.train)} database faces "
             f"with {ckpt.model_config.name} {ckpt.model_config.bits}-bit")
    q = encode_faces(model, splits.test, ckpt.preprocess, device=dev)
    d = encode_faces(model, splits.train, ckpt.preprocess, device=dev)
    report = evaluate_retrieval(q, splits.test.labels, d, splits.train.labels, topk=topk, radius=radius)
    v = encode_faces(model, vset.faces, ckpt.preprocess, device=dev) if vset.unseen else q
    verification = evaluate_verification(v, vset.faces.labels, target_far=target_far,
                                         identity_set=vset.description)
    _print_retrieval(report, radius)
    if report.queries_without_relevant:
        echo_err(f"note: {report.queries_without_relevant} queries have no relevant database "
                 "item and are left out of mAP")
    _print_verification(verification)
    if json_path:
        from dagh.fileio import atomic_write_text

        payload = {"checkpoint": str(checkpoint), "data": source.to_dict(), **report.to_dict(),
                   "verification": verification.to_dict()}
        atomic_write_text(json_path, json.dumps(payload, indent=2))
        echo_err(f"wrote {json_path}")


if __name__ == "__main__":
    main()
