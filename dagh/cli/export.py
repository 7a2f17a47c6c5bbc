"""dagh-export: checkpoint -> ONNX / FP16 / INT8 / TensorRT export directory."""

from __future__ import annotations

import click

from dagh.cli._common import echo_err, handle_errors
from dagh.eval.verification import min_impostor_pairs
from dagh.manifest import OpenSet


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def open_set_line(o: OpenSet) -> str:
    """One line on the open-set radius, flagging a FAR too rare to measure on the pairs there were."""
    line = (f"open-set radius {o.radius} (FAR {o.measured_far:.2g} measured on {o.impostor_pairs} impostor "
            f"pairs of {o.identities}; TAR {o.tar:.3f})")
    if o.radius < 0:
        line += "; no radius meets that FAR: every face would be unknown"
    if not o.far_measurable:
        line += (f"; too few impostor pairs to measure FAR {o.target_far:g} "
                 f"(need {min_impostor_pairs(o.target_far)})")
    return line


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Export directory to create (must be empty or absent unless --force).")
@click.option("--fp16", is_flag=True, help="Also write model.fp16.onnx (float16 compute, float32 I/O).")
@click.option("--int8", is_flag=True, help="Also write model.int8.onnx (explicit Q/DQ), calibrated on --calib-data.")
@click.option("--calib-data", default=None,
              help="INT8 calibration images: an image folder, 'synthetic', or an .npy of uint8 NHWC crops. "
                   "Default: faces like the checkpoint's (synthetic ones of their own seed, or the training "
                   "split of its image folder), never the query split.")
@click.option("--calib-method", default="auto", show_default=True,
              type=click.Choice(["auto", "minmax", "entropy", "percentile"]),
              help="auto: try them all and keep the best bit agreement with FP32 on held-out images.")
@click.option("--calib-samples", default=512, show_default=True, type=int)
@click.option("--engine", default="auto", show_default=True, type=click.Choice(["auto", "yes", "no"]),
              help="TensorRT engines here: auto builds them where TensorRT is installed and skips with a "
                   "reason elsewhere; yes makes a missing TensorRT an error. Engines belong to one GPU: "
                   "build them on the device with dagh-engine EXPORT_DIR.")
@click.option("--max-batch", default=64, show_default=True, type=int, help="Engine profile maximum batch.")
@click.option("--opt-batch", default=8, show_default=True, type=int, help="Engine profile optimal batch.")
@click.option("--workspace-mb", default=1024, show_default=True, type=int)
@click.option("--timing-cache", default=None, type=click.Path(dir_okay=False),
              help="TensorRT timing cache to reuse across builds.")
@click.option("--opset", default=17, show_default=True, type=int)
@click.option("--parity-limit", default=None, type=int,
              help="Use at most this many query and database images for the parity check.")
@click.option("--target-far", default=1e-3, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="False-accept rate the open-set radius in the manifest is chosen for.")
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@handle_errors
def main(checkpoint, output, fp16, int8, calib_data, calib_method, calib_samples, engine, max_batch,
         opt_batch, workspace_mb, timing_cache, opset, parity_limit, target_far, force):
    """Export CHECKPOINT for the device and report, per file, how many hash bits
    flipped against torch and what that cost in mAP; record the open-set radius
    (the largest Hamming distance still accepted) for --target-far in the manifest.

    \b
    Examples:
      dagh-export runs/demo/dagh48.pt -o runs/demo/export --fp16
      dagh-export runs/demo/dagh48.pt -o runs/demo/export --fp16 --int8
    """
    from dagh.export.pipeline import ExportOptions, export_checkpoint

    options = ExportOptions(fp16=fp16, int8=int8, calib_data=calib_data, calib_method=calib_method,
                            calib_samples=calib_samples, engine=engine, max_batch=max_batch,
                            opt_batch=opt_batch, workspace_mb=workspace_mb,
                            opset=opset, timing_cache=timing_cache, force=force, parity_limit=parity_limit,
                            target_far=target_far)
    result = export_checkpoint(checkpoint, output, options, log=echo_err)
    parity = {m["name"]: m for m in result.manifest.reports["parity"]["models"]}
    torch_map = result.manifest.reports["parity"]["torch_map"]
    click.echo(f"\n{'file':<22}{'size':>10}  {'precision':<9}{'bits = torch':>13}{'flipped':>9}"
               f"{'near-0':>8}{'mAP':>8}{'ΔmAP':>8}")
    click.echo(f"{'(torch)':<22}{'':>10}  {'fp32':<9}{'100.000%':>13}{0:>9}{'':>8}{torch_map:>8.4f}{'':>8}")
    for entry in result.manifest.files:
        p = parity.get(entry.path)
        if p is None:
            click.echo(f"{entry.path:<22}{_size(entry.bytes):>10}  {entry.precision or '-':<9}")
            continue
        click.echo(f"{entry.path:<22}{_size(entry.bytes):>10}  {entry.precision:<9}"
                   f"{p['bit_agreement'] * 100:>12.3f}%{p['flipped_bits']:>9}{p['near_zero_bits']:>8}"
                   f"{p['map']:>8.4f}{p['map_delta'] * 100:>+7.2f}p")
    n = result.manifest.reports["parity"]["images"]
    click.echo(f"(on {n} images x {result.manifest.code_bits} bits; near-0: reference bits with |h| under "
               "the precision's rounding tolerance; ΔmAP in points)")
    if result.manifest.open_set is not None:
        click.echo(open_set_line(result.manifest.open_set))
    for command in result.trtexec:
        click.echo(f"trtexec: {command}")
    click.echo(f"export directory: {result.directory}")


if __name__ == "__main__":
    main()
