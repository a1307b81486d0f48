"""A bounded reader for XGBoost's legacy binary model (save_model / save_raw("deprecated"), xgboost < 3).

Layout (little-endian, raw C structs written by dmlc streams; a string is a u64 length and its bytes,
a vector is a u64 count and its items):

  ["binf"]                       optional magic, written from 1.0 on
  learner param, 136 bytes       base_score f32, num_feature u32, num_class i32, contain_extra_attrs i32,
                                 contain_eval_metrics i32, major u32, minor u32, num_target u32 (2.x),
                                 boost_from_average i32 (2.x), 25 reserved i32
  objective name, booster name   strings
  gbtree / dart:                 param (160 bytes: num_trees i32, num_roots, num_feature, pad, num_pbuffer
                                 i64, num_output_group, size_leaf_vector, 32 reserved), then per tree a
                                 148-byte param (num_roots, num_nodes, num_deleted, max_depth, num_feature,
                                 size_leaf_vector: 0, or 1 from 2.0 on; 31 reserved), num_nodes 20-byte
                                 nodes (parent i32 whose top bit marks a left child, left i32, right i32,
                                 split index u32 whose top bit is default-left, leaf value or split
                                 condition f32) and num_nodes 16-byte stats (loss change, hessian sum,
                                 base weight f32, leaf child count i32);
                                 then tree_info (one i32 output group per tree); dart adds a vector of f32
                                 drop weights
  gblinear:                      param (136 bytes), then a vector of f32 weights
  attributes                     vector of string pairs, when contain_extra_attrs != 0
  before 1.0 only:               count:poisson's max_delta_step string, then the eval metric names
                                 (vector of strings) when contain_eval_metrics != 0

Native loaders size their arrays from these counts and predictors follow the child indices without
checking them, so every count is held against the bytes left and every tree is walked from its roots.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

LEARNER_FORMAT = "<fIiiiIIIi25i"  # the 136-byte learner parameters
GBTREE_PARAM = 160
TREE_PARAM = 148
NODE = 20
STAT = 16
GBLINEAR_PARAM = 136
NODE_BUDGET = 2_000_000  # nodes whose links are walked per file; past it trees are only sized
MAX_PROBLEMS = 40
MAX_NAME = 256
MAX_ATTRIBUTES = 100_000
BOOSTERS = ("gbtree", "dart", "gblinear")
MALFORMED, LINKS = "MA-X121", "MA-X125"
_DELETED = 0xFFFFFFFF
_LOW31 = 0x7FFFFFFF


class LegacyFormatError(Exception):
    """The bytes stop making sense; nothing after this point can be located."""


@dataclass
class LegacySummary:
    objective: str = ""
    booster: str = ""
    version: tuple[int, int] = (0, 0)
    trees: int = 0
    nodes_checked: int = 0
    trees_unwalked: int = 0
    attributes: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (rule code, message)
    stopped: str | None = None  # why parsing stopped early, if it did
    bytes_read: int = 0

    def add(self, rule: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((rule, message))


class _Reader:
    def __init__(self, buf) -> None:  # noqa: ANN001 - bytes, memoryview or mmap
        self.buf, self.pos, self.end = buf, 0, len(buf)

    @property
    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left:
            raise LegacyFormatError(f"{what} needs {n} bytes at offset {self.pos} but {self.left} remain")
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> int:
        """Step over n bytes without copying them; where they start."""
        if n < 0 or n > self.left:
            raise LegacyFormatError(f"{what} needs {n} bytes at offset {self.pos} but {self.left} remain")
        self.pos += n
        return self.pos - n

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def count(self, what: str, item_size: int) -> int:
        """A u64 length or count, held against the bytes that remain before anything is sized from it."""
        at = self.pos
        (n,) = self.unpack("<Q", what)
        if n * item_size > self.left:
            raise LegacyFormatError(f"{what} at offset {at} declares {n} items but only {self.left} bytes remain")
        return n

    def string(self, what: str, limit: int | None = None) -> str:
        at = self.pos
        n = self.count(f"{what} length", 1)
        if limit is not None and n > limit:
            raise LegacyFormatError(f"{what} at offset {at} is {n} bytes long (at most {limit} expected)")
        return self.take(n, what).decode("utf-8", "replace")


def read_legacy(buf, check_deadline: Callable[[], None],  # noqa: ANN001 - bytes, memoryview or mmap
                node_budget: int = NODE_BUDGET) -> LegacySummary:
    """Read and check a whole legacy binary model; problems are collected, never raised."""
    out, rd = LegacySummary(), _Reader(buf)
    try:
        if bytes(buf[:4]) == b"binf":
            rd.pos = 4
        learner = _learner(rd, out)
        if out.booster == "gblinear":
            _gblinear(rd, out, learner)
        else:
            _gbtree(rd, out, learner, check_deadline, node_budget)
        _tail(rd, out, learner)
        if rd.left:
            out.add(MALFORMED, f"{rd.left} bytes follow the model at offset {rd.pos}")
    except LegacyFormatError as exc:
        out.stopped = str(exc)
        out.add(MALFORMED, str(exc))
    out.bytes_read = rd.pos
    return out


@dataclass(frozen=True)
class _Learner:
    num_feature: int
    groups: int
    extra_attrs: bool
    eval_metrics: bool
    major: int


def _learner(rd: _Reader, out: LegacySummary) -> _Learner:
    fields = rd.unpack(LEARNER_FORMAT, "learner parameters")
    base_score, num_feature, num_class, extra, metrics, major, minor, num_target = fields[:8]
    out.version = (major, minor)
    if math.isnan(base_score):
        out.add(MALFORMED, "base_score is NaN")
    if not 0 <= num_class < 1 << 20 or num_feature >= 1 << 31 or major > 16:
        out.add(MALFORMED, f"learner parameters are implausible (num_feature={num_feature}, "
                           f"num_class={num_class}, version={major}.{minor})")
    length_at = rd.pos
    (n,) = rd.unpack("<Q", "objective name length")
    if major == 0 and n >= 0xFFFFFFFF:  # the oldest writers padded the length; their loader skips 4 bytes
        rd.take(4, "objective name padding")
        n >>= 32
    if n > MAX_NAME:
        raise LegacyFormatError(f"objective name at offset {length_at} is {n} bytes long (at most {MAX_NAME})")
    out.objective = rd.take(n, "objective name").decode("utf-8", "replace")
    if not out.objective or not out.objective.isprintable() or not out.objective.isascii():
        raise LegacyFormatError(f"objective name at offset {length_at} is not a readable name")
    out.booster = rd.string("booster name", 16)
    if out.booster not in BOOSTERS:
        raise LegacyFormatError(f"booster name {out.booster[:20]!r} is not one of {', '.join(BOOSTERS)}")
    targets = num_target if major >= 2 and 0 < num_target < 1 << 20 else 1
    return _Learner(num_feature, max(1, num_class, targets), extra != 0, metrics != 0, major)


def _gblinear(rd: _Reader, out: LegacySummary, learner: _Learner) -> None:
    rd.skip(GBLINEAR_PARAM, "gblinear parameters")
    n = rd.count("gblinear weights", 4)
    rd.skip(4 * n, "gblinear weights")
    expected = (learner.num_feature + 1) * learner.groups
    if n < expected:  # the predictor indexes weight[feature * groups + group] and the bias after them
        out.add(LINKS, f"gblinear holds {n} weights but {learner.num_feature} features x {learner.groups} "
                       f"groups plus bias need {expected}")
    elif n != expected:
        out.add(MALFORMED, f"gblinear holds {n} weights, expected {expected}")


def _gbtree(rd: _Reader, out: LegacySummary, learner: _Learner, check_deadline: Callable[[], None],
            node_budget: int) -> None:
    at = rd.pos
    num_trees, _roots, _features, _pad, _pbuffer, _groups, leaf_vector = rd.unpack("<iiiiqii", "gbtree parameters")
    rd.skip(GBTREE_PARAM - 32, "gbtree parameters")
    if num_trees < 0 or num_trees * (TREE_PARAM + NODE + STAT) + 4 * num_trees > rd.left:
        raise LegacyFormatError(f"gbtree parameters at offset {at} declare {num_trees} trees but only "
                                f"{rd.left} bytes remain")
    if leaf_vector not in (0, 1):
        out.add(MALFORMED, f"gbtree size_leaf_vector is {leaf_vector}; xgboost writes 0 or 1")
    out.trees = num_trees
    for index in range(num_trees):
        check_deadline()
        _tree(rd, out, learner, index, node_budget, check_deadline)
    info = rd.take(4 * num_trees, "tree_info")
    bad = [g for (g,) in struct.iter_unpack("<i", info) if not 0 <= g < learner.groups]
    if bad:  # predictors add each tree's output to the column tree_info names
        out.add(LINKS, f"tree_info names output group {bad[0]} but the model has {learner.groups}")
    if out.booster == "dart" and num_trees:
        n = rd.count("dart weight_drop", 4)
        if n != num_trees:
            out.add(MALFORMED, f"dart weight_drop holds {n} weights for {num_trees} trees")
        rd.skip(4 * n, "dart weight_drop")


def _tree(rd: _Reader, out: LegacySummary, learner: _Learner, index: int, node_budget: int,
          check_deadline: Callable[[], None]) -> None:
    at = rd.pos
    roots, num_nodes, num_deleted, _depth, tree_features, leaf_vector = rd.unpack("<6i", f"tree {index} parameters")
    rd.skip(TREE_PARAM - 24, f"tree {index} parameters")
    if num_nodes <= 0 or num_nodes * (NODE + STAT) > rd.left:
        raise LegacyFormatError(f"tree {index} at offset {at} declares {num_nodes} nodes but only "
                                f"{rd.left} bytes remain")
    nodes_at = rd.skip(NODE * num_nodes, f"tree {index} nodes")
    rd.skip(STAT * num_nodes, f"tree {index} node statistics")
    if leaf_vector not in (0, 1):  # 2.x writes 1 (one target); wider leaves never go to this format
        raise LegacyFormatError(f"tree {index} declares size_leaf_vector={leaf_vector}; loaders disagree on "
                                "what follows, so the rest cannot be located")
    if not 1 <= roots <= num_nodes:
        out.add(MALFORMED, f"tree {index} declares {roots} roots for {num_nodes} nodes")
        return
    if out.nodes_checked + num_nodes > node_budget:
        out.trees_unwalked += 1
        return
    out.nodes_checked += num_nodes
    features = learner.num_feature or max(tree_features, 0)
    nodes = bytes(rd.buf[nodes_at:nodes_at + NODE * num_nodes])
    problem = _walk(_Nodes(nodes), roots, num_deleted, features, check_deadline)
    if problem:
        out.add(problem[0], f"tree {index}: {problem[1]}")


class _Nodes:
    """The node array as two flat views of the same bytes (five 4-byte fields a node), without a tuple each."""

    def __init__(self, data: bytes) -> None:
        self.ints, self.floats = array("i"), array("f")
        self.ints.frombytes(data)
        self.floats.frombytes(data)
        if sys.byteorder == "big":
            self.ints.byteswap()
            self.floats.byteswap()
        self.count = len(data) // NODE

    def parent(self, i: int) -> int:
        return self.ints[5 * i]

    def children(self, i: int) -> tuple[int, int]:
        return self.ints[5 * i + 1], self.ints[5 * i + 2]

    def split_index(self, i: int) -> int:
        return self.ints[5 * i + 3] & 0xFFFFFFFF

    def value(self, i: int) -> float:
        return self.floats[5 * i + 4]


def _walk(nodes: _Nodes, roots: int, num_deleted: int, features: int,
          check_deadline: Callable[[], None]) -> tuple[str, str] | None:
    """Follow a tree from its roots; the first problem found, if any."""
    n = nodes.count
    deleted = nodes.ints[5 * roots + 3::5].count(-1)  # split index 0xFFFFFFFF marks a deleted node
    if deleted != num_deleted:  # the loader refuses the model when these disagree
        return MALFORMED, f"num_deleted is {num_deleted} but {deleted} nodes are marked deleted"
    seen = bytearray(n)
    for r in range(roots):
        if nodes.parent(r) != -1:
            return LINKS, f"root {r} has parent {nodes.parent(r)} (roots have none)"
        seen[r] = 1
    stack, steps = list(range(roots)), 0
    while stack:
        i = stack.pop()
        steps += 1
        if steps % 65536 == 0:
            check_deadline()
        problem = _node(nodes, i, roots, features, seen, stack)
        if problem:
            return problem
    stray = next((i for i in range(n) if not seen[i] and nodes.split_index(i) != _DELETED), None)
    if stray is not None:
        return MALFORMED, f"node {stray} is neither reachable from a root nor marked deleted"
    return None


def _node(nodes: _Nodes, i: int, roots: int, features: int, seen: bytearray,
          stack: list[int]) -> tuple[str, str] | None:
    """Check one reachable node and queue its children."""
    sindex, value = nodes.split_index(i), nodes.value(i)
    left, right = nodes.children(i)
    if sindex == _DELETED:
        return LINKS, f"node {i} is reachable but marked deleted"
    if left == -1:
        return None if math.isfinite(value) else (MALFORMED, f"leaf {i} has value {value}")
    if features and sindex & _LOW31 >= features:
        return LINKS, f"node {i} splits on feature {sindex & _LOW31} but the model has {features}"
    if math.isnan(value):
        return MALFORMED, f"node {i} has a NaN split condition"
    for child, is_left in ((left, True), (right, False)):
        if not roots <= child < nodes.count:
            return LINKS, f"node {i} points to child {child} outside nodes {roots}..{nodes.count - 1}"
        if seen[child]:
            return LINKS, f"node {i} points back to node {child} (a loop or shared subtree)"
        back = nodes.parent(child)
        if back & _LOW31 != i or (back < 0) != is_left:
            return LINKS, f"node {child} does not name node {i} as its parent"
        seen[child] = 1
        stack.append(child)
    return None


def _tail(rd: _Reader, out: LegacySummary, learner: _Learner) -> None:
    if learner.extra_attrs:
        for _ in range(_list_count(rd, "attribute count", 16)):
            key = rd.string("attribute name")
            out.attributes.append((key, rd.string(f"attribute {key[:40]!r}")))
    if learner.major >= 1:
        return  # from 1.0 on the metrics and poisson setting travel as attributes
    if out.objective == "count:poisson" and rd.left:
        rd.string("count:poisson max_delta_step", MAX_NAME)
    if learner.eval_metrics:
        for _ in range(_list_count(rd, "eval metric count", 8)):
            rd.string("eval metric name", MAX_NAME)


def _list_count(rd: _Reader, what: str, item_size: int) -> int:
    """A count of strings or string pairs; xgboost writes a handful, the cap bounds the loop and the list."""
    at, n = rd.pos, rd.count(what, item_size)
    if n > MAX_ATTRIBUTES:
        raise LegacyFormatError(f"{what} at offset {at} is {n} (more than {MAX_ATTRIBUTES} are not read)")
    return n
