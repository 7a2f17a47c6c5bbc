"""dagh-profile: how fast does this export encode and search here, and where does the time go."""

from __future__ import annotations

import json

import click

from dagh.cli._common import echo_err, handle_errors


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(float(v)) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _strings(ctx, param, value):
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def print_report(report: dict) -> None:
    click.echo(f"\nencode ({report['export']['code_bits']}-bit, {report['export']['input_size']} px)")
    click.echo(f"{'precision':<10}{'backend':<13}{'batch':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
               f"{'img/s':>9}   split p50 ms (preprocess / inference / packing)")
    for e in report["encode"]:
        if e["status"] != "ok":
            click.echo(f"{e['precision']:<10}{e['backend']:<13}{e['batch']:>6}  skipped: {e['reason']}")
            continue
        lat, s = e["latency"], e["split_p50_ms"]
        click.echo(f"{e['precision']:<10}{e['resolved_backend']:<13}{e['batch']:>6}{lat['p50_ms']:>9.2f}"
                   f"{lat['p90_ms']:>9.2f}{lat['p99_ms']:>9.2f}{lat['throughput']:>9.0f}   "
                   f"{s['preprocess']:.2f} / {s['inference']:.2f} / {s['packing']:.3f}")
    click.echo("\nsearch (1 query)")
    click.echo(f"{'index':<7}{'gallery':>10}{'k':>5}{'p50 ms':>9}{'p90 ms':>9}{'codes/s':>12}{'GB/s':>7}")
    skipped_said = set()
    for e in report["search"]:
        if e["status"] != "ok":
            if (e["index_backend"], e["reason"]) not in skipped_said:  # one line per backend and reason
                click.echo(f"{e['index_backend']:<7}skipped: {e['reason']}")
                skipped_said.add((e["index_backend"], e["reason"]))
            continue
        lat = e["latency"]
        click.echo(f"{e['index_backend']:<7}{e['gallery']:>10}{e['k']:>5}{lat['p50_ms']:>9.3f}{lat['p90_ms']:>9.3f}"
                   f"{e['codes_per_s']:>12.3g}{e['gb_per_s']:>7.2f}")
    click.echo("\nend to end: one camera frame = preprocess + encode + search (k=1)")
    for e in report["end_to_end"]:
        if e["status"] != "ok":
            click.echo(f"{e['precision']:<10}skipped: {e['reason']}")
            continue
        click.echo(f"{e['precision']:<10}gallery {e['gallery']}: SingleStream p90 {e['single_stream_p90_ms']:.2f} ms, "
                   f"Offline {e['offline_frames_per_s']:.0f} frames/s (batch {e['offline_batch']})")
    if report.get("recognizer"):
        click.echo("\nrecognizer: one 640x480 frame, p50 / p90 ms per stage (detect, align, encode, search)")
    for e in report.get("recognizer", []):
        if e["status"] != "ok":
            click.echo(f"{e['precision']:<10}{e['faces']} faces  skipped: {e['reason']}")
            continue
        st = e["stages"]
        click.echo(f"{e['precision']:<10}{e['faces']} faces ({e['found']} found): "
                   + ", ".join(f"{k} {st[k]['p50_ms']:.2f} / {st[k]['p90_ms']:.2f}" for k in st)
                   + f"; {e['frames_per_s']:.1f} frames/s")
    env = report["environment"]
    click.echo(f"\nenvironment: {env['cpu']} ({env['cores']} cores), GPU {env['gpu']}, onnxruntime "
               f"{env['onnxruntime']}, TensorRT {env['tensorrt']}, numba {env['numba']}"
               + (f", power mode {env['jetson_power_mode']}" if env.get("jetson_power_mode") else ""))
    if report["interrupted"]:
        click.echo("interrupted: the figures above are what was measured before Ctrl-C")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--precision", callback=_strings, default=None,
              help="Comma-separated precisions (fp32,fp16,int8); default: every one the export has.")
@click.option("--backend", callback=_strings, default="auto", show_default=True,
              help="Encoder backends: auto, onnxruntime, tensorrt (comma-separated).")
@click.option("--batch", callback=_floats, default="1,8,32", show_default=True, help="Encode batch sizes.")
@click.option("--gallery", callback=_floats, default="1e4,1e5,1e6", show_default=True, help="Gallery sizes.")
@click.option("--k", "ks", callback=_floats, default="1,10,100", show_default=True, help="Neighbours per search.")
@click.option("--index", "index_backends", callback=_strings, default="cpu,gpu", show_default=True,
              help="Index backends: cpu, gpu, numpy, faiss.")
@click.option("--faces", callback=_floats, default="1,5", show_default=True,
              help="Faces in the recognizer's 640x480 frame (1..5; real faces shipped with dagh).")
@click.option("--detector", default="retinaface", show_default=True, help="Face detector for the recognizer.")
@click.option("--duration", type=float, default=None, help="Seconds per configuration (default 0.5).")
@click.option("--iterations", type=int, default=None, help="Timed calls per configuration instead of --duration.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls before each measurement.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the report here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG plot here (needs matplotlib).")
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def main(export_dir, precision, backend, batch, gallery, ks, index_backends, faces, detector, duration, iterations,
         warmup, json_path, plot_path, quiet):
    """Profile encode and search latency of EXPORT_DIR on this device.

    Prints p50/p90/p99 latency and throughput per precision, backend and batch
    (with the preprocess / inference / packing split), search latency and scan
    rate per gallery size and k, one camera frame end to end (MLPerf-style
    SingleStream p90 and Offline throughput), and the recognizer on a 640x480
    frame with 1 and 5 faces (p50/p90 per stage: detect, align, encode,
    search; frames/s). Ctrl-C prints what was measured.

    \b
    Example:
      dagh-profile runs/demo/export --json runs/profile.json --plot runs/profile.png
    """
    from dagh.profile.runner import ProfileOptions, Profiler

    options = ProfileOptions(precisions=precision, backends=backend, batches=batch, galleries=gallery, ks=ks,
                             index_backends=index_backends, faces=faces, detector=detector, duration=duration,
                             iterations=iterations, warmup=warmup)
    if plot_path:
        from dagh._optional import require

        require("matplotlib", extra="plot", purpose="--plot")
    profiler = Profiler(export_dir, options)
    steps = profiler.steps()
    if not quiet:
        from dagh.progress import progress_bar

        bar = progress_bar(total=len(steps), unit="config")

        def on_step(label):
            bar.set_description(label)
            bar.update(1)
        profiler.on_step = on_step
    report = profiler.run()
    if not quiet:
        bar.close()
    print_report(report)
    if json_path:
        from dagh.fileio import atomic_write_text

        atomic_write_text(json_path, json.dumps(report, indent=2))
        echo_err(f"wrote {json_path}")
    if plot_path:
        from dagh.profile.plot import plot_profile

        plot_profile(report, profiler.samples, plot_path)
        echo_err(f"wrote {plot_path}")
    encode = report["encode"]
    if encode and not report["interrupted"] and all(e.get("status") == "skipped" for e in encode):
        from dagh.errors import ConfigError

        # A backend missing here is one skipped row; no row at all measured means the export itself is unusable
        raise ConfigError(f"no encoder of {export_dir} could run here: {encode[0]['reason']}")


if __name__ == "__main__":
    main()
