"""Walking what the restricted unpickler built, bounded: the tree of pickled networks
(sub-modules, TF components) and the plain-data kwargs they carry. Nothing here recurses,
so a deep or cyclic structure in a file is refused, not a RecursionError."""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterator

import numpy as np

from ganrepro.checkpoints.unpickler import CheckpointError, EasyDict

MAX_TENSORS = 100_000                  # tensors of one network
MAX_NESTING = 32                       # sub-modules / components within each other
MAX_KWARG_NODES = 10_000
MAX_KWARG_DEPTH = 16


def plain_kwargs(value: Any, what: str) -> dict:
    """`value` if it is a dict of plain data (str keys; None, bool, numbers, short strings,
    lists, tuples and dicts of them), bounded in size and depth; refused otherwise. Walked
    without recursion, so a deep or cyclic structure is refused, not a RecursionError."""
    if not isinstance(value, dict):
        raise CheckpointError(f"its {what} are a {type(value).__name__}, not a dict")
    todo, nodes = [(value, 1)], 0
    while todo:
        item, depth = todo.pop()
        nodes += 1
        if nodes > MAX_KWARG_NODES or depth > MAX_KWARG_DEPTH:
            raise CheckpointError(f"its {what} nest deeper than {MAX_KWARG_DEPTH} levels or hold more than "
                                  f"{MAX_KWARG_NODES:,} values")
        if item is None or type(item) in (bool, float) or isinstance(item, (np.number, np.bool_)):
            continue
        if type(item) is int:
            if item.bit_length() > 64:
                raise CheckpointError(f"its {what} hold an integer of {item.bit_length()} bits")
        elif type(item) is str:
            if len(item) > 10_000:
                raise CheckpointError(f"its {what} hold a string of {len(item):,} characters")
        elif type(item) in (list, tuple):
            todo.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict) and type(item) in (dict, EasyDict, collections.OrderedDict):
            for k, v in item.items():
                if type(k) is not str or len(k) > 200:
                    raise CheckpointError(f"its {what} have a key that is not a short string")
                todo.append((v, depth + 1))
        else:
            raise CheckpointError(f"its {what} hold a {type(item).__name__}, which is not plain data")
    return value


def walk_tree(root: Any, root_name: str, kind: str, where: str) -> Iterator[tuple[Any, str, str, Callable]]:
    """Depth-first, without recursion, over a tree of pickled networks: yields (node, name,
    prefix, push), where push(child, child_prefix) queues a child (pushed last, visited
    first). A node met twice (a cycle or a shared child) or nested deeper than MAX_NESTING
    is refused, naming the `kind` of node and `where` it is."""
    seen: set[int] = set()
    todo = [(root, "", 0)]
    while todo:
        node, prefix, depth = todo.pop()
        name = prefix[:-1] or root_name
        if id(node) in seen:
            raise CheckpointError(f"{kind} {name!r} appears twice in {where} (a cycle or a shared {kind})")
        if depth > MAX_NESTING:
            raise CheckpointError(f"the {kind}s of {where} nest more than {MAX_NESTING} levels deep")
        seen.add(id(node))
        yield node, name, prefix, lambda child, child_prefix, depth=depth: todo.append((child, child_prefix, depth + 1))
