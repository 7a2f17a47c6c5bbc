"""dagh-engine: TensorRT engines built on the device from an export directory, checked there (no torch)."""

from __future__ import annotations

import click

from dagh.cli._common import echo_err, handle_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--fp16", "precisions", flag_value="fp16", multiple=True,
              help="Build the FP16 engine (default: every FP16 and INT8 ONNX the export has).")
@click.option("--int8", "precisions", flag_value="int8", multiple=True, help="Build the INT8 engine.")
@click.option("--max-batch", default=64, show_default=True, type=int,
              help="Largest batch the engines take (the runtime splits larger ones).")
@click.option("--opt-batch", default=8, show_default=True, type=int, help="Batch TensorRT tunes for.")
@click.option("--workspace-mb", default=1024, show_default=True, type=int)
@click.option("--dla-core", default=None, type=int,
              help="Also build the FP16 engine for this DLA core (model.fp16.dla<N>.engine; Jetson Orin / Xavier). "
                   "DLA runs no Q/DQ INT8 model.")
@click.option("--dla-batch", default=None, type=int,
              help="The DLA engines' static batch (DLA has no dynamic shapes). Default: --opt-batch.")
@click.option("--dla-fallback", is_flag=True,
              help="Let layers DLA cannot run go to the GPU; the manifest records which ran where. "
                   "Without it such a model is refused.")
@click.option("--timing-cache", default=None, type=click.Path(dir_okay=False),
              help="TensorRT timing cache to reuse across builds. Default: timing.cache in EXPORT_DIR.")
@click.option("--max-extra-flips", default=0.005, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of the check crops' bits an engine may flip beyond what its ONNX flipped.")
@click.option("--no-check", is_flag=True, help="Do not run the engines on the check crops (not recommended).")
@click.option("--print-trtexec", is_flag=True, help="Print the equivalent trtexec commands and build nothing.")
@handle_errors
def main(export_dir, precisions, max_batch, opt_batch, workspace_mb, dla_core, dla_batch, dla_fallback,
         timing_cache, max_extra_flips, no_check, print_trtexec):
    """Build TensorRT engines for EXPORT_DIR on this device, check their codes, record them.

    An engine belongs to one GPU and one TensorRT version, so it is built where it
    runs. Each engine is built from the export's FP16 / INT8 ONNX, then run on the
    check crops dagh-export stored (up to 256 held-out faces; 128 by default); the
    bits it flips against the FP32 ONNX are
    reported, and an engine that flips more than its ONNX did (plus
    --max-extra-flips) is refused. The manifest is updated (sha256, TensorRT
    version, GPU, profile, DLA placement) only when every engine passed. Needs
    tensorrt and cuda-python (pip install 'dagh[tensorrt-cu12]', or JetPack's
    TensorRT on a Jetson); never torch.

    \b
    Examples:
      dagh-engine runs/demo/export                    # every FP16 / INT8 engine
      dagh-engine runs/demo/export --dla-core 0 --dla-fallback
      dagh-engine runs/demo/export --print-trtexec    # build by hand instead
    Exit code 2: the export, the device or an engine check said no (the reason is printed).
    """
    from dagh.export.engines import (
        EngineSettings,
        build_engines,
        engine_plans,
        installed_tensorrt_major,
        trtexec_commands,
    )
    from dagh.manifest import load_manifest

    settings = EngineSettings(precisions=tuple(dict.fromkeys(precisions)), max_batch=max_batch, opt_batch=opt_batch,
                              workspace_mb=workspace_mb, dla_core=dla_core, dla_batch=dla_batch,
                              gpu_fallback=dla_fallback, timing_cache=timing_cache, max_extra_flips=max_extra_flips,
                              check=not no_check)
    if print_trtexec:
        for command in trtexec_commands(engine_plans(load_manifest(export_dir), settings), installed_tensorrt_major()):
            click.echo(command)
        return
    _, built = build_engines(export_dir, settings, log=echo_err)
    click.echo(f"\n{'engine':<26}{'batch':>10}  {'flipped vs FP32 ONNX':>22}{'its ONNX':>10}  placement")
    for b in built:
        profile = b.entry.details["profile"]
        check = b.check
        flipped = f"{check.flipped_bits} ({check.flip_rate * 100:.3f}%)" if check else "not checked"
        onnx = f"{check.onnx_flip_rate * 100:.3f}%" if check and check.onnx_flip_rate is not None else "-"
        dla = b.entry.details.get("dla")
        placement = "GPU"
        if dla:
            placement = (f"DLA {dla['core']}: {len(dla['dla_layers'])} DLA subgraphs, {len(dla['gpu_layers'])} GPU "
                         f"layers{'' if dla['confirmed'] else ' (predicted: TensorRT logged no placement)'}")
        click.echo(f"{b.entry.path:<26}{profile['min']:>4}..{profile['max']:<4}  {flipped:>22}{onnx:>10}  {placement}")
    click.echo(f"manifest updated: {export_dir}/manifest.json")


if __name__ == "__main__":
    main()
