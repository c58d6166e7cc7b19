"""Hostile and damaged training states, through the real `ganrepro train` command line.

A state is trusted only when its sha256 sidecar matches: a flipped bit, a cut-off file, a
missing or garbled checksum, a forged pickle or a state that does not fit the networks
makes it invalid. An invalid newest state falls back to the previous valid one (a warning
names both) and the run ends exactly as an uninterrupted one; when no state is valid the
run stops with one `Error:` line and touches nothing; `--restart` starts over on purpose.
A resume under another thread count or other software versions warns that bitwise
continuation is lost, and keeps the options hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import prepare_shapes
from hostile import assert_refused, run_bounded

# A run small enough for seconds: 8 px images, batch 8, a state every 0.25 kimg, to kimg 1.
HPARAMS = {"stylegan2": {"mapping_layers": 2, "channel_base": 64, "channel_max": 16, "z_dim": 16, "w_dim": 16}}
TRAIN = {"batch_size": 8, "tick_kimg": 0.5, "state_kimg": 0.25, "grid": 2, "num_workers": 0, "r1_interval": 4}
GIB = 2.0       # the bound for a tiny training run (a refusal stays far below it)


def write_config(folder: Path, **train) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"toy": {"source": "shapes", "resolution": 8}}, "kimg": [0, 1],
                                    "hparams": HPARAMS, "train": {**TRAIN, **train}}))
    return path


def train(cfg: Path, toy: Path, run: Path, *extra: str, env: dict | None = None):
    return run_bounded(["train", "--config", cfg, "--dataset", "toy", "--model", "stylegan2", "--data", toy,
                        "--out", run, *extra], cwd=run.parent, env=env, extra_gib=GIB)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(run: Path) -> dict[str, str]:
    """Every file of a run folder and its sha256."""
    return {str(p.relative_to(run)): sha256(p) for p in sorted(run.rglob("*")) if p.is_file()}


def outputs(run: Path) -> dict[str, str]:
    """The snapshots and grids: what must be bitwise those of an uninterrupted run."""
    return {p.name: sha256(p) for p in sorted([*run.glob("snapshot-*.pt"), *run.glob("grid-*.png")])}


def states(run: Path) -> list[Path]:
    return sorted((run / "state").glob("training-state-*.pt"))


def sidecar(state: Path) -> Path:
    return state.with_name(state.name + ".sha256")


def seal(state: Path) -> None:
    """Give `state` a matching checksum, as a forger who knows the format would."""
    sidecar(state).write_text(f"{sha256(state)}  {state.name}\n")


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("WARNING")]


def assert_ok(result) -> None:
    context = f"rc={result.rc}\n{result.stderr[-3000:]}"
    assert result.rc == 0 and "Traceback" not in result.stderr and not result.error_lines, context


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return prepare_shapes(tmp_path_factory.mktemp("data") / "toy", 8, 200)


@pytest.fixture(scope="module")
def straight(toy, tmp_path_factory) -> Path:
    """An uninterrupted run to kimg 1: states at 504, 752 and 1000 images kept."""
    folder = tmp_path_factory.mktemp("straight")
    result = train(write_config(folder), toy, folder / "run")
    assert_ok(result)
    assert [p.name for p in states(folder / "run")] == [f"training-state-{n:010d}.pt" for n in (504, 752, 1000)]
    return folder / "run"


@pytest.fixture
def cut(straight, tmp_path) -> Path:
    """The straight run as a kill right after its state at 752 images leaves it: no state,
    snapshot or grid of kimg 1 (Snakemake deletes the failed job's outputs)."""
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    newest = states(run)[-1]
    newest.unlink()
    sidecar(newest).unlink()
    for path in (run / "snapshot-000001.pt", run / "state/snapshots/snapshot-000001.pt", run / "grid-000001.png"):
        path.unlink()
    write_config(tmp_path)
    return run


@pytest.fixture
def whole(straight, tmp_path) -> Path:
    """A copy of the finished straight run."""
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    write_config(tmp_path)
    return run


def flip_a_weight_bit(state: Path) -> None:
    """Flip the lowest mantissa bit of one of G's weights in the file: torch still reads it,
    it only computes something slightly different from then on."""
    raw = bytearray(state.read_bytes())
    before = torch.load(state, weights_only=True)
    key = next(k for k, v in before["G"].items() if k.endswith("weight") and v.numel() >= 64)
    needle = before["G"][key].numpy().tobytes()
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) < 0
    raw[at] ^= 1
    state.write_bytes(bytes(raw))
    after = torch.load(state, weights_only=True)          # silent to torch: only the checksum tells
    assert not torch.equal(before["G"][key], after["G"][key])


def truncate(state: Path) -> None:
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])


def drop_checksum(state: Path) -> None:
    sidecar(state).unlink()


def garble_checksum(state: Path) -> None:
    sidecar(state).write_text("0123 not a checksum\n")


class Payload:
    """Pickles to a call of os.system: the marker appears if any loader runs it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def forge_pickle(state: Path) -> None:
    torch.save({"nimg": 752, "G": Payload(state.parent.parent.parent / "PWNED")}, state)
    seal(state)


def reshape_a_weight(state: Path) -> None:
    """A sealed state whose options match but whose G does not fit the network."""
    payload = torch.load(state, weights_only=True)
    key = next(k for k in payload["G"] if k.endswith("weight"))
    payload["G"][key] = torch.zeros(3, 3)
    torch.save(payload, state)
    seal(state)


DAMAGE = {"flipped-bit": (flip_a_weight_bit, r"does not match the sha256 in training-state-0000000752\.pt\.sha256"),
          "truncated": (truncate, r"does not match the sha256"),
          "checksum-missing": (drop_checksum, r"has no checksum file training-state-0000000752\.pt\.sha256, "
                                              r"so it cannot be verified"),
          "checksum-garbled": (garble_checksum, r"is not a sha256 line for training-state-0000000752\.pt"),
          "forged-pickle-sealed": (forge_pickle, r"not a plain-data torch file \(UnpicklingError"),
          "wrong-shape-sealed": (reshape_a_weight, r"its G\.\S+ does not have the shape")}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_invalid_newest_state_falls_back_and_ends_as_an_uninterrupted_run(toy, cut, straight, damage):
    """The newest state (752 images) is damaged: the run warns, naming the damaged file
    and the one it uses (504 images), and its snapshots and grids are bitwise those of the
    uninterrupted run."""
    damaged, previous = states(cut)[-1], states(cut)[-2]
    spoil, why = DAMAGE[damage]
    spoil(damaged)
    result = train(cut.parent / "config.yaml", toy, cut)
    assert_ok(result)
    lines = warnings(result)
    assert any(f"training state {damaged} is unreadable" in line and re.search(why, line) for line in lines), lines
    assert any(f"resuming from {previous} instead of the invalid newer {damaged}" in line for line in lines), lines
    assert f"resuming from {previous} (kimg 0.504)" in result.stderr
    assert outputs(cut) == outputs(straight)
    assert not (cut.parent / "PWNED").exists()
    # The damaged state was written again, with a checksum that holds.
    assert sha256(damaged) == sidecar(damaged).read_text().split()[0]


@pytest.mark.parametrize("damage", ["flipped-bit", "truncated", "checksum-missing", "checksum-garbled",
                                    "forged-pickle-sealed", "wrong-shape-sealed"])
def test_no_valid_state_stops_with_one_error_and_restarts_nothing(toy, whole, straight, damage):
    """Every state is damaged the same way: one Error line, rc 1, no file of the run
    changed (nothing restarted from kimg 0), no payload ran."""
    spoil, why = DAMAGE[damage]
    for state in states(whole):
        spoil(state)
    before = tree(whole)
    result = train(whole.parent / "config.yaml", toy, whole)
    line = assert_refused(result, r"none of its 3 training states is valid \(the newest, training-state-0000001000\.pt: "
                          r".*\); refusing to start over from kimg 0\. .*--restart",
                          markers=(whole.parent / "PWNED",), extra_gib=GIB)
    assert str(whole / "state") in line and re.search(why.replace("0000000752", "0000001000"), line), line
    assert tree(whole) == before


def test_restart_flag_starts_over_from_kimg_0(toy, whole, straight):
    """With every state damaged, --restart removes the old run's states, snapshots and
    stats, and trains from kimg 0 to the same bits as the uninterrupted run."""
    for state in states(whole):
        flip_a_weight_bit(state)
    result = train(whole.parent / "config.yaml", toy, whole, "--restart")
    assert_ok(result)
    assert any("--restart: removed 3 training states and 2 snapshots" in line and "starting over from kimg 0" in line
               for line in warnings(result)), result.stderr
    assert "resuming from" not in result.stderr
    assert outputs(whole) == outputs(straight)
    assert [json.loads(line)["kimg"] for line in (whole / "stats.jsonl").read_text().splitlines()] == [0.504, 1.0]
    options = json.loads((whole / "training_options.json").read_text())
    assert options["restarted"] is True and options["resumed_from_kimg"] is None


def test_state_of_another_config_is_refused_in_one_line(toy, whole, straight):
    cfg = write_config(whole.parent, batch_size=16)
    before = tree(whole)
    assert_refused(train(cfg, toy, whole),
                   r"holds a run made with other options \(train\.batch_size: 8 -> 16\); refusing to resume",
                   extra_gib=GIB)
    assert tree(whole) == before


def test_forged_pickle_without_checksum_is_never_unpickled(toy, whole, straight):
    """A forged newest state with no checksum is refused before it is read; the run
    resumes from the valid state before it."""
    forged = whole / "state" / "training-state-0000009000.pt"
    torch.save(Payload(whole.parent / "PWNED"), forged)
    result = train(whole.parent / "config.yaml", toy, whole)
    assert_ok(result)
    assert not (whole.parent / "PWNED").exists()
    assert any(f"resuming from {states(whole)[-2]} instead of the invalid newer {forged}" in line
               for line in warnings(result)), result.stderr


def test_thread_count_change_warns_once_and_keeps_the_options_hash(toy, cut, straight):
    """Saved under 1 thread, resumed under 2: one warning that bitwise continuation is
    lost; the run completes, and its options hash is that of the straight run."""
    result = train(cut.parent / "config.yaml", toy, cut, env={"OMP_NUM_THREADS": "2"})
    assert_ok(result)
    lines = [line for line in warnings(result) if "bitwise" in line]
    assert len(lines) == 1, result.stderr
    assert "threads 1 -> 2 (OMP_NUM_THREADS 1 -> 2)" in lines[0] and "continuation of an uninterrupted run is lost" in lines[0]
    options = json.loads((cut / "training_options.json").read_text())
    assert options["options_hash"] == json.loads((straight / "training_options.json").read_text())["options_hash"]
    assert options["threads"] == {"torch": 2, "OMP_NUM_THREADS": "2"}
    assert options["continuity_changes_on_resume"] == ["threads 1 -> 2 (OMP_NUM_THREADS 1 -> 2)"]
    assert (cut / "snapshot-000001.pt").exists()


def test_same_threads_and_versions_resume_without_a_warning(toy, cut, straight):
    result = train(cut.parent / "config.yaml", toy, cut)
    assert_ok(result)
    assert not [line for line in warnings(result) if "bitwise" in line], result.stderr
    assert outputs(cut) == outputs(straight)
    assert json.loads((cut / "training_options.json").read_text())["continuity_changes_on_resume"] == []


def test_software_version_change_warns(toy, whole, straight):
    """A state recording another torch version (sealed, so it is valid) resumes with the warning."""
    newest = states(whole)[-1]
    payload = torch.load(newest, weights_only=True)
    assert payload["continuity"]["versions"]["torch"] == torch.__version__
    assert payload["continuity"]["threads"]["torch"] == 1
    payload["continuity"]["versions"]["torch"] = "0.0.1"
    torch.save(payload, newest)
    seal(newest)
    result = train(whole.parent / "config.yaml", toy, whole)
    assert_ok(result)
    lines = [line for line in warnings(result) if "bitwise" in line]
    assert len(lines) == 1 and f"torch 0.0.1 -> {torch.__version__}" in lines[0], result.stderr
