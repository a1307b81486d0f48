"""onnx: ModelProto read straight from the protobuf wire format (no onnx, no onnxruntime).

Walks the main graph, training graphs, subgraphs held in node attributes (If/Loop/Scan
bodies) and the model-local function library, and reports: operators from custom domains
and unknown operators in standard ones, operators that run Python code, external-data
locations that leave the model's directory (by name or through a symbolic link), external
ranges past the end of the referenced file, missing external files, tensors whose sizes
disagree with their shape and type, code or secrets in metadata, and malformed protobuf.
The file is read through an mmap; tensor payloads are measured, never copied.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._findings import CappedFindings
from ..errors import BudgetExceeded, ScanTimeout
from ._metadata_checks import check_metadata_value
from ._protobuf import COUNT, REPEATED, Message, ProtobufError, Reader, ReadLimits, Span
from .base import BaseScanner, IssueSeverity

MAX_PER_RULE = 50  # findings of one rule per file; the rest are summarised
MAX_ELEMENTS = 1 << 40  # no real tensor holds a trillion elements
MAX_LABEL = 240  # characters of a node's path kept in messages
MAX_DIGITS = 40  # of an external offset or length: more than any file needs, and int() refuses thousands
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# --- domains and operators ------------------------------------------------------------------
#: Domains the ONNX specification defines ("" and "ai.onnx" are the same default domain).
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview",
                          "ai.onnx.preview.training"})
#: Domains whose kernels are compiled into onnxruntime itself (contrib ops, NCHWc and NHWC layout
#: rewrites written into optimised models): using them loads no code from outside the runtime.
RUNTIME_DOMAINS = frozenset({"com.microsoft", "com.microsoft.experimental", "com.microsoft.nchwc",
                             "com.ms.internal.nhwc"})
#: Operators that hand their inputs to Python code named by the model or the process: onnxruntime's
#: language-interop PyOp (attributes module/class_name/compute, any domain) and the training
#: PythonOp/PythonOpGrad (com.microsoft, a torch.autograd.Function named by func_name).
PYTHON_OPS = frozenset({"PyOp", "PythonOp", "PythonOpGrad"})
_DEFAULT_OPS = frozenset("""
Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
Bernoulli BitCast BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike
CausalConvWithState Ceil Celu CenterCropPad Clip Col2Im Compress Concat ConcatFromSequence Constant
ConstantOfShape Conv ConvInteger ConvTranspose Cos Cosh CumProd CumSum DFT DeformConv DepthToSpace
DequantizeLinear Det Div Dropout DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU
Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageDecoder
InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual LinearAttention Log
LogSoftmax Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean
MeanVarianceNormalization MelWeightMatrix Min Mish Mod Mul Multinomial Neg NegativeLogLikelihoodLoss
NonMaxSuppression NonZero Not OneHot Optional OptionalGetElement OptionalHasElement Or PRelu Pad Pow QLinearConv
QLinearMatMul QuantizeLinear RMSNormalization RNN RandomNormal RandomNormalLike RandomUniform RandomUniformLike
Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare RegexFullMatch Relu Reshape Resize ReverseSequence RoiAlign RotaryEmbedding Round STFT
Scan Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty SequenceErase
SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze StringConcat
StringNormalizer StringSplit Sub Sum SwiGLU Swish Tan Tanh TensorScatter TfIdfVectorizer ThresholdedRelu Tile
TopK Transpose Trilu Unique Unsqueeze Upsample Where Xor
Affine ConstantFill Crop DynamicSlice GivenTensorFill GRUUnit ImageScaler ParametricSoftplus Scale ScaledTanh
MemcpyFromHost MemcpyToHost
""".split())  # every opset's operators (onnx 1.23), the experimental ones of the first opsets, and the copies
# onnxruntime inserts in this domain when it saves an optimised model
_ML_OPS = frozenset("""
ArrayFeatureExtractor Binarizer CastMap CategoryMapper DictVectorizer FeatureVectorizer Imputer LabelEncoder
LinearClassifier LinearRegressor Normalizer OneHotEncoder SVMClassifier SVMRegressor Scaler TreeEnsemble
TreeEnsembleClassifier TreeEnsembleRegressor ZipMap
""".split())
#: operator names checked per domain (the preview and training domains change too often to list)
STANDARD_OPS = {"": _DEFAULT_OPS, "ai.onnx": _DEFAULT_OPS, "ai.onnx.ml": _ML_OPS}

# --- TensorProto.DataType: name, bits per element in raw_data (0: variable), typed field ---------
DTYPES: dict[int, tuple[str, int, str]] = {
    1: ("FLOAT", 32, "float_data"), 2: ("UINT8", 8, "int32_data"), 3: ("INT8", 8, "int32_data"),
    4: ("UINT16", 16, "int32_data"), 5: ("INT16", 16, "int32_data"), 6: ("INT32", 32, "int32_data"),
    7: ("INT64", 64, "int64_data"), 8: ("STRING", 0, "string_data"), 9: ("BOOL", 8, "int32_data"),
    10: ("FLOAT16", 16, "int32_data"), 11: ("DOUBLE", 64, "double_data"), 12: ("UINT32", 32, "uint64_data"),
    13: ("UINT64", 64, "uint64_data"), 14: ("COMPLEX64", 64, "float_data"), 15: ("COMPLEX128", 128, "double_data"),
    16: ("BFLOAT16", 16, "int32_data"), 17: ("FLOAT8E4M3FN", 8, "int32_data"), 18: ("FLOAT8E4M3FNUZ", 8, "int32_data"),
    19: ("FLOAT8E5M2", 8, "int32_data"), 20: ("FLOAT8E5M2FNUZ", 8, "int32_data"), 21: ("UINT4", 4, "int32_data"),
    22: ("INT4", 4, "int32_data"), 23: ("FLOAT4E2M1", 4, "int32_data"), 24: ("FLOAT8E8M0", 8, "int32_data"),
    25: ("UINT2", 2, "int32_data"), 26: ("INT2", 2, "int32_data"), 27: ("FLOAT6E2M3", 6, "int32_data"),
    28: ("FLOAT6E3M2", 6, "int32_data"),
}
EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})
TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")

# --- schema: the parts of onnx.proto this scanner reads (field numbers from onnx.proto) ------
ENTRY = Message("StringStringEntryProto").define(key=(1, "string"), value=(2, "string"))
OPSET = Message("OperatorSetIdProto").define(domain=(1, "string"), version=(2, "int"))
SEGMENT = Message("TensorProto.Segment").define(begin=(1, "int"), end=(2, "int"))
TENSOR = Message("TensorProto").define(
    dims=(1, "int", REPEATED), data_type=(2, "int"), segment=(3, SEGMENT), float_data=(4, "float", COUNT),
    int32_data=(5, "int", COUNT), string_data=(6, "bytes", COUNT), int64_data=(7, "int", COUNT),
    name=(8, "string"), raw_data=(9, "bytes"), double_data=(10, "double", COUNT),
    uint64_data=(11, "uint", COUNT), external_data=(13, ENTRY, REPEATED), data_location=(14, "enum"))
SPARSE = Message("SparseTensorProto").define(values=(1, TENSOR), indices=(2, TENSOR))
GRAPH, NODE, ATTRIBUTE = Message("GraphProto"), Message("NodeProto"), Message("AttributeProto")
ATTRIBUTE.define(name=(1, "string"), s=(4, "string"), t=(5, TENSOR), g=(6, GRAPH), tensors=(10, TENSOR, REPEATED),
                 graphs=(11, GRAPH, REPEATED), sparse_tensor=(22, SPARSE), sparse_tensors=(23, SPARSE, REPEATED))
NODE.define(name=(3, "string"), op_type=(4, "string"), attribute=(5, ATTRIBUTE, REPEATED), domain=(7, "string"),
            overload=(8, "string"))
GRAPH.define(node=(1, NODE, REPEATED), name=(2, "string"), initializer=(5, TENSOR, REPEATED),
             sparse_initializer=(15, SPARSE, REPEATED))
FUNCTION = Message("FunctionProto").define(
    name=(1, "string"), node=(7, NODE, REPEATED), opset_import=(9, OPSET, REPEATED), domain=(10, "string"),
    attribute_proto=(11, ATTRIBUTE, REPEATED), overload=(13, "string"))
TRAINING = Message("TrainingInfoProto").define(initialization=(1, GRAPH), algorithm=(2, GRAPH))
MODEL = Message("ModelProto").define(
    ir_version=(1, "int"), producer_name=(2, "string"), graph=(7, GRAPH), opset_import=(8, OPSET, REPEATED),
    metadata_props=(14, ENTRY, REPEATED), training_info=(20, TRAINING, REPEATED),
    functions=(25, FUNCTION, REPEATED))


class _Findings(CappedFindings):
    """At most MAX_PER_RULE findings per rule in one file, then one summary per rule."""

    def __init__(self, result, location: str) -> None:  # noqa: ANN001
        super().__init__(result, location, cap=MAX_PER_RULE)


@dataclass
class _Parts:
    """Everything the checks look at, each with a human-readable place in the model."""

    nodes: list[tuple[str, dict]] = field(default_factory=list)
    tensors: list[tuple[str, dict]] = field(default_factory=list)
    functions: set[tuple[str, str]] = field(default_factory=set)
    graphs: int = 0


class OnnxScanner(BaseScanner):
    name = "onnx"
    description = "ONNX graphs, operators, initializers and external data read from the protobuf wire format"
    supported_extensions = [".onnx"]
    formats = ("onnx",)
    read_limits = ReadLimits()

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        report = _Findings(result, blob.location)
        model: dict[str, Any] = {}
        stopped: Exception | None = None
        with blob.buffer() as buf:
            reader = Reader(buf, self.read_limits, tick=ctx.check_deadline, budget_rule="MA-O009")
            try:
                _, error = reader.decode(MODEL, out=model)
            except (BudgetExceeded, ScanTimeout) as exc:
                error, stopped = None, exc
        result.bytes_scanned += blob.size - reader.skipped  # tensor payloads are measured, not read
        if error is not None:
            _report_malformed(error, report)
            result.mark_incomplete()
        elif stopped is None:
            _check_structure(model, report)
        parts = collect(model)
        _check_operators(parts, report)
        _check_metadata(model, report)
        _check_tensors(parts, blob.path, report)
        report.close()
        domains = sorted({o.get("domain", "") for o in model.get("opset_import", [])})
        result.add_check("onnx model", report.total() == 0 and error is None,
                         f"{parts.graphs} graphs, {len(parts.nodes)} nodes, {len(parts.tensors)} tensors, "
                         f"opsets {domains}", blob.location)
        if stopped is not None:
            raise stopped


def _report_malformed(error: ProtobufError, report: _Findings) -> None:
    report("MA-O001", f"Malformed ONNX protobuf: {error}; loaders reject the file or read it differently, and "
           "nothing after this point was checked", {"offset": error.offset, "reason": error.reason})


def _check_structure(model: dict, report: _Findings) -> None:
    """A parse that stops cleanly on a field boundary can still be a cut-off or foreign file."""
    missing = [key for key in ("ir_version", "graph") if key not in model]
    if model.get("ir_version", 0) >= 3 and not model.get("opset_import"):
        missing.append("opset_import")
    if missing:
        report("MA-O001", f"ONNX model has no {' or '.join(missing)}: the file is cut short, empty or not a "
               "ModelProto, and loaders reject it", {"missing": missing})


# --- walking the model ------------------------------------------------------------------
def collect(model: dict) -> _Parts:
    """All nodes and tensors of the model: main and training graphs, attribute subgraphs, functions."""
    parts = _Parts()
    queue: list[tuple[str, dict]] = []
    if "graph" in model:
        queue.append(("graph", model["graph"]))
    for index, info in enumerate(model.get("training_info", [])):
        queue.extend((f"training_info[{index}].{key}", info[key]) for key in ("initialization", "algorithm")
                     if key in info)
    for fn in model.get("functions", []):
        where = f"function {fn.get('domain', '')}::{fn.get('name', '')}"
        parts.functions.add((fn.get("domain", ""), fn.get("name", "")))
        _add_nodes(fn.get("node", []), where, parts, queue)
        for attr in fn.get("attribute_proto", []):
            _add_attribute(attr, where, parts, queue)
    done = 0
    while done < len(queue):  # breadth first, so nesting never recurses
        where, graph = queue[done]
        done += 1
        parts.graphs += 1
        for tensor in graph.get("initializer", []):
            parts.tensors.append((f"{where} initializer {tensor.get('name', '')[:120]!r}", tensor))
        for sparse in graph.get("sparse_initializer", []):
            _add_sparse(sparse, f"{where} sparse initializer", parts)
        _add_nodes(graph.get("node", []), where, parts, queue)
    return parts


def _add_nodes(nodes: list[dict], where: str, parts: _Parts, queue: list) -> None:
    where = where if len(where) <= MAX_LABEL else "..." + where[-MAX_LABEL:]  # deep nesting stays bounded
    for index, node in enumerate(nodes):
        label = f"{where}/{node.get('name', '')[:80] or '#' + str(index)} ({node.get('op_type', '')[:80]})"
        parts.nodes.append((label, node))
        for attr in node.get("attribute", []):
            _add_attribute(attr, label, parts, queue)


def _add_attribute(attr: dict, where: str, parts: _Parts, queue: list) -> None:
    label = f"{where}.{attr.get('name', '?')[:80]}"
    queue.extend((label, graph) for graph in _one_or_many(attr, "g", "graphs"))
    parts.tensors.extend((label, tensor) for tensor in _one_or_many(attr, "t", "tensors"))
    for sparse in _one_or_many(attr, "sparse_tensor", "sparse_tensors"):
        _add_sparse(sparse, label, parts)


def _add_sparse(sparse: dict, where: str, parts: _Parts) -> None:
    parts.tensors.extend((f"{where} {key}", sparse[key]) for key in ("values", "indices") if key in sparse)


def _one_or_many(message: dict, one: str, many: str) -> list[dict]:
    return ([message[one]] if one in message else []) + message.get(many, [])


# --- operators and metadata -------------------------------------------------------------
def _check_operators(parts: _Parts, report: _Findings) -> None:
    custom: dict[str, Counter] = {}
    unknown: Counter = Counter()
    for where, node in parts.nodes:
        domain, op = node.get("domain", ""), node.get("op_type", "")
        if op in PYTHON_OPS:
            _report_python_op(where, node, report)
        elif (domain, op) in parts.functions:
            continue  # a call of a model-local function, whose body is checked as well
        elif domain in ONNX_DOMAINS:
            known = STANDARD_OPS.get(domain)
            if known is not None and op not in known:
                unknown[(domain, op)] += 1
        elif domain not in RUNTIME_DOMAINS:
            custom.setdefault(domain, Counter())[op] += 1
    for domain, ops in sorted(custom.items()):
        extra = (" (onnxruntime-extensions: its operators may be Python functions registered by the loading "
                 "process)") if domain == "ai.onnx.contrib" else ""
        report("MA-O002", f"Operators from custom domain {domain!r}{extra}: {_op_list(ops)}; running the model "
               "needs a custom operator library whose code is not part of the file",
               {"domain": domain, "operators": dict(ops)})
    for (domain, op), count in sorted(unknown.items()):
        report("MA-O003", f"Operator {op!r} ({count} node{'s' if count > 1 else ''}) is not defined in the "
               f"standard ONNX domain {domain or 'ai.onnx'!r}", {"domain": domain, "operator": op, "nodes": count})


def _report_python_op(where: str, node: dict, report: _Findings) -> None:
    attrs = {a.get("name", ""): a["s"][:200] for a in node.get("attribute", [])[:32] if "s" in a}
    target = ".".join(attrs[k] for k in ("module", "class_name", "compute", "func_name") if attrs.get(k))
    named = f" calling {target!r}" if target else ""
    report("MA-O004", f"{where}: operator {node.get('domain') or 'ai.onnx'}::{node.get('op_type')}{named} runs "
           "Python code named by the model when the graph executes",
           {"node": where, "domain": node.get("domain", ""), "op_type": node.get("op_type"), "attributes": attrs})


def _op_list(ops: Counter) -> str:
    shown = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in ops.most_common(10))
    return shown + (f" and {len(ops) - 10} more" if len(ops) > 10 else "")


def _check_metadata(model: dict, report: _Findings) -> None:
    for entry in model.get("metadata_props", []):
        key, value = entry.get("key", ""), entry.get("value", "")
        check_metadata_value(report, key, value)


# --- tensors ----------------------------------------------------------------------------
@dataclass
class _ExternalRef:
    where: str
    offset: str | None
    length: str | None
    need: int | None  # bytes the shape and type call for


def _check_tensors(parts: _Parts, model_path: str | None, report: _Findings) -> None:
    refs: dict[str, list[_ExternalRef]] = {}
    for where, tensor in parts.tensors:
        external = tensor.get("data_location") == EXTERNAL
        problem, need = tensor_problem(tensor, external)
        if problem:
            report("MA-O008", f"Tensor {where}: {problem}", {"tensor": where})
        if external or tensor.get("external_data"):
            _gather_external(tensor, where, need, refs, report)
    for location, items in refs.items():
        _check_location(location, items, model_path, report)


def element_count(tensor: dict) -> tuple[int, str | None]:
    dims = tensor.get("dims", [])
    if any(d < 0 for d in dims):
        return 0, f"negative dimension in dims {dims[:16]}"
    if any(d > MAX_ELEMENTS for d in dims):
        return 0, f"absurd dimension in dims {dims[:16]}"
    count = 0 if 0 in dims else 1
    for dim in dims if count else ():
        count *= dim
        if count > MAX_ELEMENTS:
            return 0, f"dims {dims[:16]} describe more than 2**40 elements"
    segment = tensor.get("segment")
    if segment is not None:
        begin, end = segment.get("begin", 0), segment.get("end", 0)
        if not 0 <= begin <= end <= count:
            return 0, f"segment [{begin}, {end}) lies outside the {count} elements of the tensor"
        count = end - begin
    return count, None


def tensor_problem(tensor: dict, external: bool) -> tuple[str | None, int | None]:
    """What is inconsistent about a tensor's size (or None), and the bytes its shape needs."""
    code = tensor.get("data_type", 0)
    if code not in DTYPES:
        return (f"data_type {code} is not a TensorProto data type" if code else "has no data_type"), None
    name, bits, typed = DTYPES[code]
    count, problem = element_count(tensor)
    if problem:
        return problem, None
    need = -(-count * bits // 8) if bits else None
    raw: Span | None = tensor.get("raw_data")
    sources = [f for f in TYPED_FIELDS if tensor.get(f)] + ["raw_data"] * (raw is not None) + ["external"] * external
    if len(sources) > 1:
        return f"values are stored in more than one place ({', '.join(sources)}); readers disagree on which wins", need
    if not sources:
        return (f"declares {count} {name} elements but carries no data" if count else None), need
    source = sources[0]
    if source == "external":
        return ("STRING tensors cannot be stored as external data" if need is None else None), need
    if source == "raw_data":
        if need is None:
            return "STRING values are stored in raw_data, which ONNX forbids", None
        return (None if raw.length == need else
                f"raw_data holds {raw.length} bytes but {count} {name} elements need {need}"), need
    if source != typed:
        return f"{name} values are stored in {source}, which is not the field for that type", need
    have, want = tensor[source], typed_entries(code, bits, count)
    return (None if have == want else f"{source} holds {have} values but {count} {name} elements need {want}"), need


def typed_entries(code: int, bits: int, count: int) -> int:
    """How many entries of its typed field a tensor of `count` elements fills."""
    if code in (14, 15):  # complex: real and imaginary parts
        return 2 * count
    if bits in (2, 4):  # packed several to an int32_data entry
        return -(-count * bits // 8)
    return count


# --- external data ----------------------------------------------------------------------
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]")


def _gather_external(tensor: dict, where: str, need: int | None, refs: dict, report: _Findings) -> None:
    entries = tensor.get("external_data", [])
    values = {e.get("key", ""): e.get("value", "") for e in entries}
    locations = [e.get("value", "") for e in entries if e.get("key") == "location"]
    if not locations or not any(locations):
        report("MA-O006", f"Tensor {where} stores its data externally but names no location", {"tensor": where})
        return
    odd = sorted(set(values) - EXTERNAL_KEYS)
    if odd:
        report("MA-O006", f"Tensor {where} has unknown external_data keys {odd[:8]}; older onnx releases copy "
               "every key onto an internal object with setattr", {"tensor": where, "keys": odd[:32]})
    if len(set(locations)) > 1:
        report("MA-O006", f"Tensor {where} names several external locations {locations[:4]}; readers disagree "
               "on which is used", {"tensor": where, "locations": locations[:16]})
    for location in dict.fromkeys(locations):
        refs.setdefault(location, []).append(_ExternalRef(where, values.get("offset"), values.get("length"), need))


def location_problem(location: str) -> tuple[str, bool] | None:
    """Why an external-data location is unsafe, and whether it escapes the model directory."""
    if "\x00" in location:
        return "contains a NUL byte, which cuts the path short in C/C++ loaders", True
    if location.startswith(("/", "\\")):
        return "is an absolute path", True
    if _DRIVE.match(location):
        return "starts with a Windows drive letter", True
    if any(part.strip(" .") == "" and ".." in part for part in _SEPARATORS.split(location)):
        return "climbs out of the model directory with '..'", True
    if "\\" in location:
        return "contains backslashes, which are separators on Windows but not on POSIX", False
    return None


def _check_location(location: str, refs: list[_ExternalRef], model_path: str | None, report: _Findings) -> None:
    tensors = [r.where for r in refs]
    details = {"location": location, "tensors": len(refs), "first_tensor": tensors[0]}
    found = location_problem(location)
    if found is not None:
        why, escapes = found
        effect = "files outside its directory" if escapes else "a path that names different files on different systems"
        report("MA-O005", f"External data location {location!r} {why} (used by {len(refs)} tensor(s), first "
               f"{tensors[0]}); loading the model reads {effect}", details, None if escapes else IssueSeverity.WARNING)
        if escapes:
            return
    for ref in refs:
        _check_numbers(location, ref, report)
    if model_path is None:
        return  # a member of a container: there is no directory to resolve against
    status, real, size = resolve_external(model_path, location)
    if status == "escapes":
        report("MA-O005", f"External data location {location!r} resolves through a symbolic link to {real}, "
               "outside the model's directory", {**details, "resolved": real})
    elif status == "missing":
        report("MA-O007", f"External data file {location!r} does not exist next to the model "
               f"({len(refs)} tensor(s) need it)", details)
    elif status == "not a file":
        report("MA-O006", f"External data location {location!r} is not a regular file", details)
    else:
        for ref in refs:
            _check_range(location, ref, size, report)


def resolve_external(model_path: str, location: str) -> tuple[str, str, int]:
    """('ok' | 'escapes' | 'missing' | 'not a file', resolved path, size) for a location beside the model."""
    base = os.path.dirname(os.path.abspath(model_path))
    real = os.path.realpath(os.path.join(base, location))
    # loaders resolve against the directory as given; a model that is itself a link (a hub cache) may
    # also keep its data beside the link's target
    roots = {os.path.realpath(base), os.path.dirname(os.path.realpath(model_path))}
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        return "escapes", real, 0
    if not os.path.exists(real):
        return "missing", real, 0
    if not os.path.isfile(real):
        return "not a file", real, 0
    return "ok", real, os.path.getsize(real)


def _number(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.strip().isdigit() or len(text.strip()) > MAX_DIGITS:
        return None
    return int(text)


def _check_numbers(location: str, ref: _ExternalRef, report: _Findings) -> None:
    for key, text in (("offset", ref.offset), ("length", ref.length)):
        if text is not None and _number(text) is None:
            report("MA-O006", f"Tensor {ref.where}: external {key} {text[:40]!r} is not a non-negative integer "
                   f"of at most {MAX_DIGITS} digits",
                   {"tensor": ref.where, "location": location, key: text[:100]})
    length = _number(ref.length)
    if length is not None and ref.need is not None and length != ref.need:
        report("MA-O008", f"Tensor {ref.where}: external length {length} bytes but its shape and type need "
               f"{ref.need}", {"tensor": ref.where, "location": location, "length": length, "needed": ref.need})


def _check_range(location: str, ref: _ExternalRef, size: int, report: _Findings) -> None:
    offset, length = _number(ref.offset) or 0, _number(ref.length)
    end = offset + (length if length is not None else (ref.need or 0))
    if offset > size or end > size:
        report("MA-O006", f"Tensor {ref.where}: external data [{offset}, {end}) runs past the end of "
               f"{location!r} ({size} bytes)", {"tensor": ref.where, "location": location, "offset": offset,
                                               "end": end, "file_size": size})
