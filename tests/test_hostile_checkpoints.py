"""Hostile checkpoint and snapshot files against the real command line, bounded.

Each case builds a small hostile file by hand (raw pickle opcodes, or a torch.save archive
edited afterwards), runs `ganrepro import-checkpoint FILE` or `ganrepro generate --snapshot
FILE` under RLIMIT_AS (imports + 1 GiB) and RLIMIT_CPU (tests/hostile.py), and asserts one
`Error:` line naming the file and the problem, exit status 1, no traceback or crash, no
payload marker file, and memory within the bound. Positive controls: the released
fixtures still import, and an ordinary snapshot still generates.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hostile import assert_refused, run_bounded      # noqa: E402

from ganrepro import models                          # noqa: E402
from ganrepro.checkpoints import released            # noqa: E402

HERE = Path(__file__).resolve().parent / "fixtures" / "released"
MARKER = "ganrepro-hostile-marker"


# ---------------------------------------------------------------------------- raw pickle opcodes

class P:
    """A pickle written opcode by opcode (protocol 2)."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")

    def __add__(self, raw: bytes) -> "P":
        self.out += raw
        return self

    def done(self) -> bytes:
        return bytes(self.out + b".")


def g(module: str, name: str) -> bytes:              # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text: str) -> bytes:                          # BINUNICODE
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def b(data: bytes) -> bytes:                        # BINBYTES
    return b"B" + struct.pack("<I", len(data)) + data


def i(n: int) -> bytes:                             # BININT or LONG1
    if -(1 << 31) <= n < 1 << 31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:       # func(*args): REDUCE
    return func + tup(*args) + b"R"


def dct(**items: bytes) -> bytes:
    return b"}(" + b"".join(s(k) + v for k, v in items.items()) + b"u"


NONE, TRUE, FALSE = b"N", b"\x88", b"\x89"
ODICT = call(g("collections", "OrderedDict"))
NP_CORE = "numpy.core.multiarray"


def dtype(code: str, state: bytes | None = None) -> bytes:
    d = call(g("numpy", "dtype"), s(code), FALSE, TRUE)
    order = "|" if code[-1] == "1" or code == "O" else "<"
    return d + (state if state is not None else tup(i(3), s(order), NONE, NONE, NONE, i(-1), i(-1), i(0))) + b"b"


def ndarray(shape: tuple, dt: bytes, data: bytes) -> bytes:
    arr = call(g(NP_CORE, "_reconstruct"), g("numpy", "ndarray"), tup(i(0)), b"C\x01b")
    return arr + tup(i(1), tup(*map(i, shape)), dt, FALSE, data) + b"b"


def storage_bytes(values: list[float], numel: int | None = None, global_: bytes = g("torch", "FloatStorage")) -> bytes:
    """What torch.storage._load_from_bytes is given: the legacy torch.save of one storage."""
    numel = len(values) if numel is None else numel
    head = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
        protocol=2)
    main = b"\x80\x02" + tup(s("storage"), global_, s("k"), s("cpu"), i(numel), NONE) + b"Q."
    keys = pickle.dumps(["k"], protocol=2)
    return head + main + keys + struct.pack("<q", numel) + struct.pack(f"<{len(values)}f", *values)


def storage(values: list[float], **kw) -> bytes:
    return call(g("torch.storage", "_load_from_bytes"), b(storage_bytes(values, **kw)))


def tensor(store: bytes, offset: int, size: tuple, stride: tuple) -> bytes:
    return call(g("torch._utils", "_rebuild_tensor_v2"), store, i(offset), tup(*map(i, size)),
                tup(*map(i, stride)), FALSE, ODICT)


def persistent(class_name: bytes, state: bytes) -> bytes:
    meta = dct(type=s("class"), version=i(6), module_src=s("# never run\n"), class_name=class_name, state=state)
    return call(g("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)


def pt_checkpoint(generator: bytes) -> bytes:
    """An official PyTorch training pickle: {'G': ..., 'G_ema': generator}."""
    return P().__add__(dct(G=generator, G_ema=generator, D=NONE)).done()


def module(params: bytes = b"}", modules: bytes = b"}", kwargs: bytes = b"}") -> bytes:
    return dct(training=FALSE, _parameters=params, _buffers=b"}", _non_persistent_buffers_set=b"\x8f",
               _modules=modules, _init_kwargs=kwargs)


def tf_network(state: bytes) -> bytes:
    """A `dnnlib.tflib.network.Network` with `state` (NEWOBJ, then BUILD)."""
    return g("dnnlib.tflib.network", "Network") + b")\x81" + state + b"b"


def tf_checkpoint(state: bytes) -> bytes:
    net = tf_network(state)
    return P().__add__(net + b"\x94" + b"h\x00h\x00\x87").done()          # (G, G, G) through the memo


def tf_state(variables: bytes = b"]", components: bytes = b"}", version: bytes = i(4),
             static: bytes = b"}") -> bytes:
    return dct(version=version, name=s("G"), static_kwargs=static, components=components,
               variables=variables, build_module_src=s("# never run\n"), build_func_name=s("G"))


def laughs(levels: int) -> bytes:
    """A list of two references to a list of two references to ... ('billion laughs')."""
    out = s("ha") + b"\x94"                          # memo 0
    for n in range(levels):
        out += b"h" + bytes([n]) + b"h" + bytes([n]) + b"\x86\x94"   # TUPLE2 of memo n twice -> memo n+1
    return out


def deep(levels: int) -> bytes:
    return i(1) + b"\x85" * levels                   # TUPLE1 around TUPLE1 around ... 1


def marker_call(func: bytes, tmp: Path, kind: str) -> bytes:
    marker = tmp / MARKER
    if kind == "shell":
        return call(func, s(f"touch {marker}"))
    if kind == "python":
        return call(func, s(f"open({str(marker)!r}, 'w').close()"))
    return call(func, b"]" + b"(" + s("touch") + s(str(marker)) + b"e")


# ---------------------------------------------------------------------------- cases: import-checkpoint

def _cases(tmp: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, regex the Error line must match)."""
    f4 = dtype("f4")
    w_ok = storage([0.5] * 4)
    return {
        # code execution, directly and through allowed-looking names
        "os-system": (pt_checkpoint(marker_call(g("os", "system"), tmp, "shell")), r"global os\.system"),
        "posix-system": (pt_checkpoint(marker_call(g("posix", "system"), tmp, "shell")), r"global posix\.system"),
        "builtins-eval": (pt_checkpoint(marker_call(g("builtins", "eval"), tmp, "python")), r"builtins\.eval"),
        "builtins-exec": (pt_checkpoint(marker_call(g("builtins", "exec"), tmp, "python")), r"builtins\.exec"),
        "subprocess-popen": (pt_checkpoint(marker_call(g("subprocess", "Popen"), tmp, "argv")), r"subprocess\.Popen"),
        "numpy-load-pickle": (pt_checkpoint(call(g("numpy", "load"), s(str(tmp / "x.npy")), TRUE)), r"numpy\.load"),
        "torch-load": (pt_checkpoint(call(g("torch", "load"), s(str(tmp / "x.pt")))), r"torch\.load"),
        "numpy-frombuffer": (pt_checkpoint(call(g("numpy", "frombuffer"), b(b"\0" * 8))), r"numpy\.frombuffer"),
        "pickle-loads": (pt_checkpoint(call(g("pickle", "loads"), b(pickle.dumps(1)))), r"pickle\.loads"),
        "getattr-chain": (pt_checkpoint(call(g("builtins", "getattr"), g("os", "path"), s("join"))),
                          r"builtins\.getattr"),
        "load-from-bytes-payload": (
            pt_checkpoint(storage([1.0], global_=g("posix", "system"))),
            r"tried to call the forbidden global posix\.system"),
        # numpy dtypes and arrays
        "dtype-object-field-segfault": (
            tf_checkpoint(tf_state(variables=b"]" + tup(s("w"), ndarray((2,), dtype("V16", tup(
                i(3), s("|"), NONE, tup(s("a")), dct(a=tup(dtype("O"), i(0))), i(16), i(1), i(0))),
                b(b"\x41" * 32))) + b"a")),
            r"numpy dtype 'V16'"),
        "dtype-f8-with-fields-state": (
            tf_checkpoint(tf_state(variables=b"]" + tup(s("w"), ndarray((1,), dtype("f8", tup(
                i(3), s("<"), NONE, tup(s("a")), dct(a=tup(dtype("O"), i(0))), i(8), i(1), i(63))),
                b(b"\x41" * 8))) + b"a")),
            r"only plain numeric dtypes"),
        "object-array": (
            tf_checkpoint(tf_state(variables=b"]" + tup(s("w"), ndarray((2,), dtype("O"), b"](" + i(1) + i(2) + b"e"))
                                   + b"a")),
            r"numpy dtype 'O'"),
        "float-array-with-object-data": (
            tf_checkpoint(tf_state(variables=b"]" + tup(s("w"), ndarray((2,), f4, b"](" + i(1) + i(2) + b"e"))
                                   + b"a")),
            r"not raw bytes"),
        "array-declares-more-than-its-bytes": (
            tf_checkpoint(tf_state(variables=b"]" + tup(s("w"), ndarray((1 << 28,), f4, b(b"\0" * 16))) + b"a")),
            r"needs 1,073,741,824 bytes but holds 16"),
        # torch storages and tensors
        "zero-stride-1GiB-tensor": (
            pt_checkpoint(persistent(s("Generator"), module(params=dct(w=tensor(w_ok, 0, (1 << 28,), (0,)))))),
            r"zero or overlapping strides"),
        "offset-past-storage": (
            pt_checkpoint(persistent(s("Generator"), module(params=dct(w=tensor(w_ok, 100, (4,), (1,)))))),
            r"reads element 103 of a storage of 4"),
        "stride-past-storage": (
            pt_checkpoint(persistent(s("Generator"), module(params=dct(w=tensor(w_ok, 0, (4,), (3,)))))),
            r"reads element 9 of a storage of 4"),
        "set-grows-storage": (
            pt_checkpoint(persistent(s("Generator"), module(params=dct(w=tensor(w_ok, 0, (1 << 20, 64), (64, 1)))))),
            r"of a storage of 4"),
        "storage-declares-more-than-its-bytes": (
            pt_checkpoint(persistent(s("Generator"), module(params=dct(w=tensor(
                storage([0.5] * 4, numel=1 << 30), 0, (4,), (1,)))))),
            r"declares 1,073,741,824 elements"),
        "one-storage-viewed-many-times": (
            pt_checkpoint(persistent(s("Generator"), module(params=b"}(" + b"".join(
                s(f"w{n}") + tensor(storage([0.5] * 4096) + b"\x94" if n == 0 else b"h\x00", 0, (4096,), (1,))
                for n in range(8)) + b"u"))),
            r"view more data .* than the file holds"),
        # the unpickler's own work
        "billion-laughs-class-name": (pt_checkpoint(persistent(laughs(40), module())), r"billion laughs"),
        "billion-laughs-kwargs": (tf_checkpoint(tf_state(static=dct(resolution=laughs(40)))), r"billion laughs"),
        "deep-kwargs-200k": (tf_checkpoint(tf_state(static=dct(resolution=deep(200_000)))), r"nest more than"),
        "huge-memo-index": (P().__add__(NONE + b"r\xff\xff\xff\xff").done(), r"memo entry 4294967295"),
        "huge-integer": (P().__add__(b"\x8b" + struct.pack("<i", 1 << 20) + b"\x01" * (1 << 20)).done(),
                         r"integer of"),
        "module-cycle": (
            pt_checkpoint(persistent(s("Generator"), b"}\x94" + b"(" + s("_modules") + b"}(" + s("self") + b"h\x00u"
                                     + b"u")),
            r"reference cycle"),
        "component-cycle": (
            P().__add__(g("dnnlib.tflib.network", "Network") + b")\x81\x94" + b"}\x94" + b"(" + s("version") + i(4)
                        + s("components") + b"}(" + s("self") + b"h\x00u" + b"u" + b"b" + b"h\x00h\x00h\x00\x87").done(),
            r"reference cycle"),
        # malformed but allowed structures
        "version-four": (tf_checkpoint(tf_state(version=s("four"))), r"version 'four' is not a number"),
        "state-is-a-list": (P().__add__(tf_network(b"](" + i(1) + i(2) + b"e") + b"\x94h\x00h\x00\x87").done(),
                            r"state of network 'Gs' is a list"),
        "variables-1-2-3": (tf_checkpoint(tf_state(variables=b"](" + i(1) + i(2) + i(3) + b"e")),
                            r"variables of 'Gs' hold 1, not a \(name, array\) pair"),
        "class-name-not-a-string": (pt_checkpoint(persistent(b"](" + i(1) + b"e", module())),
                                    r"class_name is list"),
        "huge-kwargs-network": (
            pt_checkpoint(persistent(s("Generator"), module(kwargs=dct(
                img_resolution=i(1024), img_channels=i(3), z_dim=i(4096), w_dim=i(4096), k=i(1),
                synthesis_kwargs=dct(channel_base=i(1 << 20), channel_max=i(4096)),
                mapping_kwargs=dct(num_layers=i(64)))))),
            r"needs about .* GiB|does not fill|has the shape"),
    }


CASE_NAMES = sorted(_cases(Path("/x")))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_a_hostile_checkpoint_is_refused_in_one_line(tmp_path, case):
    content, pattern = _cases(tmp_path)[case]
    assert len(content) < 2 << 20
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(content)
    out = tmp_path / "s.pt"
    result = run_bounded(["import-checkpoint", path, "--out", out], cwd=tmp_path)
    line = assert_refused(result, pattern, markers=(tmp_path / MARKER,))
    assert str(path) in line
    assert "weights_only" not in line and "truncated" not in line
    assert not out.exists()


# ---------------------------------------------------------------------------- a real network, wrong shapes

class _Network:
    """Pickles as dnnlib.tflib.network.Network with a state (like build_fixtures.Network)."""

    def __init__(self, state):
        self.state = state

    def __getstate__(self):
        return self.state


def _tf_fixture_with(tmp_path: Path, monkeypatch, edit) -> Path:
    """tf-duplex.pkl read with the safe unpickler, one variable edited, pickled again."""
    module = types.ModuleType("dnnlib.tflib.network")
    _Network.__module__, _Network.__qualname__ = "dnnlib.tflib.network", "Network"
    module.Network = _Network
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.tflib", types.ModuleType("dnnlib.tflib"))
    monkeypatch.setitem(sys.modules, "dnnlib.tflib.network", module)

    def plain(net):
        state = dict(net.state)
        state["variables"] = [(n, np.array(v.array)) for n, v in state["variables"]]
        state["components"] = {k: plain(c) for k, c in state["components"].items()}
        return _Network(state)
    G, D, Gs = (plain(n) for n in released.safe_load(HERE / "tf-duplex.pkl"))
    edit(Gs)
    path = tmp_path / "edited.pkl"
    path.write_bytes(pickle.dumps((G, D, Gs), protocol=4))
    return path


def _grow_const(net):
    net.state["variables"] = [(n, np.zeros((1, 64, 4, 4), np.float32) if n.endswith("Const/const") else v)
                              for n, v in net.state["variables"]]


def _flatten_weight(net):
    net.state["variables"] = [(n, v.reshape(-1) if n.startswith("mapping/") and n.endswith("weight") else v)
                              for n, v in net.state["variables"]]


@pytest.mark.parametrize("edit, pattern", [(_grow_const, r"'blocks\.0\.const' has the shape \[1, 64, 4, 4\], but"),
                                           (_flatten_weight, r"has the shape \[\d+\], but|official layout")],
                         ids=["wrong-shaped-const", "flattened-weight"])
def test_a_wrong_shaped_tensor_is_refused_before_the_network_is_built(tmp_path, monkeypatch, edit, pattern):
    path = _tf_fixture_with(tmp_path, monkeypatch, edit)
    result = run_bounded(["import-checkpoint", path, "--out", tmp_path / "s.pt"], cwd=tmp_path)
    assert str(path) in assert_refused(result, pattern)


def test_the_released_fixture_repickled_unchanged_still_imports(tmp_path, monkeypatch):
    """The control of the case above: the same re-pickling without an edit imports."""
    path = _tf_fixture_with(tmp_path, monkeypatch, lambda net: None)
    result = run_bounded(["import-checkpoint", path, "--out", tmp_path / "s.pt"], cwd=tmp_path)
    assert result.rc == 0, result.stderr
    assert "ganformer-duplex at 256 px" in result.stdout


@pytest.mark.parametrize("name", ["tf-duplex", "pt-duplex", "pt-simplex"])
def test_the_released_fixtures_import_within_the_bounds(tmp_path, name):
    result = run_bounded(["import-checkpoint", HERE / f"{name}.pkl", "--out", tmp_path / "s.pt"], cwd=tmp_path)
    assert result.rc == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.rss_above_imports < 1 << 30


# ---------------------------------------------------------------------------- snapshots

def _snapshot(path: Path, **edits) -> Path:
    torch.manual_seed(0)
    G = models.build_generator("stylegan2", resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8,
                               mapping_layers=2)
    hparams = dict(resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mapping_layers=2)
    models.save_snapshot(path, G, "stylegan2", hparams, kimg=0)
    if edits:
        payload = torch.load(path, weights_only=True)
        for key, value in edits.items():
            if key == "state_dict":
                payload["state_dict"].update(value)
            else:
                payload[key] = value
        torch.save(payload, path)
    return path


def _rewrite_members(path: Path, edit) -> None:
    """Rewrite a snapshot's zip archive, member by member, through `edit(info, data) -> (info, data)`."""
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in members:
            info, data = edit(info, data)
            z.writestr(info, data, compress_type=info.compress_type)
    path.write_bytes(buf.getvalue())


def _deflated_member(path: Path) -> None:
    def edit(info, data):
        if info.filename.endswith("data/0"):
            info.compress_type = zipfile.ZIP_DEFLATED
            data = bytes(32 << 20)                   # 32 MiB of zeros, a few KiB on disk
        return info, data
    _rewrite_members(path, edit)


def _declared_3gib(path: Path) -> None:
    """A stored member whose central directory claims 3 GiB."""
    data = bytearray(path.read_bytes())
    name = next(n for n in zipfile.ZipFile(path).namelist() if n.endswith("data/0")).encode()
    at = data.find(name, data.find(b"PK\x01\x02"))
    header = data.rfind(b"PK\x01\x02", 0, at)
    data[header + 24:header + 28] = struct.pack("<I", 3 << 30)       # uncompressed size
    path.write_bytes(bytes(data))


def _data_pkl(path: Path, pickled: bytes) -> None:
    _rewrite_members(path, lambda info, data: (info, pickled if info.filename.endswith("data.pkl") else data))


def _snapshot_cases(tmp: Path) -> dict:
    """name -> (make(path), regex)."""
    return {
        "snapshot-huge-hparams": (lambda p: _snapshot(p, hparams=dict(resolution=1024, channel_base=1 << 30,
                                                                      channel_max=1 << 20, z_dim=8, w_dim=8)),
                                  r"needs about [\d.]+ GiB of weights"),
        "snapshot-wrong-shaped-tensor": (lambda p: _snapshot(p, state_dict={"w_avg": torch.zeros(1 << 16)}),
                                         r"'w_avg' has the shape \[65536\], but stylegan2"),
        "snapshot-zero-stride-tensor": (lambda p: _snapshot(p, state_dict={"w_avg": torch.zeros(1).expand(1 << 28)}),
                                        r"'w_avg' has the shape \[268435456\]"),
        "snapshot-unknown-model": (lambda p: _snapshot(p, model="../../etc/passwd"), r"its model is"),
        "snapshot-hparams-list": (lambda p: _snapshot(p, hparams=[1, 2, 3]), r"hparams are not a dict"),
        "snapshot-state-list": (lambda p: _snapshot_state(p, [1, 2, 3]), r"state_dict is a list"),
        "snapshot-deflated-member": (lambda p: _deflated_member(_snapshot(p)), r"'[^']*data/0' declares"),
        "snapshot-member-declares-3GiB": (lambda p: _declared_3gib(_snapshot(p)), r"declares 3,221,225,472 bytes"),
        "snapshot-billion-laughs": (lambda p: _data_pkl(_snapshot(p), P().__add__(laughs(40)).done()),
                                    r"billion laughs"),
        "snapshot-deep-nesting": (lambda p: _data_pkl(_snapshot(p), P().__add__(deep(200_000)).done()),
                                  r"nest more than"),
        "snapshot-os-system": (lambda p: _data_pkl(_snapshot(p), P().__add__(marker_call(g("os", "system"), tmp,
                                                                                          "shell")).done()),
                               r"tried to call something forbidden \(.*GLOBAL (os|posix)\.system"),
    }


def _snapshot_state(path: Path, state) -> Path:
    _snapshot(path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = state
    torch.save(payload, path)
    return path


SNAPSHOT_CASES = sorted(_snapshot_cases(Path("/x")))


@pytest.mark.parametrize("case", SNAPSHOT_CASES)
def test_a_hostile_snapshot_is_refused_in_one_line(tmp_path, case):
    make, pattern = _snapshot_cases(tmp_path)[case]
    path = tmp_path / "snapshot.pt"
    make(path)
    assert path.stat().st_size < 2 << 20
    result = run_bounded(["generate", "--snapshot", path, "--seeds", "0", "--out", tmp_path / "g"], cwd=tmp_path)
    line = assert_refused(result, pattern, markers=(tmp_path / MARKER,))
    assert str(path) in line and "weights_only" not in line
    assert not (tmp_path / "g" / "seed0000.png").exists()


def test_an_ordinary_snapshot_still_generates_within_the_bounds(tmp_path):
    path = _snapshot(tmp_path / "snapshot.pt")
    result = run_bounded(["generate", "--snapshot", path, "--seeds", "0", "--out", tmp_path / "g"], cwd=tmp_path)
    assert result.rc == 0, result.stderr
    assert (tmp_path / "g" / "seed0000.png").is_file()


def test_save_snapshot_is_deterministic_and_leaves_no_temp_file(tmp_path):
    a, b_ = _snapshot(tmp_path / "a" / "s.pt"), _snapshot(tmp_path / "b" / "s.pt")
    assert a.read_bytes() == b_.read_bytes()
    assert sorted(p.name for p in a.parent.iterdir()) == ["s.pt"]
