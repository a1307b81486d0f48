"""TensorFlow protobufs written byte by byte, with the field numbers and layout TensorFlow uses.

TensorFlow is not a test dependency (its wheel pins h5py below the version this environment uses),
so the SavedModel, GraphDef and MetaGraphDef fixtures are built here: fields in field-number order,
map entries sorted by key. The honest
model mirrors what `tf.saved_model.save` writes for a Dense layer (variables read through
ReadVariableOp in a `__call__` function, the standard saver and restore functions, the object
graph), attributes equal to their op's default stripped as the SavedModel writer does. These bytes
were checked against TensorFlow 2.21: its generated protobuf classes parse them and re-serialize
them to the same bytes, and `tf.graph_util.import_graph_def` accepts the graph with its library.
"""

from __future__ import annotations

import struct
from pathlib import Path

DT_FLOAT, DT_INT32, DT_STRING, DT_BOOL, DT_RESOURCE = 1, 3, 7, 10, 20


# --- wire format ------------------------------------------------------------------------------
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def ln(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field."""
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def vi(number: int, value: int) -> bytes:
    """A varint field."""
    return varint(number << 3) + varint(value)


def entry(number: int, key: str, value: bytes) -> bytes:
    """One entry of a map<string, message> field."""
    return ln(number, ln(1, key) + ln(2, value))


# --- framework messages ---------------------------------------------------------------------
def shape(*dims: int) -> bytes:
    return b"".join(ln(2, vi(1, d)) for d in dims)


def tensor(dtype: int, dims: tuple[int, ...] = (), strings: tuple[bytes | str, ...] = (), ints: tuple[int, ...] = (),
           content: bytes = b"") -> bytes:
    body = vi(1, dtype) + ln(2, shape(*dims))
    if content:
        body += ln(4, content)
    if ints:
        body += ln(7, b"".join(varint(i) for i in ints))
    return body + b"".join(ln(8, s) for s in strings)


class A:
    """AttrValue builders (attr_value.proto)."""

    @staticmethod
    def s(value: bytes | str) -> bytes:
        return ln(2, value)

    @staticmethod
    def i(value: int) -> bytes:
        return vi(3, value)

    @staticmethod
    def b(value: bool) -> bytes:
        return vi(5, int(value))

    @staticmethod
    def type(dtype: int) -> bytes:
        return vi(6, dtype)

    @staticmethod
    def shape(*dims: int) -> bytes:
        return ln(7, shape(*dims))

    @staticmethod
    def tensor(*args, **kwargs) -> bytes:  # noqa: ANN002, ANN003
        return ln(8, tensor(*args, **kwargs))

    @staticmethod
    def func(name: str) -> bytes:
        return ln(10, ln(1, name))

    @staticmethod
    def list(strings: tuple = (), ints: tuple = (), types: tuple = (), shapes: tuple = ()) -> bytes:
        body = b"".join(ln(2, s) for s in strings)
        body += ln(3, b"".join(varint(i) for i in ints)) if ints else b""
        body += ln(6, b"".join(varint(t) for t in types)) if types else b""
        body += b"".join(ln(7, shape(*s)) for s in shapes)
        return ln(1, body)


def node(name: str, op: str, *inputs: str, device: str = "", **attrs: bytes) -> bytes:
    body = ln(1, name) + ln(2, op) + b"".join(ln(3, i) for i in inputs)
    body += ln(4, device) if device else b""
    return body + b"".join(entry(5, key, attrs[key]) for key in sorted(attrs))


def const_string(name: str, *values: str) -> bytes:
    dims = (len(values),) if len(values) != 1 else ()
    return node(name, "Const", dtype=A.type(DT_STRING), value=A.tensor(DT_STRING, dims, strings=values))


def const_int(name: str, value: int) -> bytes:
    return node(name, "Const", dtype=A.type(DT_INT32), value=A.tensor(DT_INT32, ints=(value,)))


def function(name: str, inputs: list[tuple[str, int]], outputs: list[tuple[str, int]], nodes: list[bytes],
             ret: dict[str, str]) -> bytes:
    signature = ln(1, name) + b"".join(ln(2, ln(1, n) + vi(3, t)) for n, t in inputs)
    signature += b"".join(ln(3, ln(1, n) + vi(3, t)) for n, t in outputs)
    signature += vi(17, 1) if any(t == DT_RESOURCE for _, t in inputs) else b""  # is_stateful
    body = ln(1, signature) + b"".join(ln(3, n) for n in nodes)
    return body + b"".join(ln(4, ln(1, k) + ln(2, ret[k])) for k in sorted(ret))


def graph(nodes: list[bytes], functions: list[bytes] = (), producer: int = 2129) -> bytes:
    body = b"".join(ln(1, n) for n in nodes)
    if functions:
        body += ln(2, b"".join(ln(1, f) for f in functions))
    return body + ln(4, vi(1, producer) + vi(2, 12))


def call(name: str, fn: str, *inputs: str, tin: tuple[int, ...], tout: tuple[int, ...] = (DT_FLOAT,)) -> bytes:
    return node(name, "StatefulPartitionedCall", *inputs, Tin=A.list(types=tin), Tout=A.list(types=tout),
                _collective_manager_ids=A.list(), _read_only_resource_inputs=A.list(ints=tuple(
                    i for i, t in enumerate(tin) if t == DT_RESOURCE)),
                config_proto=A.s(b"\n\x07\n\x03CPU\x10\x01\n\x07\n\x03GPU\x10\x002\x02J\x008\x01"), f=A.func(fn))


# --- the honest model ---------------------------------------------------------------------------
CALL, SIGNATURE, SAVE, RESTORE = ("__inference___call___22", "__inference_signature_wrapper_32",
                                  "__inference__traced_save_70", "__inference__traced_restore_85")
NAMES = ("w/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE", "_CHECKPOINTABLE_OBJECT_GRAPH")
F = {"T": A.type(DT_FLOAT)}


def call_nodes() -> list[bytes]:
    """x @ w + b, relu: the body of the model's __call__."""
    return [
        node("MatMul/ReadVariableOp", "ReadVariableOp", "matmul_readvariableop_resource", dtype=A.type(DT_FLOAT)),
        node("MatMul", "MatMul", "x", "MatMul/ReadVariableOp:value:0", **F),
        node("BiasAdd/ReadVariableOp", "ReadVariableOp", "biasadd_readvariableop_resource", dtype=A.type(DT_FLOAT)),
        node("BiasAdd", "BiasAdd", "MatMul:product:0", "BiasAdd/ReadVariableOp:value:0", **F),
        node("Relu", "Relu", "BiasAdd:output:0", **F),
        node("Identity", "Identity", "Relu:activations:0", "^NoOp", **F),
        node("NoOp", "NoOp", "^BiasAdd/ReadVariableOp", "^MatMul/ReadVariableOp"),
    ]


def save_function() -> bytes:
    reads = []
    for i, var in enumerate(("w", "b")):
        read, arg = ("Read" if i == 0 else f"Read_{i}"), f"read{'' if i == 0 else f'_{i}'}_disablecopyonread_{var}"
        reads += [node(f"{read}/DisableCopyOnRead", "DisableCopyOnRead", arg),
                  node(f"{read}/ReadVariableOp", "ReadVariableOp", arg, f"^{read}/DisableCopyOnRead",
                       dtype=A.type(DT_FLOAT)),
                  node(f"Identity_{2 * i}" if i else "Identity", "Identity", f"{read}/ReadVariableOp:value:0", **F),
                  node(f"Identity_{2 * i + 1}", "Identity", f"{'Identity_' + str(2 * i) if i else 'Identity'}:output:0",
                       **F)]
    nodes = [
        node("StaticRegexFullMatch", "StaticRegexFullMatch", "file_prefix", pattern=A.s("^s3://.*")),
        const_string("Const", ".part"), const_string("Const_1", "_temp/part"),
        node("Select", "Select", "StaticRegexFullMatch:output:0", "Const:output:0", "Const_1:output:0",
             T=A.type(DT_STRING)),
        node("StringJoin", "StringJoin", "file_prefix", "Select:output:0", N=A.i(2)),
        *reads,
        const_int("num_shards", 1), const_int("ShardedFilename/shard", 0),
        node("ShardedFilename", "ShardedFilename", "StringJoin:output:0", "ShardedFilename/shard:output:0",
             "num_shards:output:0"),
        const_string("SaveV2/tensor_names", *NAMES), const_string("SaveV2/shape_and_slices", "", "", ""),
        node("SaveV2", "SaveV2", "ShardedFilename:filename:0", "SaveV2/tensor_names:output:0",
             "SaveV2/shape_and_slices:output:0", "Identity_1:output:0", "Identity_3:output:0", "savev2_const",
             dtypes=A.list(types=(DT_FLOAT, DT_FLOAT, DT_STRING))),
        node("MergeV2Checkpoints/checkpoint_prefixes", "Pack", "ShardedFilename:filename:0", "^SaveV2", N=A.i(1),
             T=A.type(DT_STRING)),
        node("MergeV2Checkpoints", "MergeV2Checkpoints", "MergeV2Checkpoints/checkpoint_prefixes:output:0",
             "file_prefix"),
        node("Identity_4", "Identity", "file_prefix", "^MergeV2Checkpoints", T=A.type(DT_STRING)),
        node("Identity_5", "Identity", "Identity_4:output:0", "^NoOp", T=A.type(DT_STRING)),
        node("NoOp", "NoOp", "^MergeV2Checkpoints", "^Read/DisableCopyOnRead", "^Read/ReadVariableOp",
             "^Read_1/DisableCopyOnRead", "^Read_1/ReadVariableOp"),
    ]
    return function(SAVE, [("file_prefix", DT_STRING), ("read_disablecopyonread_w", DT_RESOURCE),
                           ("read_1_disablecopyonread_b", DT_RESOURCE), ("savev2_const", DT_STRING)],
                    [("identity_5", DT_STRING)], nodes, {"identity_5": "Identity_5:output:0"})


def restore_function() -> bytes:
    nodes = [
        const_string("RestoreV2/tensor_names", *NAMES), const_string("RestoreV2/shape_and_slices", "", "", ""),
        node("RestoreV2", "RestoreV2", "file_prefix", "RestoreV2/tensor_names:output:0",
             "RestoreV2/shape_and_slices:output:0", dtypes=A.list(types=(DT_FLOAT, DT_FLOAT, DT_STRING))),
        node("Identity", "Identity", "RestoreV2:tensors:0", **F),
        node("AssignVariableOp", "AssignVariableOp", "assignvariableop_w", "Identity:output:0",
             dtype=A.type(DT_FLOAT)),
        node("Identity_1", "Identity", "RestoreV2:tensors:1", **F),
        node("AssignVariableOp_1", "AssignVariableOp", "assignvariableop_1_b", "Identity_1:output:0",
             dtype=A.type(DT_FLOAT)),
        node("NoOp", "NoOp"),
        node("Identity_2", "Identity", "file_prefix", "^AssignVariableOp", "^AssignVariableOp_1", "^NoOp",
             T=A.type(DT_STRING)),
        node("Identity_3", "Identity", "Identity_2:output:0", "^NoOp_1", T=A.type(DT_STRING)),
        node("NoOp_1", "NoOp", "^AssignVariableOp", "^AssignVariableOp_1"),
    ]
    return function(RESTORE, [("file_prefix", DT_STRING), ("assignvariableop_w", DT_RESOURCE),
                              ("assignvariableop_1_b", DT_RESOURCE)], [("identity_3", DT_STRING)], nodes,
                    {"identity_3": "Identity_3:output:0"})


def honest_functions(body: list[bytes] | None = None) -> list[bytes]:
    wrapper = [call("StatefulPartitionedCall", CALL, "x", "unknown", "unknown_0",
                    tin=(DT_FLOAT, DT_RESOURCE, DT_RESOURCE)),
               node("Identity", "Identity", "StatefulPartitionedCall:output:0", "^NoOp", **F),
               node("NoOp", "NoOp", "^StatefulPartitionedCall")]
    args = [("x", DT_FLOAT), ("matmul_readvariableop_resource", DT_RESOURCE),
            ("biasadd_readvariableop_resource", DT_RESOURCE)]
    return [function(CALL, args, [("identity", DT_FLOAT)], body or call_nodes(), {"identity": "Identity:output:0"}),
            function(SIGNATURE, [("x", DT_FLOAT), ("unknown", DT_RESOURCE), ("unknown_0", DT_RESOURCE)],
                     [("identity", DT_FLOAT)], wrapper, {"identity": "Identity:output:0"}),
            save_function(), restore_function()]


def variable(name: str, *dims: int) -> list[bytes]:
    return [node(name, "VarHandleOp", _output_shapes=A.list(shapes=((),)), debug_name=A.s(f"{name}/"),
                 dtype=A.type(DT_FLOAT), shape=A.shape(*dims), shared_name=A.s(name)),
            node(f"{name}/Read/ReadVariableOp", "ReadVariableOp", name, dtype=A.type(DT_FLOAT))]


def honest_graph_nodes() -> list[bytes]:
    return [
        node("serving_default_x", "Placeholder", dtype=A.type(DT_FLOAT), shape=A.shape(-1, 4)),
        *variable("w", 4, 3), *variable("b", 3),
        call("StatefulPartitionedCall", SIGNATURE, "serving_default_x", "w", "b",
             tin=(DT_FLOAT, DT_RESOURCE, DT_RESOURCE)),
        node("NoOp", "NoOp"),
        const_string("Const", "\n\x0c\n\x05\x08\x01\x12\x01w"),
        node("saver_filename", "Placeholder", dtype=A.type(DT_STRING), shape=A.shape()),
        call("StatefulPartitionedCall_1", SAVE, "saver_filename", "w", "b", "Const",
             tin=(DT_STRING, DT_RESOURCE, DT_RESOURCE, DT_STRING), tout=(DT_STRING,)),
        call("StatefulPartitionedCall_2", RESTORE, "saver_filename", "w", "b",
             tin=(DT_STRING, DT_RESOURCE, DT_RESOURCE), tout=(DT_STRING,)),
    ]


def object_graph(functions: tuple[str, ...] = (CALL, SIGNATURE), keras_metadata: bytes | None = None) -> bytes:
    version = ln(2, vi(1, 1) + vi(2, 1))
    user = ln(1, "_generic_user_object") + version
    if keras_metadata is not None:
        user = ln(1, "_tf_keras_layer") + version + ln(3, keras_metadata)
    children = b"".join(ln(1, vi(1, i) + ln(2, n)) for i, n in ((1, "w"), (2, "b"), (3, "__call__"), (4, "signatures")))
    nodes = [children + ln(4, user),
             ln(7, vi(1, DT_FLOAT) + ln(2, shape(4, 3)) + vi(3, 1) + ln(6, "w")),
             ln(7, vi(1, DT_FLOAT) + ln(2, shape(3)) + vi(3, 1) + ln(6, "b")),
             ln(6, ln(1, CALL)),
             ln(1, vi(1, 5) + ln(2, "serving_default")) + ln(4, ln(1, "signature_map") + version),
             ln(8, ln(1, SIGNATURE) + ln(2, "x") + vi(3, 1))]
    body = b"".join(ln(1, n) for n in nodes)
    return body + b"".join(entry(2, name, ln(2, varint(1) + varint(2))) for name in sorted(functions))


def meta_graph(graph_bytes: bytes, objects: bytes | None = None, assets: list[tuple[str, str]] = (),
               tags: tuple[str, ...] = ("serve",)) -> bytes:
    info = b"".join(ln(4, t) for t in tags) + ln(5, "2.21.0") + ln(6, "v2.21.0-rc0") + vi(7, 1)
    saver = ln(1, "saver_filename:0") + ln(2, "StatefulPartitionedCall_1:0") + ln(3, "StatefulPartitionedCall_2")
    saver += vi(4, 5) + vi(5, 1) + varint(6 << 3 | 5) + struct.pack("<f", 10000.0) + vi(7, 2)
    tensor_info = ln(1, "serving_default_x:0") + vi(2, DT_FLOAT) + ln(3, shape(-1, 4))
    outputs = ln(1, "StatefulPartitionedCall:0") + vi(2, DT_FLOAT) + ln(3, shape(-1, 3))
    signature = entry(1, "x", tensor_info) + entry(2, "output_0", outputs) + ln(3, "tensorflow/serving/predict")
    body = ln(1, info) + ln(2, graph_bytes) + ln(3, saver) + entry(5, "serving_default", signature)
    body += b"".join(ln(6, ln(1, ln(1, t)) + ln(2, f)) for t, f in assets)
    return body + (ln(7, objects) if objects is not None else b"")


def saved_model(*metas: bytes) -> bytes:
    return vi(1, 1) + b"".join(ln(2, m) for m in metas)


def honest_saved_model(body: list[bytes] | None = None, extra_nodes: list[bytes] = (),
                       extra_functions: list[bytes] = (), assets: list[tuple[str, str]] = (),
                       objects: bytes | None = None) -> bytes:
    functions = honest_functions(body) + list(extra_functions)
    g = graph(honest_graph_nodes() + list(extra_nodes), functions)
    return saved_model(meta_graph(g, objects if objects is not None else object_graph(), assets))


FINGERPRINT = vi(1, 0x1F2E3D4C5B6A7988) + vi(2, 0x1234) + vi(3, 0x5678) + vi(4, 0x9ABC) + vi(5, 0xDEF0) + ln(6, vi(1, 1))


def write_saved_model(directory: Path, model: bytes | None = None, *, assets: dict[str, bytes] | None = None,
                      variables: bool = True, keras_metadata: bytes | None = None) -> Path:
    """A SavedModel directory as tf.saved_model.save lays it out; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "saved_model.pb").write_bytes(honest_saved_model() if model is None else model)
    (directory / "fingerprint.pb").write_bytes(FINGERPRINT)
    if variables:
        (directory / "variables").mkdir(exist_ok=True)
        (directory / "variables" / "variables.index").write_bytes(b"\x00\x00\x01\x0a\x08\x01" + bytes(40))
        (directory / "variables" / "variables.data-00000-of-00001").write_bytes(bytes(60))
    if assets:
        (directory / "assets").mkdir(exist_ok=True)
        for name, data in assets.items():
            (directory / "assets" / name).write_bytes(data)
    if keras_metadata is not None:
        (directory / "keras_metadata.pb").write_bytes(keras_metadata)
    return directory


def keras_metadata(*objects: tuple[str, str, str]) -> bytes:
    """keras_metadata.pb: (node_path, identifier, metadata JSON) per object (keras saved_metadata.proto)."""
    nodes = b"".join(ln(1, vi(2, i) + ln(3, p) + ln(4, ident) + ln(5, meta) + ln(6, vi(1, 2) + vi(2, 1)))
                     for i, (p, ident, meta) in enumerate(objects))
    return nodes
