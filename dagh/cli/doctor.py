"""dagh-doctor: what this machine can run, and how (or whether) an export would run on it."""

from __future__ import annotations

import json

import click

from dagh.cli._common import echo_err, handle_errors
from dagh.runtime.doctor import PROBE_TIMEOUT_S, SEARCH_CHOICES, Report, Step
from dagh.runtime.encode.encoder import BACKENDS, PRECISIONS
from dagh.runtime.face.detectors import DETECTORS

PLAN_OPTIONS = ("precision", "backend", "search", "detector", "dla_core")


def _absent_or(fact, text: str) -> str:
    """``text``; with only ``fact.absent``: "absent: <why>"; with both, the reason in parentheses."""
    if not text:
        return f"absent: {fact.absent}"
    return f"{text} ({fact.absent})" if fact.absent else text


def render_machine(report: Report) -> list[str]:
    m = report.machine
    c, g, cu, t, o, n, j = m.cpu, m.gpu, m.cuda, m.tensorrt, m.onnxruntime, m.numba, m.jetson
    rows = [
        ("cpu", _absent_or(c, f"{c.model} ({c.arch}), {c.cores} cores ({c.usable_cores} usable); SIMD "
                              f"{' '.join(c.simd) or 'none found'}")),
        ("gpu", _absent_or(g, g.name and f"{g.name}, compute capability {g.compute_capability}, driver "
                                         f"{g.driver or 'unknown'} (from {g.source})")),
        ("cuda", _absent_or(cu, ", ".join(filter(None, [
            cu.runtime and f"runtime {cu.runtime} (cuda-python {cu.cuda_python})",
            cu.driver and f"the driver supports CUDA {cu.driver}"])))),
        ("tensorrt", _absent_or(t, t.version and f"{t.version} ({t.location})")),
        ("dla", _absent_or(m.dla, "" if m.dla.cores is None else f"{m.dla.cores} cores")),
        ("onnxruntime", _absent_or(o, o.version and f"{o.version} ({o.device}): {', '.join(o.providers)}")),
        ("numba", _absent_or(n, n.version and f"{n.version}, {n.threads} threads; CUDA: "
                                              f"{n.cuda_device or 'absent: ' + str(n.cuda_absent)}")),
        ("jetson", _absent_or(j, "" if j.absent else f"{j.model}, L4T {j.l4t}, power mode {j.power_mode}")),
        ("python", f"{m.python} ({m.prefix}), numpy {m.numpy}, dagh {m.dagh}; {m.platform}"),
    ]
    return ["machine"] + [f"  {name:<13}{text}" for name, text in rows]


def _step_line(label: str, step: Step) -> list[str]:
    use = f"{step.precision} on {step.backend}" if step.precision and step.backend else step.backend
    if step.stage == "manifest":
        use = "verified" if step.ok else "refused"
    text = ": ".join(filter(None, [use, step.detail]))
    lines = [f"  {label:<13}{'ok' if step.ok else 'CANNOT':<8}{text}"]
    return lines + [" " * 23 + f"- {problem}" for problem in step.problems]


def render(report: Report) -> str:
    """The report as a table for people (--json writes the same facts for machines)."""
    lines = render_machine(report)
    plan = report.plan
    if plan is not None:
        lines += ["", f"plan for {plan.export_dir} (--precision {plan.precision} --backend {plan.backend} "
                      f"--search {plan.search} --detector {plan.detector})"]
        for step in plan.steps:
            lines += _step_line(step.stage, step)
        for step in plan.others:
            lines += _step_line("other", step)
        if plan.others:
            lines.append(" " * 23 + "(other: the export's other precisions, --backend auto; no verdict)")
        lines += ["", "runs here as asked" if report.ok else "cannot run here as asked (exit 2)"]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("export_dir", required=False, type=click.Path(file_okay=False))
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="The encoder precision to check (the runtime's default is fp32).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Encoder backend, as Encoder.open: auto takes the precision's TensorRT engine where "
                   "tensorrt imports, else onnxruntime.")
@click.option("--search", type=click.Choice(SEARCH_CHOICES), default="cpu", show_default=True,
              help="Gallery index backend (HammingIndex; the runtime's default is cpu). auto: gpu, else cpu, "
                   "else numpy.")
@click.option("--detector", type=click.Choice(sorted(DETECTORS)), default="retinaface", show_default=True,
              help="Face detector, as Recognizer.open.")
@click.option("--dla-core", type=int, default=None,
              help="Check the export's DLA engine for this core (dagh-engine --dla-core) instead of the GPU one.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as JSON here (written atomically, also when exiting 2).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=PROBE_TIMEOUT_S,
              show_default=True, help="Seconds a probe (an import, a command) may take before it counts as "
                                      "absent.")
@click.pass_context
@handle_errors
def main(ctx, export_dir, precision, backend, search, detector, dla_core, json_path, timeout_s):
    """Say what this machine can run, and how EXPORT_DIR would run on it.

    Without EXPORT_DIR: the machine report (CPU, SIMD flags, GPU and compute
    capability, driver, CUDA, TensorRT, DLA cores, onnxruntime providers,
    numba and numba CUDA, Jetson model and power mode); anything not found is
    "absent: <why>". Exit 0.

    With EXPORT_DIR: also the plan, by the runtime's own rules: the manifest's
    sha256 check, and the precision and backend that encode, detect and search
    would use. Exit 2 ("error: ..." names every reason) when the export cannot
    run here as asked: a file changed since export, no engine or ONNX model of
    that precision, an engine of another TensorRT version or GPU, tensorrt,
    cuda-python or onnxruntime missing, no usable CUDA GPU for --search gpu.
    Nothing is encoded, and no engine is loaded.

    \b
    Example:
      dagh-doctor                                          # this machine
      dagh-doctor runs/demo/export                         # fp32, backend auto, search cpu
      dagh-doctor runs/demo/export --precision int8 --backend tensorrt --search gpu --json doctor.json
    """
    given = [name for name in PLAN_OPTIONS
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if export_dir is None and given:
        raise click.UsageError(f"--{given[0]} checks an export: give EXPORT_DIR")
    from dagh.runtime.doctor import diagnose

    report = diagnose(export_dir, precision=precision, backend=backend, search=search, detector=detector,
                      dla_core=dla_core, timeout_s=timeout_s)
    click.echo(render(report))
    if json_path:
        from dagh.fileio import atomic_write_text

        atomic_write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
        echo_err(f"wrote {json_path}")
    report.check()


if __name__ == "__main__":
    main()
