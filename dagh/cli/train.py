"""dagh-train: train a DAGH (or DDH baseline) hashing network."""

from __future__ import annotations

import json

import click

from dagh.cli._common import echo_err, handle_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", default="synthetic", show_default=True,
              help="'synthetic' (built-in seeded faces), an image folder root/<identity>/*.jpg, "
                   "or a folder of DDH YouTube Faces / FaceScrub pickles.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint file to write (rewritten atomically after every epoch).")
@click.option("--model", "model_name", default="dagh", show_default=True,
              help="Registered network: 'dagh' or the 'ddh' baseline.")
@click.option("--bits", default=48, show_default=True, type=int, help="Code length, 8 to 256.")
@click.option("--input-size", default=32, show_default=True, type=click.Choice(["32", "64", "112"]),
              help="Face crop size in pixels.")
@click.option("--epochs", default=8, show_default=True, type=int)
@click.option("--batch-size", default=128, show_default=True, type=int)
@click.option("--lr", default=2e-3, show_default=True, type=float, help="Peak AdamW learning rate.")
@click.option("--schedule", default="cosine", show_default=True, type=click.Choice(["cosine", "constant"]))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for weights, batches, augmentation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0, 1024),
              help="CPU threads for torch (0: one per core). The same seed and thread count on the same "
                   "kind of CPU train bit-identical weights; another thread count trains others.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue training from this checkpoint (same model options).")
@click.option("--input-attention/--no-input-attention", default=None,
              help="Spatial attention mask over the input (ablation switch).")
@click.option("--channel-attention/--no-channel-attention", default=None,
              help="Squeeze-excitation after every stage (ablation switch).")
@click.option("--spatial-attention/--no-spatial-attention", default=None,
              help="Spatial attention after every stage (ablation switch).")
@click.option("--no-attention", is_flag=True, help="Switch off all three attention parts.")
@click.option("--hash-activation", type=click.Choice(["sign", "tanh"]), default=None,
              help="'sign': discrete layer with straight-through gradient; 'tanh': relaxation.")
@click.option("--center-weight", type=float, default=None, help="Weight of the center (compactness) term.")
@click.option("--quant-weight", type=float, default=None, help="Weight of the quantization penalty.")
@click.option("--margin", type=float, default=None, help="Additive cosine margin m.")
@click.option("--scale", type=float, default=None, help="Logit scale s.")
@click.option("--identities", default=100, show_default=True, type=int, help="Synthetic data: identities.")
@click.option("--train-per-identity", default=40, show_default=True, type=int,
              help="Synthetic data: database images per identity.")
@click.option("--test-per-identity", default=10, show_default=True, type=int,
              help="Synthetic data: query images per identity.")
@click.option("--data-seed", default=0, show_default=True, type=int,
              help="Seed of the synthetic faces and of the train/test split of folders.")
@click.option("--test-fraction", default=0.2, show_default=True, type=float,
              help="Folder/pickle data: share of each identity held out as queries.")
@click.option("--bad-images", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="Unreadable image files: refuse the dataset, or skip them and report the count.")
@click.option("--min-images", default=0, type=int,
              help="Drop identities with fewer images than this (default: refuse identities with < 2).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the final retrieval report as JSON here.")
@click.option("--no-eval", is_flag=True, help="Skip the retrieval evaluation after training.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@handle_errors
def main(data, output, model_name, bits, input_size, epochs, batch_size, lr, schedule, seed, device, threads,
         resume, input_attention, channel_attention, spatial_attention, no_attention, hash_activation,
         center_weight, quant_weight, margin, scale, identities, train_per_identity,
         test_per_identity, data_seed, test_fraction, bad_images, min_images, json_path, no_eval,
         quiet):
    """Train a face-hashing network and write a checkpoint.

    \b
    Examples:
      dagh-train -o runs/dagh48.pt                       # 48-bit DAGH on synthetic faces
      dagh-train --bits 12 --no-attention -o runs/a.pt   # ablation: no attention
      dagh-train --data faces/ --bad-images skip -o runs/faces.pt

    The checkpoint holds the weights and the full model, preprocessing, loss and
    data configs, so dagh-eval and dagh-export need nothing else.
    """
    from dagh.data import DataSource
    from dagh.model import model_config
    from dagh.train.config import TrainConfig
    from dagh.train.loop import train
    from dagh.train.losses import default_loss_config

    overrides = {"bits": bits, "input_size": int(input_size)}
    for key, value in (("input_attention", input_attention), ("channel_attention", channel_attention),
                       ("spatial_attention", spatial_attention), ("hash_activation", hash_activation)):
        if value is not None:
            overrides[key] = value
    if no_attention:
        overrides.update(input_attention=False, channel_attention=False, spatial_attention=False)
    mc = model_config(model_name, **overrides)
    loss_overrides = {k: v for k, v in (("center_weight", center_weight), ("quant_weight", quant_weight),
                                        ("margin", margin), ("scale", scale)) if v is not None}
    lc = default_loss_config(model_name, **loss_overrides)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule, seed=seed, device=device,
                     threads=threads)
    source = DataSource.parse(data, size=int(input_size), seed=data_seed, identities=identities,
                              train_per_identity=train_per_identity, test_per_identity=test_per_identity,
                              test_fraction=test_fraction, bad_images=bad_images, min_images=min_images)
    echo_err(f"training {mc.name} {mc.bits}-bit on {source.describe()}")
    result = train(mc, lc, tc, source, output, resume=resume, progress=not quiet,
                   evaluate=not no_eval, log=echo_err)
    if result.report is not None:
        r = result.report
        pk = ", ".join(f"P@{k} {v:.4f}" for k, v in r.precision_at_k.items())
        click.echo(f"mAP {r.map:.4f} ({mc.bits} bits, {r.queries} queries vs {r.database} database); "
                   f"{pk}; radius-{r.radius} P {r.precision_at_radius:.4f} R {r.recall_at_radius:.4f}")
        if json_path:
            from dagh.fileio import atomic_write_text

            atomic_write_text(json_path, json.dumps({"checkpoint": str(output), **r.to_dict(),
                                                     "provenance": result.provenance}, indent=2))
    click.echo(f"checkpoint: {result.checkpoint}")


if __name__ == "__main__":
    main()
