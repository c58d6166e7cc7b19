"""`ganrepro generate`: images, style mixing and latent walks from a snapshot."""

from __future__ import annotations

import click

from ganrepro.cli.app import main
from ganrepro.cli.options import PSI, check_writable_parent, writable_folder
from ganrepro.errors import ConfigError
from ganrepro.settings.limits import BATCH_MAX, FRAMES_MAX


DEFAULT_FRAMES = 8             # frames of an --interpolate walk

@main.command("generate")
@click.option("--snapshot", required=True, type=click.Path(dir_okay=False), help="snapshot-KIMG.pt to sample from.")
@click.option("--seeds", metavar="LIST",
              help="Seeds to draw: 0-63, 1,5,9 or 0-3,10. Writes seedNNNN.png for each (its latent drawn "
                   "from that seed alone, so a seed gives the same image in any list) and grid.png of them.")
@click.option("--style-mix", nargs=2, metavar="ROWS COLS",
              help="Seed lists for style-mix.png (StyleGAN's style-mixing figure): cell (r, c) is row seed r's "
                   "image with column seed c's styles in --style-layers; the sources along the top and the left.")
@click.option("--style-layers", metavar="A-B",
              help="Styles (0-based, inclusive; a GANformer layer's local and global latents together) that the "
                   "column seeds replace [default: those of the 4x4 and 8x8 layers, StyleGAN's coarse styles].")
@click.option("--interpolate", nargs=2, metavar="A B",
              help="Walk from seed A to seed B: frameNNNN.png and interpolation.png (16 frames a row). Linear "
                   "in W, between the two seeds' truncated styles, as StyleGAN's gen_video.py walks; the "
                   "dcgan model has no W and walks along the great circle in z (slerp).")
@click.option("--frames", type=click.IntRange(2, FRAMES_MAX),
              help=f"Frames of the walk, both ends included [default: {DEFAULT_FRAMES}].")
@click.option("--trunc", "psi", default=1.0, show_default=True, type=PSI,
              help="Truncation psi: w = w_avg + psi (w - w_avg) with the snapshot's own w_avg; 1 = off, "
                   "0 = the average image.")
@click.option("--noise-mode", default="const", show_default=True, type=click.Choice(["const", "random", "none"]),
              help="Per-pixel noise: const = the stored noise images (as StyleGAN's generate.py), random = "
                   "fresh noise drawn from each image's seed (a style-mix cell: its row's; a frame: its nearer "
                   "end's), none = no noise. The dcgan model has none.")
@click.option("--device", default="auto", show_default=True,
              help="auto (a GPU when there is one), cpu, cuda or cuda:N.")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(1, BATCH_MAX),
              help="Images per forward pass. With 1 an image never depends on what else is drawn; larger "
                   "batches are faster on a GPU but compute in another float order, which can move a pixel "
                   "by one level between different seed lists.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the PNGs (made if missing).")
def generate_command(snapshot, seeds, style_mix, style_layers, interpolate, frames, psi, noise_mode, device,
                     batch_size, out) -> None:
    """Images from a snapshot, as StyleGAN's generate.py and style_mixing.py make them: one PNG
    per seed, a style-mixing grid and a latent walk (any of the three in one call). PNGs
    are written atomically; running again overwrites them."""
    from ganrepro import devices, sampling
    from ganrepro.models import load_snapshot

    if seeds is None and style_mix is None and interpolate is None:
        raise ConfigError("give --seeds, --style-mix or --interpolate (or several of them)")
    if style_layers is not None and style_mix is None:
        raise ConfigError("--style-layers chooses the styles --style-mix swaps; give --style-mix too")
    if frames is not None and interpolate is None:
        raise ConfigError("--frames is the length of an --interpolate walk; give --interpolate too")
    seed_list = sampling.parse_seeds(seeds, "--seeds") if seeds is not None else None
    mix = (sampling.parse_seeds(style_mix[0], "--style-mix ROWS"),
           sampling.parse_seeds(style_mix[1], "--style-mix COLS")) if style_mix is not None else None
    walk = (sampling.parse_seed(interpolate[0], "--interpolate A"),
            sampling.parse_seed(interpolate[1], "--interpolate B")) if interpolate is not None else None
    check_writable_parent(out)
    torch_device = devices.resolve(device)
    G, meta = load_snapshot(snapshot, torch_device)
    sampler = sampling.Sampler(G, torch_device, psi, noise_mode, batch_size)
    if not sampler.styled and psi != 1:
        raise ConfigError(f"--trunc {psi:g}: {snapshot} is a {meta['model']} model, which has no W space and "
                          f"no w_avg to truncate toward; leave --trunc at 1")
    if mix:                                 # every check before the first image is written
        sampling.check_style_mix(sampler, *mix)
    layers = sampling.parse_style_layers(style_layers, G) if mix else None
    out = writable_folder(out)
    lines = []
    if seed_list:
        lines.append(sampling.write_seeds(sampler, seed_list, out))
    if mix:
        lines.append(sampling.write_style_mix(sampler, *mix, layers, out))
    if walk:
        lines.append(sampling.write_interpolation(sampler, *walk, frames or DEFAULT_FRAMES, out))
    for line in lines:
        click.echo(line)
