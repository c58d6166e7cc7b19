"""The training loop: one model on one prepared dataset, counted in kimg.

Everything random in a step (latents, noise, dropout, style-mixing choices) is drawn
after reseeding from (seed, rank, images seen), and the data order is a per-epoch
permutation of the seed, so a run stopped anywhere and resumed from its state continues
exactly as if it had never stopped (EDM2's practice). Snapshots are written exactly at
each kimg of the config: the batch before a snapshot is shortened to land on it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ganrepro import devices, models
from ganrepro.data.loader import ImageDataset
from ganrepro.data.store import read_manifest
from ganrepro.errors import GanreproError
from ganrepro.models.stylegan2 import mix_styles
from ganrepro.progress import tick_line
from ganrepro.settings import presets
from ganrepro.settings.batch import check_batch
from ganrepro.settings.registry import has_attention
from ganrepro.settings.run import effective_run
from ganrepro.training import distributed, losses
from ganrepro.training.grids import grid_latents, save_attention_figure, save_grid
from ganrepro.training.run_files import RunFiles, continuity, continuity_changes, environment
from ganrepro.training.state import ResumeError, load_latest_state, save_state, set_rng_states, state_path

log = logging.getLogger(__name__)
# Options that change how a run is carried out, not what it computes: they may differ on resume.
OPERATIONAL = {"tick_kimg", "state_kimg", "num_workers", "compile", "device", "grid", "segments"}


class TrainingError(GanreproError):
    """Training cannot go on (a NaN loss, a stop signal); the message says what was kept."""


def run_options(cfg: dict, dataset_dir: Path, model: str, seed: int) -> dict[str, Any]:
    """What a run computes: the dataset's effective recipe and hyper-parameters (the top
    level, the dataset's preset and its own overrides), the data and the seed."""
    manifest = read_manifest(dataset_dir)
    run = effective_run(cfg, manifest.name, model, resolution=manifest.resolution, channels=manifest.channels)
    return {
        "model": model, "hparams": run.hparams,
        "dataset": {"name": manifest.name, "path": str(dataset_dir), "images": manifest.count,
                    "resolution": manifest.resolution, "images_sha256": manifest.images_sha256},
        "seed": seed, "kimg": run.kimg, "train": run.train,
        "preset": run.preset,
    }


def essential_options(options: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the saved one (the kimg list may grow)."""
    out = {k: v for k, v in options.items() if k not in ("kimg", "resolved")}
    out["dataset"] = {k: v for k, v in options["dataset"].items() if k != "path"}
    out["train"] = {k: v for k, v in options["train"].items() if k not in OPERATIONAL}
    return out


def options_hash(options: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(essential_options(options), sort_keys=True).encode()).hexdigest()[:16]


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _ignore_stop_signals(_worker_id: int) -> None:
    # A data-loader worker: the main process decides when to stop (after saving the state)
    # and ends the workers itself; a worker killed by the signal would abort the step.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _step_seed(seed: int, rank: int, nimg: int) -> int:
    return int(np.random.SeedSequence([seed, rank, nimg]).generate_state(1, np.uint64)[0] % (2 ** 63))


class BatchPlan(torch.utils.data.Sampler):
    """Index lists of the remaining steps for one rank: seed-fixed epoch permutations,
    global batches split over ranks, shortened to land exactly on each snapshot."""

    def __init__(self, n: int, seed: int, start: int, targets: list[int], batch: int, rank: int, world: int):
        self.n, self.seed, self.start, self.targets = n, seed, start, targets
        self.batch, self.rank, self.world = batch, rank, world

    def sizes(self):
        nimg = self.start
        for target in self.targets:
            while nimg < target:
                size = min(self.batch, target - nimg)
                yield nimg, size
                nimg += size

    def __iter__(self):
        epoch, perm = -1, None
        for nimg, size in self.sizes():
            per_rank = size // self.world
            lo = nimg + self.rank * per_rank
            out = []
            for p in range(lo, lo + per_rank):
                if p // self.n != epoch:
                    epoch = p // self.n
                    perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
                out.append(int(perm[p % self.n]))
            yield out

    def __len__(self):
        return sum(1 for _ in self.sizes())


def _adam(params, lr: float, betas, eps: float, interval: int | None):
    # Lazy regularization (StyleGAN2 appendix B): rescale lr and betas by interval/(interval+1).
    ratio = interval / (interval + 1) if interval else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas), eps=eps)


class Trainer:
    """One model trained on one prepared dataset by one process of a (possibly distributed)
    run. `run()` trains to the config's last kimg, resuming from the run's state; `step()`
    is one training step of it. `accumulators()`, `fixed_batch()` and `timing_step()` let
    the throughput stage time single steps without running the loop.

    Public state: `options` (what the run computes) and `t` (its train settings), `device`,
    the networks `G`, `D` and `G_ema`, `dataset`, and the counters `nimg` and `steps`."""

    def __init__(self, cfg: dict, dataset_dir: Path, model: str, out: Path, dist: distributed.Context,
                 seed: int | None = None, restart: bool = False):
        seed = cfg["seeds"][0] if seed is None else seed
        self.options = run_options(cfg, dataset_dir, model, seed)
        self.hash = options_hash(self.options)
        self.t = t = self.options["train"]
        self.dist, self.model, self.seed = dist, model, seed
        self.device = devices.resolve(t["device"], "train.device")   # a GPU no other job has claimed
        self.files = RunFiles(Path(out))
        self.targets = [k * 1000 for k in cfg["kimg"]]
        self._check_batch(0)
        bf16 = t["precision"] == "bf16" or (t["precision"] == "auto" and self.device.type == "cuda"
                                             and torch.cuda.is_bf16_supported())
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
        self.options["resolved"] = {"device": str(self.device), "precision": "bf16" if bf16 else "fp32",
                                    "processes": dist.world}
        # TF32 matmuls only where lower precision was asked for: the official recipe is fp32.
        tf32 = self.device.type == "cuda" and t["precision"] != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        self.options["resolved"]["tf32"] = tf32
        self.fmt = torch.channels_last if t["channels_last"] else torch.contiguous_format

        torch.manual_seed(self.seed)                                   # initial weights
        net = models.build(model, **self.options["hparams"])
        self.G = net.G.to(self.device, memory_format=self.fmt)
        self.D = net.D.to(self.device, memory_format=self.fmt)
        # Recorded in training_options.json, so the report never has to load a snapshot.
        self.options["resolved"]["parameters"] = {"G": models.count_parameters(self.G),
                                                  "D": models.count_parameters(self.D)}
        # Every setting that differs from the official code's for this model and dataset.
        self.options["resolved"]["departures"] = presets.departures(
            model, self.options["preset"], self.options["hparams"], t, self.options["resolved"]["precision"])
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        pl = t["pl_weight"] > 0
        if pl and not hasattr(self.G, "synthesize"):
            raise GanreproError(f"train.pl_weight > 0 needs a style-based generator; {model} has none")
        # G's Adam has the lazy-regularization scaling even with path length off, as in the
        # official code (its G reg interval is always 4): lr * 4/5, beta2 ** (4/5) by default.
        self.opt_G = _adam(self.G.parameters(), t["g_lr"], t["betas"], t["eps"], t["pl_interval"])
        self.opt_D = _adam(self.D.parameters(), t["d_lr"], t["betas"], t["eps"],
                           t["r1_interval"] if t["r1_gamma"] > 0 else None)
        # Compiled callables for the main passes; the regularizers' double backward stays eager.
        compile_ = torch.compile if t["compile"] else (lambda f: f)
        self.G_run = compile_(self.G)
        self.synthesize = compile_(self.G.synthesize) if hasattr(self.G, "synthesize") else None
        self.D_run = compile_(self.D)
        self.dataset = ImageDataset(dataset_dir, xflip=t["xflip"])
        self.nimg, self.steps = 0, 0
        self.pl_mean = torch.zeros([], device=self.device)
        self.z_grid = grid_latents(self.G, t["grid"], self.seed)
        self.stop_signal: int | None = None
        self.restart = restart
        self.continuity_changes: list[str] | None = None     # set by a resume

    def _check_batch(self, start: int) -> None:
        # Only now is the number of processes known; a resumed run may have another one.
        check_batch(self.t["batch_size"], [n // 1000 for n in self.targets],
                    {self.model: self.options["hparams"]["mbstd_group"]}, self.dist.world, start)

    # -- state -------------------------------------------------------------------------
    def _state_problem(self, payload: dict) -> str | None:
        """Why a state (checksum and structure fine) does not fit these networks, or None."""
        for name in ("G", "D", "G_ema"):
            ours, theirs = getattr(self, name).state_dict(), payload[name]
            if set(ours) != set(theirs):
                return f"its {name} has other parameters than {self.model}'s"
            for key, value in ours.items():
                if not isinstance(theirs[key], torch.Tensor) or theirs[key].shape != value.shape:
                    return f"its {name}.{key} does not have the shape {tuple(value.shape)}"
        return None

    def resume(self) -> bool:
        payload = load_latest_state(self.files.state, self.hash, essential_options(self.options),
                                    check=self._state_problem)
        if payload is None:
            return False
        try:
            for name in ("G", "D", "G_ema"):
                getattr(self, name).load_state_dict(payload[name])
            self.opt_G.load_state_dict(payload["opt_G"])
            self.opt_D.load_state_dict(payload["opt_D"])
            self.nimg, self.steps = payload["nimg"], payload["steps"]
            self.pl_mean = payload["pl_mean"].to(self.device)
            set_rng_states(payload["rng"])
        except Exception as err:    # a state whose checksum and options match, but whose content does not fit
            raise ResumeError(f"{state_path(self.files.state, payload['nimg'])}: the state cannot be restored "
                              f"({type(err).__name__}: {str(err).strip()[:200]}); restore a valid state, "
                              f"or train with --restart to start over") from None
        # The thread count and the versions: a resume under other ones is valid, not bitwise.
        self.continuity_changes = continuity_changes(payload.get("continuity"), continuity())
        if self.continuity_changes and self.dist.rank == 0:
            log.warning("the state was saved under another thread count or software (%s): bitwise "
                        "continuation of an uninterrupted run is lost; the run goes on validly",
                        "; ".join(self.continuity_changes))
        return True

    def _restart(self) -> None:
        """--restart: the old run's states, snapshots, pictures and stats go; kimg 0 again."""
        if self.dist.rank == 0:
            gone = self.files.discard()
            log.warning("--restart: removed %d training states and %d snapshots of %s; starting over from kimg 0",
                        gone["states"], gone["snapshots"], self.files.out)
        self.dist.barrier()

    def save_state(self) -> None:
        if self.dist.rank == 0:
            path = save_state(self.files.state, self.nimg, {
                "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "steps": self.steps, "pl_mean": self.pl_mean.cpu(),
                "options_hash": self.hash, "options": essential_options(self.options),
                "continuity": continuity()})
            log.info("kimg %.3f: training state saved to %s", self.nimg / 1000, path)
        self.dist.barrier()

    def write_snapshot(self) -> None:
        if self.dist.rank == 0:
            kimg = self.nimg // 1000
            models.save_snapshot(self.files.kept_snapshot(kimg), self.G_ema, self.model,
                                 self.options["hparams"], kimg, self.hash)
            self.files.publish(kimg, self.draw)
        self.dist.barrier()

    def draw(self, G, kimg: int) -> None:
        G = G.to(self.device)
        save_grid(G, self.z_grid, self.files.grid(kimg), self.t["grid"], self.device)
        if has_attention(self.model):
            save_attention_figure(G, self.z_grid, self.files.attention(kimg), self.device)

    # -- one step ----------------------------------------------------------------------
    def accumulators(self) -> dict[str, torch.Tensor]:
        """Zeroed sums that `step` adds a step's losses and regularizer values to."""
        return {k: torch.zeros([], device=self.device) for k in ("loss_G", "loss_D", "r1", "r1_n", "pl", "pl_n")}

    def fixed_batch(self, n: int) -> torch.Tensor:
        """The dataset's first `n` images as the loader yields them (uint8 NCHW, not flipped):
        one batch to time steps on."""
        return torch.from_numpy(np.asarray(self.dataset.images[:n]).copy())

    def timing_step(self, reals: torch.Tensor, size: int, acc: dict, regularize: bool) -> None:
        """One training step on `reals` (counted as `size` images) outside the run's schedule,
        for timing it: with `regularize`, a step on which the lazy regularizers (R1, path
        length) are due; without, one on which they are not (where their interval is above 1).
        It updates the networks and counters as `step` does, so a Trainer that has taken one
        is for measurement only."""
        self.steps = 0 if regularize else 1
        self.step(reals, size, acc)

    def _draws(self, n: int):
        """A G pass's random latents: z; with style mixing on, a partner z2 and the first
        layer it takes over, or None when this pass does not mix (probability 1 - p)."""
        z = torch.randn(n, *self.G.z_shape, device=self.device)
        if self.synthesize is None or self.t["style_mixing"] == 0:
            return z, None, None
        mix = torch.rand([]).item() < self.t["style_mixing"]
        cut = int(torch.randint(1, self.G.num_ws, []).item()) if mix else None
        return z, torch.randn_like(z), cut

    def _fake(self, n: int):
        z, z2, cut = self._draws(n)
        if self.synthesize is None:
            return self.G_run(z), None, None
        ws, ys = self.G.map(z)
        if z2 is not None:
            # As the official code, the partner is mapped on every pass and counts towards
            # w_avg (its skip_w_avg_update flag never reaches the mapping network).
            ws2, _ = self.G.map(z2)
            if cut is not None:
                ws = mix_styles(ws, ws2, cut)
        return self.synthesize(ws, ys), ws, ys

    def step(self, reals: torch.Tensor, size: int, acc: dict) -> None:
        t, kind = self.t, self.t["loss"]
        torch.manual_seed(_step_seed(self.seed, self.dist.rank, self.nimg))
        reals = reals.to(self.device, non_blocking=True).to(torch.float32).div(127.5).sub(1)
        reals = reals.contiguous(memory_format=self.fmt)
        n = reals.shape[0]
        # G: main loss, then lazy path-length regularization.
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with self.autocast():
            fake, _, _ = self._fake(n)
            loss_G = losses.g_loss(kind, self.D_run(fake).float())
        self._update(self.opt_G, self.G, loss_G)
        acc["loss_G"] += loss_G.detach()
        if t["pl_weight"] > 0 and self.steps % t["pl_interval"] == 0:
            ws, ys = self.G.map(torch.randn(max(1, n // 2), *self.G.z_shape, device=self.device))
            ws = ws.detach().requires_grad_(True)
            penalty, self.pl_mean = losses.path_length_penalty(self.G, ws, ys, self.pl_mean)
            self._update(self.opt_G, self.G, penalty * t["pl_weight"] * t["pl_interval"])
            acc["pl"] += penalty.detach()
            acc["pl_n"] += 1
        # D: main loss (+ gradient penalty for wgan-gp), then lazy R1.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake, _, _ = self._fake(n)
            loss_D = losses.d_loss(kind, self.D_run(reals).float(), self.D_run(fake).float())
            if kind == "wgan-gp":
                loss_D = loss_D + t["gp_weight"] * losses.gradient_penalty(self.D, reals, fake)
        self._update(self.opt_D, self.D, loss_D)
        acc["loss_D"] += loss_D.detach()
        if t["r1_gamma"] > 0 and self.steps % t["r1_interval"] == 0:
            with self.autocast():
                r1 = losses.r1_penalty(self.D, reals).float()
            self._update(self.opt_D, self.D, r1 * (t["r1_gamma"] / 2) * t["r1_interval"])
            acc["r1"] += r1.detach()
            acc["r1_n"] += 1
        self.nimg += size
        self.steps += 1
        self._ema(size)

    def _update(self, opt, module, loss) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(module)
        opt.step()

    @torch.no_grad()
    def _ema(self, size: int) -> None:
        ema_nimg = self.t["ema_kimg"] * 1000
        if self.t["ema_rampup"] is not None:
            ema_nimg = min(ema_nimg, self.nimg * self.t["ema_rampup"])
        beta = 0.5 ** (size / ema_nimg) if ema_nimg > 0 else 0.0      # half-life in images
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- the run -----------------------------------------------------------------------
    def _check_finite(self, acc: dict) -> None:
        bad = [k for k, v in acc.items() if not torch.isfinite(v).all()]
        if bad:
            kept = self.files.last_snapshot()
            raise TrainingError(
                f"{self.model} on {self.options['dataset']['name']}: {', '.join(bad)} became "
                f"NaN/inf before kimg {self.nimg / 1000:.3f}; stopped. Kept: the last good "
                f"snapshot ({kept or 'none yet'}) and training state in {self.files.state}")

    def run(self) -> None:
        # The stop signals (SLURM's SIGTERM at walltime or scancel, Ctrl-C's SIGINT) only set
        # a flag: the step finishes and the state is saved before the run stops. The data
        # workers ignore them (SLURM signals every process of the job), so no batch is lost.
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            with logging_redirect_tqdm():         # log lines above the bar on a terminal
                self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> None:
        if self.restart:
            self._restart()
        resumed = not self.restart and self.resume()
        if resumed:
            self._check_batch(self.nimg)
        if self.dist.rank == 0:
            self.files.write_options({**self.options, "options_hash": self.hash,
                                      "resumed_from_kimg": self.nimg / 1000 if resumed else None,
                                      "restarted": self.restart,
                                      "continuity_changes_on_resume": self.continuity_changes,
                                      **environment()})
            self.files.trim_stats(self.nimg)
            self.files.publish_kept(self.nimg, self.draw)
        # kimg 0 (the initial weights). Decided from the run's own state, not the file system,
        # so every rank takes the same branch (a rank-0 write must not change another's mind).
        if not resumed and self.targets[0] == 0:
            self.write_snapshot()
            self.save_state()
        plan = BatchPlan(len(self.dataset), self.seed, self.nimg, self.targets, self.t["batch_size"],
                         self.dist.rank, self.dist.world)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=plan, num_workers=self.t["num_workers"],
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            worker_init_fn=_ignore_stop_signals)
        acc = self.accumulators()
        tick = {"nimg": self.nimg, "time": time.perf_counter(), "steps": 0}
        tick_n, state_n = self.t["tick_kimg"] * 1000, self.t["state_kimg"] * 1000
        agreement = distributed.StopAgreement(self.dist, self.device)
        bar = tqdm(total=self.targets[-1] / 1000, initial=self.nimg / 1000, unit="kimg",
                   desc=f"{self.model}", disable=None if self.dist.rank == 0 else True,
                   bar_format="{l_bar}{bar}| {n:.3f}/{total:.0f} kimg [{elapsed}<{remaining}]")
        try:
            for batch, (_, size) in zip(loader, plan.sizes()):
                before = self.nimg
                self.step(batch, size, acc)
                tick["steps"] += 1
                bar.update(size / 1000)
                crossed = lambda every: every and self.nimg // every > before // every  # noqa: E731
                at_target = self.nimg in self.targets
                stopping = agreement.stop_now(self.stop_signal is not None)   # the same on every rank
                if at_target or crossed(tick_n) or crossed(state_n) or stopping:
                    self._check_finite(acc)
                if crossed(tick_n) or at_target:
                    self._log_tick(acc, tick)
                if at_target:
                    self.write_snapshot()
                if at_target or crossed(state_n) or stopping:
                    self.save_state()
                if stopping:
                    why = (f"signal {self.stop_signal}" if self.stop_signal is not None
                           else "a stop signal to another process")
                    raise TrainingError(
                        f"stopped by {why} at kimg {self.nimg / 1000:.3f}; the state is saved in "
                        f"{self.files.state}: run the same command again to resume")
        finally:
            agreement.close()
            bar.close()

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.stop_signal == signal.SIGINT:
            signal.default_int_handler(signum, frame)     # a second Ctrl-C: stop at once
        self.stop_signal = signum            # finish the step, save the state, then stop

    def _log_tick(self, acc: dict, tick: dict) -> None:
        v = {k: float(x) for k, x in acc.items()}                      # the tick's one host sync
        for x in acc.values():
            x.zero_()
        steps = max(tick["steps"], 1)
        seconds = time.perf_counter() - tick["time"]
        images = self.nimg - tick["nimg"]
        peak = devices.peak_memory_mb(self.device, reset=True)
        record = {"kimg": self.nimg / 1000, "loss_G": v["loss_G"] / steps, "loss_D": v["loss_D"] / steps,
                  "r1": v["r1"] / v["r1_n"] if v["r1_n"] else None,
                  "pl": v["pl"] / v["pl_n"] if v["pl_n"] else None,
                  "sec_per_kimg": seconds / (images / 1000) if images else None,
                  "img_per_sec": images / seconds if seconds else None, "peak_mem_mb": round(peak, 1),
                  "lr_G": self.opt_G.param_groups[0]["lr"], "lr_D": self.opt_D.param_groups[0]["lr"],
                  "time": round(time.time(), 3)}
        if self.dist.rank == 0:
            self.files.append_stats(record)
            log.info("%s", tick_line(self.model, record, self.targets[-1] / 1000))
        tick.update(nimg=self.nimg, time=time.perf_counter(), steps=0)


def train(cfg: dict, dataset_dir: str | Path, model: str, out: str | Path, seed: int | None = None,
          restart: bool = False) -> None:
    """Train `model` with training seed `seed` (default: the config's first) on the prepared
    dataset in `dataset_dir`, writing the run to `out`; resume from its state if it has one,
    unless `restart` (which removes the old run's states and snapshots first)."""
    with distributed.context() as dist:
        trainer = Trainer(cfg, Path(dataset_dir), model, Path(out), dist, seed, restart)
        trainer.run()
        log.info("%s: done at kimg %.3f; snapshots in %s", model, trainer.nimg / 1000, out)


def dry_run(cfg: dict, dataset_dir: str | Path, model: str, seed: int | None = None) -> dict[str, Any]:
    options = run_options(cfg, Path(dataset_dir), model, cfg["seeds"][0] if seed is None else seed)
    return {**options, "options_hash": options_hash(options)}


