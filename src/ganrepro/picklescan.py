"""A bounded dry run of a pickle, before anything in it is built.

`scan(f, size)` walks the opcodes with `pickletools.genops` and executes them
symbolically: every object the pickle would create becomes a node, every container,
call or BUILD an edge to what it holds. Nothing is imported, called or allocated beyond
the node table. The walk refuses, with one sentence saying what is wrong:

* more opcodes than `max_opcodes`, strings longer than `max_str`, byte strings longer
  than `max_bytes`, integers wider than `max_int_bits`;
* memo indices far beyond what the pickle has stored (the C unpickler sizes its memo by
  the largest index, so one opcode could ask for gigabytes), a memo entry fetched more
  than `max_fanout` times;
* persistent ids (unless allowed), extension codes and out-of-band buffers;
* a reference cycle, nesting deeper than `max_depth`, and an object graph that, unfolded
  into the tree a naive reader walks, has more than `max_unfolded` nodes (a "billion
  laughs" built from memo references: a few hundred bytes that `str()` or `json.dumps`
  would expand to gigabytes).

Malformed opcode streams (stack underflow, missing MARK, truncated data) are refused the
same way; `ScanError.truncated` tells a cut-off file from a damaged one.
"""

from __future__ import annotations

import dataclasses
import pickletools
from typing import BinaryIO


class ScanError(ValueError):
    """The pickle was refused by the dry run; the message says why (without the file name)."""

    def __init__(self, message: str, truncated: bool = False):
        super().__init__(message)
        self.truncated = truncated


@dataclasses.dataclass(frozen=True)
class Limits:
    max_opcodes: int = 20_000_000
    max_str: int = 16 << 20            # one text string (the embedded module source is the largest)
    max_bytes: int = 4 << 30           # one byte string (a tensor's raw data)
    max_int_bits: int = 256
    max_fanout: int = 1 << 20          # fetches of one memo entry
    max_depth: int = 100               # nesting of containers and calls
    max_unfolded: int = 50_000_000     # nodes of the object graph unfolded into a tree
    allow_persistent_ids: bool = False


_LEAVES = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
           "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
           "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "NONE", "NEWTRUE", "NEWFALSE", "FLOAT",
           "BINFLOAT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET", "GLOBAL"}
_TEXT = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
         "GLOBAL"}
_BYTES = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_MARKED = {"LIST", "TUPLE", "DICT", "FROZENSET", "OBJ", "INST"}       # pop to MARK, push one new object
_FIXED = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3, "STACK_GLOBAL": 2}
_INTO_TOP = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}                   # pop n, add them to the object below
_MARKED_INTO_TOP = {"APPENDS", "SETITEMS", "ADDITEMS"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET = {"GET", "BINGET", "LONG_BINGET"}
_TRUNCATED_HINTS = ("remain", "exhausted", "no newline", "not enough", "expected")


@dataclasses.dataclass
class Scan:
    opcodes: int
    nodes: int
    depth: int
    unfolded: int
    end: int                           # offset just past STOP


def scan(f: BinaryIO, size: int, limits: Limits = Limits()) -> Scan:
    """Dry-run the pickle that starts at `f`'s position (`size` bytes at most remain)."""
    edges: list[list[int]] = []        # node -> the nodes it holds
    stack: list[int] = []
    marks: list[int] = []
    memo: dict[int, int] = {}
    fanout: dict[int, int] = {}
    count = 0

    def new(children=()) -> int:
        edges.append(list(children))
        return len(edges) - 1

    def pop(n: int, name: str) -> list[int]:
        floor = marks[-1] if marks else 0
        if len(stack) - floor < n:
            raise ScanError(f"opcode {name} finds too few objects on the pickle stack (a damaged pickle)")
        items = stack[len(stack) - n:] if n else []
        del stack[len(stack) - n:]
        return items

    def pop_mark(name: str) -> list[int]:
        if not marks:
            raise ScanError(f"opcode {name} has no MARK before it (a damaged pickle)")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def top(name: str) -> int:
        floor = marks[-1] if marks else 0
        if len(stack) <= floor:
            raise ScanError(f"opcode {name} finds no object on the pickle stack (a damaged pickle)")
        return stack[-1]

    root = None
    end = 0
    try:
        for op, arg, pos in pickletools.genops(f):
            count += 1
            if count > limits.max_opcodes:
                raise ScanError(f"it has more than {limits.max_opcodes:,} pickle opcodes")
            name = op.name
            if name in _TEXT and isinstance(arg, (str, bytes)) and len(arg) > limits.max_str:
                raise ScanError(f"it holds a text string of {len(arg):,} characters (at most "
                                f"{limits.max_str:,} allowed)")
            if name in _BYTES and len(arg) > limits.max_bytes:
                raise ScanError(f"it holds a byte string of {len(arg):,} bytes (at most {limits.max_bytes:,})")
            if name in ("LONG", "LONG1", "LONG4") and arg.bit_length() > limits.max_int_bits:
                raise ScanError(f"it holds an integer of {arg.bit_length():,} bits (at most "
                                f"{limits.max_int_bits} allowed)")
            if name in _LEAVES:
                stack.append(new())
            elif name == "MARK":
                marks.append(len(stack))
            elif name in _MARKED:
                stack.append(new(pop_mark(name)))
            elif name in _FIXED:
                stack.append(new(pop(_FIXED[name], name)))
            elif name in _INTO_TOP:
                items = pop(_INTO_TOP[name], name)
                edges[top(name)].extend(items)
            elif name in _MARKED_INTO_TOP:
                items = pop_mark(name)
                edges[top(name)].extend(items)
            elif name == "POP":
                if marks and len(stack) == marks[-1]:
                    marks.pop()
                else:
                    pop(1, name)
            elif name == "POP_MARK":
                pop_mark(name)
            elif name == "DUP":
                stack.append(top(name))
            elif name in _PUT or name == "MEMOIZE":
                index = len(memo) if name == "MEMOIZE" else arg
                if not isinstance(index, int) or index < 0 or index > count:
                    raise ScanError(f"it stores memo entry {index!r} after {count:,} opcodes (a memo index "
                                    "no honest pickle uses)")
                memo[index] = top(name)
            elif name in _GET:
                if arg not in memo:
                    raise ScanError(f"it fetches memo entry {arg!r}, which was never stored (a damaged pickle)")
                fanout[arg] = fanout.get(arg, 0) + 1
                if fanout[arg] > limits.max_fanout:
                    raise ScanError(f"it fetches one memo entry more than {limits.max_fanout:,} times")
                stack.append(memo[arg])
            elif name in ("PERSID", "BINPERSID"):
                if not limits.allow_persistent_ids:
                    raise ScanError("it uses persistent ids, which official checkpoint pickles do not")
                stack.append(new(pop(1, name) if name == "BINPERSID" else ()))
            elif name in ("EXT1", "EXT2", "EXT4"):
                raise ScanError("it names objects through the pickle extension registry (EXT opcodes), "
                                "which checkpoints never use")
            elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise ScanError("it uses out-of-band buffers, which checkpoint files never do")
            elif name == "PROTO":
                pass
            elif name == "FRAME":
                if arg > size:
                    raise ScanError(f"a pickle frame declares {arg:,} bytes in a file of {size:,}")
            elif name == "STOP":
                root = pop(1, name)[0]
                end = pos + 1
                break
            else:
                raise ScanError(f"it uses the pickle opcode {name}, which checkpoint files never do")
    except ScanError:
        raise
    except ValueError as err:           # genops: truncated data, unknown opcode, bad argument
        text = str(err)
        raise ScanError(f"{text[:200]}", truncated=any(h in text for h in _TRUNCATED_HINTS)) from None
    if root is None:
        raise ScanError("the pickle ends before its STOP opcode", truncated=True)
    depth, unfolded = _shape(edges, root, limits)
    return Scan(count, len(edges), depth, unfolded, end)


def _shape(edges: list[list[int]], root: int, limits: Limits) -> tuple[int, int]:
    """(depth, unfolded size) of the graph below `root`; a cycle, or either above its limit,
    is refused. Iterative: no recursion however the graph is shaped."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = bytearray(len(edges))
    depth = [0] * len(edges)
    size = [0] * len(edges)
    cap = limits.max_unfolded + 1
    todo: list[tuple[int, int]] = [(root, 0)]
    while todo:
        node, i = todo.pop()
        if i == 0:
            if color[node] == BLACK:
                continue
            if color[node] == GREY:
                raise ScanError("it holds a reference cycle (an object that contains itself), which "
                                "checkpoint data never does")
            color[node] = GREY
        children = edges[node]
        if i < len(children):
            todo.append((node, i + 1))
            child = children[i]
            if color[child] == GREY:
                raise ScanError("it holds a reference cycle (an object that contains itself), which "
                                "checkpoint data never does")
            if color[child] == WHITE:
                todo.append((child, 0))
            continue
        color[node] = BLACK
        d, s = 0, 1
        for child in children:
            d = max(d, depth[child])
            s = min(cap, s + size[child])
        depth[node], size[node] = d + 1, s
        if d + 1 > limits.max_depth:
            raise ScanError(f"its objects nest more than {limits.max_depth} levels deep")
        if s > limits.max_unfolded:
            raise ScanError(f"its objects, unfolded, make more than {limits.max_unfolded:,} nodes: memo "
                            "references that repeat one object over and over (a 'billion laughs' file)")
    return depth[root], size[root]


def scan_bytes(data: bytes, limits: Limits = Limits()) -> Scan:
    import io
    return scan(io.BytesIO(data), len(data), limits)


