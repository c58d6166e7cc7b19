"""The restricted, bounded unpickler of official GANformer checkpoints.

Plain `pickle.load` runs code named by the file. `SafeUnpickler` maps the few globals the
official formats need to inert stand-ins or to constructors written here, which check
every argument before they build anything:

* numpy dtypes: only plain numeric ones (bool, signed and unsigned integers of 1 to 8
  bytes, floats of 2, 4 and 8 bytes) in the exact form numpy pickles them; no fields, no
  objects, no sub-arrays, no flags. A dtype is a `SafeDtype`, not a numpy dtype, until an
  array is made from it.
* numpy arrays (`_reconstruct` + BUILD): a `SafeArray` whose state must be (1, shape,
  SafeDtype, fortran flag, bytes) with exactly shape x itemsize bytes.
* torch storages (`torch.storage._load_from_bytes`): the legacy torch.save format inside
  the bytes is parsed here, with its own restricted unpickler; the declared element count
  must match the data that follows.
* torch tensors (`_rebuild_tensor_v2`, `_rebuild_parameter`): size, stride and offset
  must address only elements inside the storage, with no two elements sharing memory.

Before the real load, `picklescan.scan` dry-runs the whole file (opcodes, string lengths,
memo fan-out, depth, unfolded size, cycles). Every array, storage and tensor view draws
on a byte budget: the data a file declares must be data the file holds, so its total can
be no larger than the file (and never more than `MAX_FILE`).
"""

from __future__ import annotations

import collections
import io
import math
import mmap
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganrepro import picklescan
from ganrepro.errors import GanreproError

MAX_FILE = 4 << 30                     # the largest checkpoint file read at all
MAX_DIMS = 8
LIMITS = picklescan.Limits(max_unfolded=10_000_000)
_NESTED = picklescan.Limits(max_opcodes=10_000, max_str=4096, max_bytes=4096, max_depth=16,
                            max_unfolded=100_000, allow_persistent_ids=True)


class CheckpointError(GanreproError):
    """A checkpoint file cannot be imported (unsafe, damaged, foreign or unsupported)."""


def short(value: Any, limit: int = 80) -> str:
    """repr of a (validated, bounded) value, cut to `limit` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------- inert stand-ins

class _Inert:
    """An object of a class the file names, holding its pickled state and nothing else."""
    qualname = "?"

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state


class TFNetwork(_Inert):
    """`dnnlib.tflib.network.Network`: state = {version, name, static_kwargs, components,
    variables, build_module_src, build_func_name}."""
    qualname = "dnnlib.tflib.network.Network"


class TorchModule(_Inert):
    """A torch.nn module class the file names (e.g. Dropout); its state is its __dict__."""


_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class Persistent:
    """A `torch_utils.persistence` object: its class name, the module source (kept as text,
    never run) and its state (the module's __dict__)."""

    def __init__(self, meta: Any):
        if type(meta) is not dict or meta.get("type") != "class":
            raise CheckpointError("it holds a persistent object of an unknown kind (not an official network)")
        name, state = meta.get("class_name"), meta.get("state")
        if type(name) is not str or not _CLASS_NAME.fullmatch(name):
            raise CheckpointError(f"a persistent object's class_name is {type(name).__name__} "
                                  f"{short(name) if type(name) is str else ''}, not a short class name")
        if state is not None and not isinstance(state, dict):
            raise CheckpointError(f"the state of its persistent {name} is a {type(state).__name__}, not a dict")
        self.class_name = name
        self.state = state or {}


class EasyDict(dict):
    """`dnnlib.util.EasyDict`: a plain dict here."""


_TORCH_MODULES: dict[str, type] = {}


def _torch_module(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _TORCH_MODULES:
        _TORCH_MODULES[key] = type(name, (TorchModule,), {"qualname": key})
    return _TORCH_MODULES[key]


# ---------------------------------------------------------------------------- numpy

_NUMPY_CODES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}


class SafeDtype:
    """`numpy.dtype(code, False, True)` of a plain numeric code, plus the byte order its
    BUILD state names; anything else is refused."""

    def __init__(self, code: Any = None, align: Any = False, copy: Any = True):
        if type(code) is not str or code not in _NUMPY_CODES or type(align) is not bool or type(copy) is not bool:
            raise CheckpointError(f"it asks for the numpy dtype {short(code)}; only plain numeric dtypes "
                                  f"({', '.join(sorted(_NUMPY_CODES))}) are read")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        ok = type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4) and type(state[0]) is int \
            and state[2:8] == (None, None, None, -1, -1, 0) and (len(state) == 8 or state[8] is None)
        order = state[1] if ok else None
        single = self.dtype.itemsize == 1
        if not ok or type(order) is not str or order not in (("|",) if single else ("<", ">", "=")):
            raise CheckpointError(f"its numpy dtype {self.dtype.str} has the state {short(state)}; only plain "
                                  "numeric dtypes (no fields, objects, sub-arrays or flags) are read")
        if not single:
            self.dtype = self.dtype.newbyteorder(order)


class _NdarrayName:
    """`numpy.ndarray` as named by a pickle: only an argument of `_reconstruct`."""

    def __init__(self, *args, **kwargs):
        raise CheckpointError("it calls numpy.ndarray directly, which numpy's own pickles never do")


class SafeArray:
    """A numpy array from `_reconstruct(ndarray, (0,), b'b')` and its BUILD state, checked
    before it is made; `.array` holds it (read-only, over the pickled bytes)."""

    def __init__(self, budget: "Budget", cls: Any, shape: Any, typecode: Any):
        if cls is not _NdarrayName or shape != (0,) or type(shape) is not tuple or typecode != b"b":
            raise CheckpointError("it rebuilds a numpy array in a form numpy's own pickles never use")
        self.budget = budget
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if type(state) is not tuple or len(state) != 5 or state[0] != 1 or type(state[0]) is not int:
            raise CheckpointError("a numpy array's pickled state is not (1, shape, dtype, order, data)")
        _, shape, dtype, fortran, data = state
        if not isinstance(dtype, SafeDtype):
            raise CheckpointError(f"a numpy array's dtype is {type(dtype).__name__}, not a plain numeric dtype")
        shape = check_shape(shape, "a numpy array")
        if type(fortran) is not bool:
            raise CheckpointError("a numpy array's order flag is not a bool")
        if type(data) is not bytes:
            raise CheckpointError(f"a numpy array's data is a {type(data).__name__}, not raw bytes (object "
                                  "arrays are not read)")
        nbytes = math.prod(shape) * dtype.dtype.itemsize
        if len(data) != nbytes:
            raise CheckpointError(f"a numpy array of shape {list(shape)} and dtype {dtype.dtype.str} needs "
                                  f"{nbytes:,} bytes but holds {len(data):,}")
        self.budget.take(nbytes, "numpy arrays")
        flat = np.frombuffer(data, dtype=dtype.dtype) if nbytes else np.empty(0, dtype.dtype)
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def check_shape(shape: Any, what: str) -> tuple[int, ...]:
    if type(shape) not in (tuple, list) or len(shape) > MAX_DIMS \
            or not all(type(n) is int and 0 <= n < 1 << 40 for n in shape):
        raise CheckpointError(f"{what} has the shape {short(shape)}; a shape is at most {MAX_DIMS} "
                              "non-negative integers")
    return tuple(shape)


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    """`numpy.core.multiarray.scalar(dtype, bytes)`: one number."""
    if not isinstance(dtype, SafeDtype) or type(data) is not bytes or len(data) != dtype.dtype.itemsize:
        raise CheckpointError("it rebuilds a numpy scalar that is not one plain number")
    return np.frombuffer(data, dtype=dtype.dtype)[0]


# ---------------------------------------------------------------------------- torch

_TORCH_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                 "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                 "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                 "BoolStorage": torch.bool}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


class Storage:
    """A torch storage read from the legacy torch.save bytes `_load_from_bytes` is given."""

    def __init__(self, dtype: torch.dtype, data: torch.Tensor):
        self.dtype, self.data = dtype, data          # data: a 1-D tensor owning the storage

    @property
    def numel(self) -> int:
        return self.data.numel()


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, _TORCH_DTYPES[name]


class _StorageUnpickler(pickle.Unpickler):
    """The pickles inside a storage's bytes: only torch storage types and one persistent id."""

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"refused to load: a torch storage inside it tried to call the forbidden global "
                              f"{module[:100]}.{name[:100]} (no code from the file ran)")

    def persistent_load(self, pid: Any):
        if type(pid) is not tuple or len(pid) != 6 or pid[0] != "storage" or not isinstance(pid[1], _StorageType) \
                or type(pid[2]) is not str or len(pid[2]) > 64 or type(pid[3]) is not str or len(pid[3]) > 32 \
                or type(pid[4]) is not int or not 0 <= pid[4] < 1 << 40 or pid[5] is not None:
            raise CheckpointError(f"a torch storage inside it declares {short(pid)}, not one plain storage")
        return pid


def _nested(data: bytes, start: int) -> tuple[Any, int]:
    """(object, end) of the pickle at data[start:] inside a storage's bytes."""
    try:
        end = start + picklescan.scan(io.BytesIO(data[start:]), len(data) - start, _NESTED).end
    except picklescan.ScanError as err:
        raise CheckpointError(f"a torch storage inside it is damaged or unusual ({err})") from None
    try:
        return _StorageUnpickler(io.BytesIO(data[start:end])).load(), end
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"a torch storage inside it cannot be read ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None


def load_storage(budget: "Budget", data: Any) -> Storage:
    """`torch.storage._load_from_bytes(data)`, parsed here: magic, protocol, system info,
    one persistent storage id, its key, then the element count and the raw elements."""
    if type(data) is not bytes:
        raise CheckpointError("a torch storage is rebuilt from something other than bytes")
    magic, pos = _nested(data, 0)
    protocol, pos = _nested(data, pos)
    info, pos = _nested(data, pos)
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise CheckpointError("a torch storage inside it is not in torch.save's legacy format")
    if type(info) is not dict or info.get("little_endian") is not True:
        raise CheckpointError("a torch storage inside it is not little-endian, which ganrepro does not read")
    pid, pos = _nested(data, pos)
    keys, pos = _nested(data, pos)
    if type(pid) is not tuple or keys != [pid[2]]:
        raise CheckpointError("a torch storage inside it does not hold exactly one storage")
    dtype, numel = pid[1].dtype, pid[4]
    if len(data) < pos + 8 or int.from_bytes(data[pos:pos + 8], "little") != numel:
        raise CheckpointError(f"a torch storage inside it declares {numel:,} elements in two different ways")
    pos += 8
    nbytes = numel * torch.empty(0, dtype=dtype).element_size()
    if len(data) - pos != nbytes:
        raise CheckpointError(f"a torch storage inside it declares {numel:,} elements ({nbytes:,} bytes) but "
                              f"holds {len(data) - pos:,} bytes")
    budget.take(nbytes, "torch storages")
    tensor = torch.empty(numel, dtype=dtype)
    if nbytes:
        tensor.view(torch.uint8).numpy()[:] = np.frombuffer(data, np.uint8, count=nbytes, offset=pos)
    return Storage(dtype, tensor)


def check_strides(size: tuple[int, ...], stride: Any, offset: int, storage_numel: int, what: str) -> tuple:
    """Refuse a view that reads outside its storage or maps two elements to one place."""
    if type(stride) not in (tuple, list) or len(stride) != len(size) \
            or not all(type(s) is int and 0 <= s < 1 << 40 for s in stride):
        raise CheckpointError(f"{what} of shape {list(size)} has the strides {short(stride)}; strides are "
                              "non-negative integers, one a dimension")
    if type(offset) is not int or not 0 <= offset < 1 << 40:
        raise CheckpointError(f"{what} has the storage offset {short(offset)}")
    if math.prod(size) == 0:
        return tuple(stride)
    dims = sorted((s, n) for n, s in zip(size, stride) if n > 1)
    reach = 1                                           # elements the dims so far span
    for s, n in dims:
        if s < reach:
            raise CheckpointError(f"{what} of shape {list(size)} has the strides {list(stride)}, which read "
                                  "the same elements more than once (zero or overlapping strides)")
        reach = s * (n - 1) + reach
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage_numel:
        raise CheckpointError(f"{what} of shape {list(size)}, strides {list(stride)} and offset {offset} "
                              f"reads element {last:,} of a storage of {storage_numel:,}")
    return tuple(stride)


def rebuild_tensor(budget: "Budget", storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                   backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2`, after every argument is checked."""
    if not isinstance(storage, Storage):
        raise CheckpointError("it rebuilds a tensor from something other than a torch storage")
    size = check_shape(size, "a tensor")
    stride = check_strides(size, stride, offset, storage.numel, "a tensor")
    if type(requires_grad) is not bool or type(backward_hooks) is not collections.OrderedDict \
            or backward_hooks or metadata not in (None, {}):
        raise CheckpointError("it rebuilds a tensor with hooks or metadata, which checkpoints never have")
    budget.take_view(math.prod(size) * storage.data.element_size())
    tensor = torch.empty(0, dtype=storage.dtype).set_(storage.data.untyped_storage(), offset, size, stride)
    if requires_grad:
        if not tensor.is_floating_point():
            raise CheckpointError("it asks for gradients of an integer tensor")
        tensor.requires_grad_(True)
    return tensor


def rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> torch.nn.Parameter:
    """`torch._utils._rebuild_parameter`, after its arguments are checked."""
    if type(data) is not torch.Tensor or type(requires_grad) is not bool \
            or type(backward_hooks) is not collections.OrderedDict or backward_hooks:
        raise CheckpointError("it rebuilds a parameter from something other than a plain tensor")
    if requires_grad and not data.is_floating_point():
        raise CheckpointError("it asks for gradients of an integer parameter")
    return torch.nn.Parameter(data, requires_grad)


# ---------------------------------------------------------------------------- the unpickler

class Budget:
    """Bytes of array and tensor data one file may declare: what the file holds, at most."""

    def __init__(self, limit: int):
        self.limit, self.data, self.views = limit, 0, 0

    def take(self, nbytes: int, what: str) -> None:
        self.data += nbytes
        if self.data > self.limit:
            raise CheckpointError(f"its {what} declare more data ({self.data:,} bytes so far) than the "
                                  f"file holds ({self.limit:,} bytes)")

    def take_view(self, nbytes: int) -> None:
        self.views += nbytes
        if self.views > self.limit:
            raise CheckpointError(f"its tensors view more data ({self.views:,} bytes so far) than the file "
                                  f"holds ({self.limit:,} bytes): one storage is read over and over")


class SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals of the official checkpoint formats (see the module doc)."""

    def __init__(self, file, name: str, budget: Budget):
        super().__init__(file)
        self.name = name
        b = budget
        self.allowed: dict[tuple[str, str], Any] = {
            ("dnnlib.tflib.network", "Network"): TFNetwork,
            ("torch_utils.persistence", "_reconstruct_persistent_obj"): Persistent,
            ("dnnlib.util", "EasyDict"): EasyDict,
            ("dnnlib", "EasyDict"): EasyDict,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): lambda *a: rebuild_tensor(b, *a),
            ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): lambda data: load_storage(b, data),
            ("numpy", "ndarray"): _NdarrayName,
            ("numpy", "dtype"): SafeDtype,
        }
        for np_core in ("numpy.core.multiarray", "numpy._core.multiarray"):   # numpy 1 and 2 names
            self.allowed[(np_core, "_reconstruct")] = lambda *a: SafeArray(b, *a)
            self.allowed[(np_core, "scalar")] = _scalar

    def find_class(self, module: str, name: str):
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        if module.startswith("torch.nn.modules.") and re.fullmatch(r"[A-Z][A-Za-z0-9]{0,99}", name):
            return _torch_module(module, name)
        raise CheckpointError(
            f"refused to load: it names the global {module[:100]}.{name[:100]}, which is not one of the "
            "classes of an official GANformer checkpoint (loading it could run code from the file)")

    def persistent_load(self, pid):
        raise CheckpointError("refused to load: it uses persistent ids, which official checkpoint pickles do not")


def safe_load(path: Path) -> Any:
    """The unpickled content of `path` with inert stand-ins; one clear error otherwise."""
    try:
        return _safe_load(path)
    except CheckpointError as err:
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None
    except (EOFError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"{path} is not a complete pickle ({type(err).__name__}: {str(err)[:200]}); "
                              "a truncated download or another kind of file") from None
    except MemoryError:
        raise CheckpointError(f"{path} needs more memory to read than is available") from None
    except Exception as err:                     # a malformed pickle of allowed parts
        raise CheckpointError(f"{path} cannot be read as an official checkpoint "
                              f"({type(err).__name__}: {str(err)[:200]})") from None


def _safe_load(path: Path) -> Any:
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size == 0:
            raise CheckpointError(f"{path} is not a complete pickle (the file is empty); a truncated download "
                                  "or another kind of file")
        if size > MAX_FILE:
            raise CheckpointError(f"{path} is {size:,} bytes; checkpoints of more than {MAX_FILE:,} are not read")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            try:
                picklescan.scan(view, size, LIMITS)
            except picklescan.ScanError as err:
                if err.truncated:
                    raise CheckpointError(f"{path} is not a complete pickle ({err}); a truncated download or "
                                          "another kind of file") from None
                raise CheckpointError(f"{path} cannot be read as an official checkpoint: {err}") from None
        f.seek(0)
        return SafeUnpickler(f, str(path), Budget(size)).load()
