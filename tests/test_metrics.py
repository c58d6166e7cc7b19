"""Metrics: the formulas on known inputs, the real Inception network end to end, the cache."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cleanfid import fid as cleanfid
from scipy import linalg

from conftest import REPO, ganrepro
from ganrepro import data, models
from ganrepro.settings import config
from ganrepro.errors import MetricsError
from ganrepro.metrics import Options, inception, scores, stats
from ganrepro.protocol import count_suffix
from ganrepro.metrics.features import Featurizer

# ------------------------------------------------------------------ formulas (no network)


def gaussian(rng, n, mean, std):
    return rng.normal(mean, std, size=(n, 16))


def test_fid_of_a_feature_set_against_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 16))
    mu, sigma = scores.mean_cov(feats)
    assert abs(scores.fid(mu, sigma, mu, sigma)) < 1e-6


def test_frechet_distance_equals_the_closed_form_on_known_gaussians():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))                 # a shared eigenbasis: closed form exists
    l1, l2 = rng.uniform(0.5, 3, 6), rng.uniform(0.5, 3, 6)
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert scores.fid(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # and a general (non-commuting) pair against the definition with scipy's sqrtm
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert scores.fid(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n, m", [(300, 400), (20, 25), (40, 500)])
def test_our_fid_routes_equal_clean_fids_frechet_distance(n, m):
    """Full-rank (n, m > d) and low-rank (fewer samples than dimensions) feature sets."""
    rng = np.random.default_rng(n)
    mix = rng.normal(size=(32, 32))
    f1, f2 = rng.normal(size=(n, 32)) @ mix, rng.normal(0.3, 1.2, size=(m, 32)) @ mix
    mu1, s1 = scores.mean_cov(f1)
    mu2, s2 = scores.mean_cov(f2)
    reference = scores.fid_cleanfid(mu1, s1, mu2, s2)
    assert scores.fid(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)
    assert scores.fid_features(f1, mu2, s2, f2) == pytest.approx(reference, rel=1e-6)


def test_kid_is_zero_on_average_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    same = [scores.kid(gaussian(rng, 200, 0, 1), gaussian(rng, 200, 0, 1), seed=s) for s in range(10)]
    different = scores.kid(gaussian(rng, 200, 0, 1), gaussian(rng, 200, 1, 1), seed=0)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert different > 20 * max(abs(np.mean(same)), np.std(same))


def test_kid_is_seeded_and_leaves_numpys_global_generator_alone():
    rng = np.random.default_rng(3)
    a, b = gaussian(rng, 300, 0, 1), gaussian(rng, 300, 0.3, 1)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    assert scores.kid(a, b, seed=5) == scores.kid(a, b, seed=5)
    assert (np.random.get_state()[1] == before).all()


def test_precision_recall_are_one_for_identical_sets_and_fall_to_zero_when_disjoint():
    rng = np.random.default_rng(4)
    real = gaussian(rng, 300, 0, 1)
    assert scores.precision_recall(real, real.copy()) == (1.0, 1.0)
    near = scores.precision_recall(real, gaussian(rng, 300, 0.5, 1))
    far = scores.precision_recall(real, gaussian(rng, 300, 50, 1))
    assert far == (0.0, 0.0)
    assert 0 < near[0] < 1 and 0 < near[1] < 1


def test_precision_recall_see_mode_collapse_as_low_recall():
    rng = np.random.default_rng(5)
    real = gaussian(rng, 400, 0, 1)
    collapsed = gaussian(rng, 400, 0, 0.2)                         # inside the reals, covering little
    precision, recall = scores.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.5


def test_inception_score_on_known_class_probabilities():
    uniform = np.full((100, 10), 0.1)
    assert scores.inception_score(uniform)[0] == pytest.approx(1.0)
    one_hot = np.eye(10)[np.arange(100) % 10] * (1 - 1e-9) + 1e-10  # confident, all classes equally often
    mean, std = scores.inception_score(one_hot)
    assert mean == pytest.approx(10.0, rel=1e-3) and std < 1e-3
    with pytest.raises(MetricsError, match="at least 10 images"):
        scores.inception_score(uniform[:5])


def test_metric_names_carry_their_sample_count():
    assert [count_suffix(n) for n in (10000, 50000, 500, 1000)] == ["10k", "50k", "500", "1k"]


# ------------------------------------------------------------------ the real Inception network


@pytest.fixture(scope="module")
def extractor():
    return inception.load(None, "cpu")


def shapes(tmp_path_factory, name, n, res=32, **extra):
    out = tmp_path_factory.mktemp("data") / name
    spec = config.resolve_dataset(name, {"source": "shapes", "resolution": res, "num_images": n, **extra})
    data.prepare(name, spec, out)
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return shapes(tmp_path_factory, "toy", 24, res=16)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    torch.manual_seed(0)
    nets = models.build("stylegan2", resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=16)
    path = tmp_path_factory.mktemp("run") / "snapshot-000002.pt"
    models.save_snapshot(path, nets.G, nets.name, nets.hparams, kimg=2)
    return path


def test_the_offline_network_is_the_verified_fid_helper_file(extractor):
    assert extractor.path.name == "default_1.pt" and extractor.sha256 == inception.OFFLINE_SHA256
    assert extractor.identity()["logits"] is False
    x = torch.full((2, 3, 299, 299), 128.0)
    assert extractor(x).shape == (2, 2048)


def test_our_features_and_fid_equal_clean_fids_own_on_the_same_images(extractor, toy, tmp_path):
    """Our in-memory route (uint8 arrays -> clean resize -> network) against clean-fid reading
    the same images as PNG files, with our network handed to it as custom extractor."""
    data.export_png(toy, tmp_path / "a", limit=12)
    images = data.store.open_images(toy)
    half = tmp_path / "b"
    half.mkdir()
    for f in sorted((tmp_path / "a").glob("*.png"))[6:]:
        shutil.move(f, half / f.name)
    feats_theirs = cleanfid.get_folder_features(str(tmp_path / "a"), model=extractor, num_workers=0, batch_size=8,
                                                device=torch.device("cpu"), mode="clean", verbose=False)
    featurizer = Featurizer(extractor, "clean")
    ours, _ = featurizer(np.ascontiguousarray(images[:6].transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(ours, feats_theirs, rtol=0, atol=1e-4)
    theirs = cleanfid.compute_fid(str(tmp_path / "a"), str(half), mode="clean", custom_feat_extractor=extractor,
                                  num_workers=0, batch_size=8, device=torch.device("cpu"), verbose=False,
                                  use_dataparallel=False)
    other, _ = featurizer(np.ascontiguousarray(images[6:12].transpose(0, 2, 3, 1)))
    assert scores.fid_features(ours, *scores.mean_cov(other), other) == pytest.approx(theirs, rel=1e-5)


def test_nvidia_and_offline_networks_agree_when_both_are_present(extractor, toy):
    nvidia_dir = next((d for d in (REPO / "resources/inception", Path("/tmp"))   # ours, clean-fid's download
                       if (d / inception.NVIDIA_FILE).is_file()), None)
    if nvidia_dir is None:
        pytest.skip(f"NVIDIA's {inception.NVIDIA_FILE} is not on this machine (no internet); "
                    "the clean-fid comparison above covers the offline route")
    images = np.ascontiguousarray(data.store.open_images(toy)[:8].transpose(0, 2, 3, 1))
    nvidia = inception.load(nvidia_dir, "cpu")
    a, _ = Featurizer(extractor, "clean")(images)
    b, _ = Featurizer(nvidia, "clean")(images)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_legacy_tensorflow_mode_without_nvidias_file_names_what_is_missing(extractor):
    with pytest.raises(MetricsError, match="legacy_tensorflow.*inception-2015-12-05.pt"):
        Featurizer(extractor, "legacy_tensorflow")


@pytest.mark.slow
def test_fid_separates_one_object_scenes_from_four_object_scenes(extractor, tmp_path_factory, tmp_path):
    one = shapes(tmp_path_factory, "one", 120, min_objects=1, max_objects=1)
    four = shapes(tmp_path_factory, "four", 60, min_objects=4, max_objects=4)
    featurizer = Featurizer(extractor, "clean")
    f_one = stats.real_stats(one, None, featurizer, tmp_path / "one.npz", 30)
    f_four = stats.real_stats(four, None, featurizer, tmp_path / "four.npz", 30)
    a, b = f_one.feats[:60], f_one.feats[60:]
    halves = scores.fid(*scores.mean_cov(a), *scores.mean_cov(b))
    apart = scores.fid(*scores.mean_cov(a), *scores.mean_cov(f_four.feats))
    assert apart > 1.5 * halves, (halves, apart)
    assert scores.kid(a, f_four.feats, 0) > 3 * abs(scores.kid(a, b, 0))


def test_real_statistics_are_cached_and_a_changed_dataset_invalidates_them(extractor, tmp_path_factory, tmp_path):
    folder = shapes(tmp_path_factory, "cached", 6, res=16)
    featurizer = Featurizer(extractor, "clean")
    path = tmp_path / "stats" / "clean-realall.npz"
    first = stats.real_stats(folder, None, featurizer, path, 8)
    stamp = path.stat().st_mtime_ns
    again = stats.real_stats(folder, None, featurizer, path, 8)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(first.feats, again.feats)
    assert first.key["images_sha256"] == data.store.read_manifest(folder).images_sha256
    assert not list(path.parent.glob(".*tmp*"))
    # the dataset is prepared again with other images: the cache must not be reused
    spec = config.resolve_dataset("cached", {"source": "shapes", "resolution": 16, "num_images": 6, "seed": 7})
    data.prepare("cached", spec, folder)
    changed = stats.real_stats(folder, None, featurizer, path, 8)
    assert changed.key["images_sha256"] != first.key["images_sha256"]
    assert not np.allclose(changed.mu, first.mu)
    assert stats.read(path).key == changed.key


def test_evaluate_writes_the_record_and_is_reproducible(extractor, toy, snapshot, tmp_path):
    out = tmp_path / "m.json"
    args = ["evaluate", "--snapshot", str(snapshot), "--dataset", "toy", "--data", str(toy), "--num-gen", "12,16",
            "--num-real", "20", "--batch-size", "8", "--device", "cpu", "--stats", str(tmp_path / "s.npz"),
            "--repeats", "2", "--out", str(out), "--save-images", str(tmp_path / "png")]
    log = ganrepro(*args).stderr
    # Progress in the log, per group of batches, for the real statistics and each seed's pass.
    assert "real features toy: 8/20 images (" in log and "real features toy: 20/20 images (" in log
    for seed in (0, 1):
        assert re.search(rf"stylegan2 kimg 2 seed {seed}: 8/16 images \(\d+\.\d images/s, ETA (\d+:)?\d+:\d\d\)", log), log
        assert f"stylegan2 kimg 2 seed {seed}: 16/16 images (" in log
    rec = json.loads(out.read_text())
    assert rec["extractor"]["sha256"] == inception.OFFLINE_SHA256
    assert (rec["num_real"], rec["num_gen"], rec["seed"], rec["fid_mode"]) == (20, [12, 16], 0, "clean")
    assert (rec["model"], rec["kimg"], rec["dataset"]) == ("stylegan2", 2, "toy")
    m = rec["metrics"]
    assert set(m) == {"fid12", "kid12", "pr12", "fid16", "kid16", "pr16"}
    assert m["fid16"] > 0 and 0 <= m["pr16"]["precision"] <= 1
    assert set(rec["unavailable"]) == {"is12", "is16"} and "logits" in rec["unavailable"]["is16"]
    assert rec["noise"]["seeds"] == [0, 1] and rec["noise"]["fid16"]["values"][0] == m["fid16"]
    assert rec["noise"]["fid16"]["std"] > 0 and rec["seconds"] > 0
    assert "VGG16" in rec["pr_features"]
    # the PNGs saved for inspection give exactly the features the in-memory route used
    assert len(list((tmp_path / "png").glob("*.png"))) == 16
    feats = cleanfid.get_folder_features(str(tmp_path / "png"), model=extractor, num_workers=0, batch_size=8,
                                         device=torch.device("cpu"), mode="clean", verbose=False)
    real = stats.read(tmp_path / "s.npz")
    assert scores.fid_features(feats, real.mu, real.sigma, real.feats) == pytest.approx(m["fid16"], rel=1e-5)
    ganrepro(*[a if a != "2" else "1" for a in args[:-2]])               # --repeats 1 now
    assert json.loads(out.read_text())["metrics"] == m                # same seed -> same numbers


def test_evaluate_rejects_bad_input_with_one_clear_line(toy, snapshot, tmp_path):
    broken = tmp_path / "snapshot-000004.pt"
    broken.write_bytes(snapshot.read_bytes()[:1000])
    proc = ganrepro("evaluate", "--snapshot", str(broken), "--dataset", "toy", "--data", str(toy),
                    "--device", "cpu", "--out", str(tmp_path / "x.json"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{broken} is not a readable ganrepro snapshot" in proc.stderr
    proc = ganrepro("evaluate", "--snapshot", str(snapshot), "--dataset", "toy", "--data", str(toy),
                    "--metrics", "fid,lpips", "--device", "cpu", check=False)
    assert proc.returncode == 1 and "unknown metric lpips; allowed: fid, kid, pr, is" in proc.stderr
    other = tmp_path / "big"
    data.prepare("big", config.resolve_dataset("big", {"source": "shapes", "resolution": 32, "num_images": 4}), other)
    proc = ganrepro("evaluate", "--snapshot", str(snapshot), "--dataset", "big", "--data", str(other),
                    "--device", "cpu", check=False)
    assert proc.returncode == 1 and "generates 16x16 images but dataset big is 32x32" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_tampered_offline_network_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    monkeypatch.setattr(inception, "offline_path", lambda: fake)
    with pytest.raises(MetricsError, match="expected 7ff4a85c"):
        inception.load(tmp_path / "no-weights-here", "cpu")


def test_options_are_checked():
    with pytest.raises(MetricsError, match="num_gen"):
        Options(num_gen=[1]).check()
    with pytest.raises(MetricsError, match="num_real must be 'all'"):
        stats.parse_num_real("some")


def test_truncation_pulls_the_generated_images_towards_the_average(snapshot):
    """evaluate --trunc: psi 0 draws every image at w_avg (the images then differ only by
    their noise), psi 1 leaves them as drawn; a psi outside [0, 1] is refused."""
    from ganrepro.metrics.evaluate import generate

    G, _ = models.load_snapshot(snapshot)
    G.w_avg.normal_()                                # away from zero, so psi 0 is not w = 0
    G.requires_grad_(False)
    for block in G.modules():
        if hasattr(block, "strength"):
            block.strength.zero_()                   # no noise: images depend on w alone
    cpu = torch.device("cpu")
    flat = np.concatenate(list(generate(G, 6, 0, 3, cpu, psi=0.0))).astype(int)
    full = np.concatenate(list(generate(G, 6, 0, 3, cpu))).astype(int)
    assert np.abs(flat - flat[:1]).max() == 0
    assert np.abs(full - full[:1]).max() > 10
    with pytest.raises(MetricsError, match="truncation psi must be between 0 and 1"):
        Options(psi=1.5).check()
