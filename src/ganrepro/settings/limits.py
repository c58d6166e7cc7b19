"""Upper bounds on every integer that sizes memory, disk or time.

Each is far above what a real run uses (the official values are in the comments), so only
a typo or a hostile file reaches one; they keep such a value from validating and then dying
in the allocator, in a seed overflow or in a disk-filling loop. The config schema repeats
the config-side ones (tests/test_hostile_config.py checks that the two agree); the CLI
options use them too. The bounds of the model hyper-parameters are in settings.hparams.
"""

SEED_MAX = 2 ** 32 - 1          # seeds of NumPy's RandomState and StyleGAN's scripts: 32 bits
RESOLUTION_MAX = 1024           # the largest official dataset (FFHQ at 1024 px)
BATCH_MAX = 4096                # official 32; BigGAN's largest batch was 2048
NUM_IMAGES_MAX = 10_000_000     # over 3x LSUN Bedroom (3M images), the largest dataset of the paper
NUM_GEN_MAX = 1_000_000         # 20x fid50k, the largest count any metric of the paper uses
KIMG_MAX = 1_000_000            # 1e9 images: 40x StyleGAN2's 25,000-kimg FFHQ run
KIMG_LIST_MAX = 1000            # snapshots per run (each one is written and evaluated)
REPEATS_MAX = 100               # sampling seeds per checkpoint (official 1; the paper's protocol 3)
WORKERS_MAX = 64                # processes (DataLoader workers, image decoders)
FRAMES_MAX = 10_000             # frames of one `generate --interpolate` walk (5 min at 30 fps)
STEPS_MAX = 100_000             # timed steps or rounds of one benchmark
