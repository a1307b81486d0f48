"""Decide a blob's format from its bytes; the extension is only a hint.

`detect(head, name)` returns a Detection with the content format and, when the
extension promises something incompatible, the mismatch to report.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass

from . import pickle_ops

HEAD_SIZE = 64 * 1024

TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

# extension -> (name used in messages, formats that are honest for it)
_PICKLE_LIKE = frozenset({"pickle", "pytorch_legacy", "pytorch_zip", "zlib", "gzip", "bzip2", "xz", "lzma", "lz4",
                          "joblib_zfile"})
_TORCH_LIKE = frozenset({"pytorch_zip", "pytorch_legacy", "pickle", "zip", "tar"})  # tar: torch < 0.1.10
_PICKLE_EXTENSIONS = frozenset({".pkl", ".pickle", ".dill", ".joblib", ".sav", ".pt", ".pth", ".ckpt", ".p"})
_NO_MAGIC = frozenset({".onnx", ".pb", ".msgpack", ".pmml", ".mar", ".tflite"})
_BINARY_NO_MAGIC = frozenset({".onnx", ".pb", ".msgpack"})
_TEXTLIKE = frozenset({"text", "json", "yaml", "script", "empty", "python", "hf_config", "chat_template"})
# JSON files that transformers, PEFT and processors read by name: their scanner checks custom code and templates
HF_CONFIG_NAMES = frozenset({"config.json", "tokenizer_config.json", "generation_config.json", "adapter_config.json",
                             "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json",
                             "special_tokens_map.json", "chat_template.json"})
_SCRIPT_EXTENSIONS = frozenset({".sh", ".bash", ".zsh", ".ps1", ".bat", ".cmd"})
_DOC_EXTENSIONS = frozenset({".md", ".txt", ".rst", ".json", ".yaml", ".yml", ".cfg", ".ini", ".toml", ".csv"})
EXTENSION_FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    ".pkl": ("pickle", _PICKLE_LIKE), ".pickle": ("pickle", _PICKLE_LIKE), ".dill": ("pickle", _PICKLE_LIKE),
    ".joblib": ("joblib", _PICKLE_LIKE), ".sav": ("pickle", _PICKLE_LIKE),
    ".pt": ("pytorch", _TORCH_LIKE), ".pth": ("pytorch", _TORCH_LIKE), ".ckpt": ("pytorch", _TORCH_LIKE),
    ".bin": ("tensor_binary", frozenset({"pytorch_zip", "pytorch_legacy", "safetensors", "gguf", "ggml", "zip",
                                         "numpy", "tflite", "unknown", "hdf5", "onnx", "keras_zip"})),
    ".safetensors": ("safetensors", frozenset({"safetensors"})),
    ".npy": ("numpy", frozenset({"numpy"})),
    ".npz": ("numpy_archive", frozenset({"npz", "zip"})),
    ".txt": ("text", frozenset({"text", "json", "yaml", "empty", "lightgbm"})),
    ".md": ("text", frozenset({"text", "empty"})),
    ".json": ("json", frozenset({"json", "hf_config", "text", "empty", "xgboost_json"})),
    ".yaml": ("yaml", frozenset({"yaml", "json", "text", "empty"})),
    ".yml": ("yaml", frozenset({"yaml", "json", "text", "empty"})),
    ".h5": ("hdf5", frozenset({"hdf5"})), ".hdf5": ("hdf5", frozenset({"hdf5"})),
    ".keras": ("keras", frozenset({"keras_zip", "hdf5"})),
    ".gguf": ("gguf", frozenset({"gguf"})), ".ggml": ("ggml", frozenset({"ggml", "gguf"})),
    ".zip": ("zip", frozenset({"zip", "pytorch_zip", "npz", "keras_zip"})),
    ".tflite": ("tflite", frozenset({"tflite"})),
    ".pte": ("executorch", frozenset({"executorch"})),
    ".7z": ("7z", frozenset({"7z"})), ".lz4": ("lz4", frozenset({"lz4"})),
    ".zst": ("zstd", frozenset({"zstd"})),
    ".ubj": ("xgboost", frozenset({"xgboost_ubj", "xgboost_json"})),
    # XGBoost's customary name: legacy binary before 2.1, UBJSON since (JSON when asked)
    ".bst": ("xgboost", frozenset({"xgboost_binary", "xgboost_ubj", "xgboost_json"})),
    ".cbm": ("catboost", frozenset({"catboost"})),
}


@dataclass(frozen=True)
class Detection:
    format: str
    extension: str
    expected: str | None = None  # what the extension promised, when it disagrees

    @property
    def mismatch(self) -> bool:
        return self.expected is not None


def detect(head: bytes, name: str, size: int | None = None) -> Detection:
    base = os.path.basename(name.lower())  # some formats go by their file name
    ext = os.path.splitext(base)[1]
    fmt = _code_or_config(_booster_or_xml(content_format(head, size), head, ext, size), head, base, ext)
    if fmt == "zip" and ext == ".keras":
        fmt = "keras_zip"  # Keras opens any zip named .keras as a model archive
    expected = None
    hint = EXTENSION_FORMATS.get(ext)
    if hint is not None and fmt not in hint[1]:
        expected = hint[0]
    if fmt == "unknown" and (ext in _PICKLE_EXTENSIONS or head[:1] == b"\x80"):
        fmt = "pickle"  # loaders will unpickle it whatever it looks like: let the walker judge
        expected = None if hint is None or fmt in hint[1] else hint[0]
    if ext in _NO_MAGIC and (fmt == "unknown" or (fmt in _TEXTLIKE and ext in _BINARY_NO_MAGIC)):
        # protobuf and friends have no magic, and a small protobuf can even decode as text:
        # trust the extension so that their scanner, not the text check, decides
        fmt = ext[1:]
        expected = None
    tensorflow = _tensorflow_format(base, ext, head, fmt)
    if tensorflow is not None:
        fmt, expected = tensorflow
    return Detection(fmt, ext, expected)


_TF_PROTOBUF_NAMES = frozenset({"saved_model.pb", "keras_metadata.pb", "fingerprint.pb"})
_NOT_MAGIC = _TEXTLIKE | {"unknown", "pb", "zlib", "lzma", "pickle"}  # what a few protobuf bytes can pass for
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}


def _tensorflow_format(base: str, ext: str, head: bytes, fmt: str) -> tuple[str, str | None] | None:
    """TensorFlow protobufs, recognised by name: protobuf has no magic (format, expected)."""
    if ext == ".pbtxt":
        return ("pbtxt", None) if fmt in _TEXTLIKE or fmt == "unknown" else (fmt, "tensorflow text protobuf")
    if base in _TF_PROTOBUF_NAMES:
        # TensorFlow parses these whatever their first bytes look like
        return ("pb", None) if fmt in _NOT_MAGIC else (fmt, "tensorflow protobuf")
    if ext == ".meta" and (fmt == "unknown" or (fmt in _TEXTLIKE and any(b in _CONTROL for b in head[:4096]))):
        return "pb", None  # a MetaGraphDef; text .meta files (Unity, YAML) stay text
    return None


_UBJSON_INT = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8}
_XGB_JSON = re.compile(rb'\A\s*\{\s*"learner"\s*:\s*\{')
_XGB_GBMS = (b"gbtree", b"gblinear", b"dart")
_LIGHTGBM = re.compile(rb"tree\r?\nversion=")
_MARKUP = re.compile(rb"[\xef\xbb\xbf \t\r\n]*<")  # a tag after any byte-order mark and blank space


def _booster_or_xml(fmt: str, head: bytes, ext: str, size: int | None) -> str:
    """Gradient-boosting models (XGBoost, LightGBM, CatBoost) and XML without a declaration, by content."""
    if fmt not in ("unknown", "text", "json"):
        return fmt
    if head.startswith(b"CBM1"):
        return "catboost"
    if _ubjson_learner(head):
        return "xgboost_ubj"
    if (head.startswith(b"binf") and (fmt == "unknown" or _xgboost_legacy(head, 4))) or _xgboost_legacy(head, 0):
        return "xgboost_binary"
    if fmt == "json" and _XGB_JSON.match(head) and (b'"version"' in head or (size or 0) > len(head)):
        return "xgboost_json"
    if fmt == "text" and _LIGHTGBM.match(head):
        return "lightgbm"
    if fmt == "text" and _MARKUP.match(head) and (ext in (".pmml", ".xml") or b"<PMML" in head):
        return "xml"
    return fmt


def _ubjson_learner(head: bytes) -> bool:
    """XGBoost's UBJSON models open with the object key "learner"."""
    width = _UBJSON_INT.get(head[1:2])
    if head[:1] != b"{" or width is None:
        return False
    return int.from_bytes(head[2:2 + width], "big") == 7 and head[2 + width:9 + width] == b"learner"


def _xgboost_legacy(head: bytes, start: int) -> bool:
    """XGBoost < 1.0 binary: a 136-byte learner header, then the objective and booster names."""
    pos = start + 136
    if len(head) < pos + 8:
        return False
    obj_len = int.from_bytes(head[pos:pos + 8], "little")
    if not 1 <= obj_len <= 64 or not head[pos + 8:pos + 8 + obj_len].isascii():
        return False
    pos += 8 + obj_len
    gbm_len = int.from_bytes(head[pos:pos + 8], "little")
    return head[pos + 8:pos + 8 + gbm_len] in _XGB_GBMS


def _code_or_config(fmt: str, head: bytes, base: str, ext: str) -> str:
    """Formats decided by name among text files: code, scripts, model configs; TorchServe archives."""
    if fmt == "zip" and ext == ".mar":
        return "torchserve"
    if fmt == "script":  # a shebang
        if ext in _DOC_EXTENSIONS or base.startswith("readme"):
            return "text"
        return "python" if b"python" in head[:head.find(b"\n") if b"\n" in head[:256] else 256] else "script"
    if fmt in ("text", "json"):
        if ext in (".py", ".pyw"):
            return "python"
        if ext in _SCRIPT_EXTENSIONS:
            return "script"
        if ext == ".jinja":
            return "chat_template"
        if fmt == "json" and base in HF_CONFIG_NAMES:
            return "hf_config"
    if fmt == "unknown" and ext == ".pyc" and head[2:4] == b"\r\n":
        return "python_bytecode"
    return fmt


def detect_path(path: str) -> Detection:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_SIZE)
    return detect(head, os.path.basename(path), os.path.getsize(path))


_GGML_MAGICS = (b"lmgg", b"fmgg", b"tjgg", b"algg", b"ggla", b"ggjt", b"ggmf", b"ggml")
_MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
# Every start _signature_format looks for: content that has none of them (text, tensor bytes, most
# archive members) skips its checks. Flatbuffer identifiers (TFLite, ExecuTorch) sit at offset 4.
_SIGNATURE_STARTS = (TORCH_LEGACY_MAGIC, b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"GGUF", *_GGML_MAGICS,
                     b"\x89HDF\r\n\x1a\n", b"\x7fELF", *_MACHO_MAGICS, b"MZ", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
                     b"7z\xbc\xaf\x27\x1c", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd", b"ZF0x")


def content_format(head: bytes, size: int | None = None) -> str:  # noqa: PLR0911 - a flat table reads best
    if not head:
        return "empty"
    if head.startswith(_SIGNATURE_STARTS) or head[4:6] in (b"TF", b"ET"):
        fmt = _signature_format(head)
        if fmt is not None:
            return fmt
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if _hdf5_after_user_block(head):
        return "hdf5"  # whatever the user block looks like, HDF5 readers (h5py, Keras) open the file
    if _is_safetensors(head, size):
        return "safetensors"
    if pickle_ops.probe(head):  # before zlib: "(S" and "(d" also pass zlib's header check
        return "pickle"
    if _is_zlib(head):
        return "zlib"
    if head.startswith(b"]\x00\x00") and len(head) >= 13:
        return "lzma"
    if head.startswith(b"#!"):
        return "script"
    return _text_format(head)


def _signature_format(head: bytes) -> str | None:  # noqa: PLR0911 - a flat table reads best
    """Formats told by a magic number (in this order: a few heads could pass two checks)."""
    if head.startswith(TORCH_LEGACY_MAGIC):
        return "pytorch_legacy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return zip_flavour(head)
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head[:4] in _GGML_MAGICS:
        return "ggml"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x7fELF") or head[:4] in _MACHO_MAGICS:
        return "executable"
    if head.startswith(b"MZ") and _is_pe(head):
        return "executable"
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if len(head) >= 8 and head[4:6] == b"ET" and head[6:8].isdigit() and struct.unpack_from("<I", head)[0] < 1 << 24:
        return "executorch"  # flatbuffer file identifier ET12 …; a small root offset rules out text
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"ZF0x") and len(head) > 22 and all(c in b"0123456789abcdefx " for c in head[2:21]):
        return "joblib_zfile"  # joblib.load still reads its pre-0.10 compressed format
    return None


def zip_flavour(head: bytes) -> str:
    """Tell a torch checkpoint or an npz from a plain zip by the first member names."""
    names = _local_names(head)
    if any(n.endswith("data.pkl") or n.endswith("/constants.pkl") for n in names) or _torch_writer(head):
        return "pytorch_zip"
    if any(n.startswith("MAR-INF/") for n in names):
        return "torchserve"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    if "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names):
        return "keras_zip"
    return "zip"


def _torch_writer(head: bytes) -> bool:
    """torch's zip writer (torch.save, torch.jit.save) streams entries under one folder, padding with 'FB' fields."""
    if len(head) < 34 or not struct.unpack_from("<H", head, 6)[0] & 0x08:
        return False
    name_len = struct.unpack_from("<H", head, 26)[0]
    return "/" in head[30:30 + name_len].decode("utf-8", "replace") and head[30 + name_len:32 + name_len] == b"FB"


def _local_names(head: bytes, limit: int = 64) -> list[str]:
    names, pos = [], 0
    while len(names) < limit and head.startswith(b"PK\x03\x04", pos) and pos + 30 <= len(head):
        flags, _, _, _, _, csize, _, nlen, xlen = struct.unpack_from("<HHHHIIIHH", head, pos + 6)
        names.append(head[pos + 30:pos + 30 + nlen].decode("utf-8", "replace"))
        if flags & 0x08:  # sizes follow the data: stop walking local headers
            break
        pos += 30 + nlen + xlen + csize
    return names


def _hdf5_after_user_block(head: bytes) -> bool:
    """HDF5 looks for its signature at 0, 512, 1024, 2048 … (after a user block)."""
    offset = 512
    while offset + 8 <= len(head):
        if head[offset:offset + 8] == b"\x89HDF\r\n\x1a\n":
            return True
        offset *= 2
    return False


def _is_pe(head: bytes) -> bool:
    if len(head) < 0x40:
        return False
    offset = struct.unpack_from("<I", head, 0x3C)[0]
    return offset + 4 <= len(head) and head[offset:offset + 4] == b"PE\x00\x00"


def _is_safetensors(head: bytes, size: int | None) -> bool:
    if len(head) < 10:
        return False
    header_len = struct.unpack_from("<Q", head)[0]
    if header_len < 2 or (size is not None and 8 + header_len > size) or header_len > 100 * 1024 * 1024:
        return False
    return head[8:9] == b"{" and (len(head) < 8 + header_len or head[8 + header_len - 1:8 + header_len] in (b"}", b" "))


def _is_zlib(head: bytes) -> bool:
    if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] >> 4) > 7 or (head[0] << 8 | head[1]) % 31:
        return False
    try:
        zlib.decompressobj().decompress(head[:4096], 64)
    except zlib.error:
        return False
    return True


def _text_format(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Windows tools write it)
        text = _legacy_text(head[: len(head) & ~1], "utf-16")
    elif b"\x00" in head:
        return "unknown"
    else:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            cut_at_end = exc.start >= len(head) - 4  # a character cut at the end of the sample is fine
            text = head[: exc.start].decode("utf-8") if cut_at_end else _legacy_text(head, "cp1252")
    if text is None:
        return "unknown"
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        return "json"
    if stripped.startswith(("<?xml", "<PMML", "<pmml")):
        return "xml"
    return "text"


def _legacy_text(head: bytes, encoding: str) -> str | None:
    """Text in UTF-16 or a single-byte legacy code page (config files written on Windows), or None.

    Binary data decodes too, so it only counts as text when it has no control characters besides
    whitespace and is mostly ASCII (accented names and comments, not an opaque blob)."""
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError:
        return None
    if any(ch < " " and ch not in "\t\n\r\f" for ch in text):
        return None
    return text if sum(ch.isascii() for ch in text) >= 0.9 * len(text) else None
