"""Which TensorFlow operations reach outside the graph, shared by the SavedModel and TFLite scanners.

A graph is data until it runs, and most operations only compute on tensors. The ones listed here
run Python code, load native code, touch the file system or talk to the network when a loader or a
server executes the graph. The ordinary checkpoint ops an honest SavedModel carries (SaveV2,
RestoreV2, MergeV2Checkpoints and friends) read and write under a prefix the loader feeds at run
time; they are only findings when a constant path outside the model is wired into them.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: operations that call Python code registered in the loading process, or load native code
CODE_OPS: dict[str, str] = {
    "PyFunc": "calls a Python function registered in the loading process (tf.numpy_function/tf.py_func)",
    "PyFuncStateless": "calls a Python function registered in the loading process (tf.py_func)",
    "EagerPyFunc": "calls a Python function registered in the loading process (tf.py_function)",
    "LoadLibrary": "is named after tf.load_op_library, which loads a native shared library",
}


class FileOp(NamedTuple):
    what: str
    paths: tuple[int, ...] = ()  # inputs that name a file, directory or address


#: operations that read or write files, or open network connections, whenever they run
FILE_OPS: dict[str, FileOp] = {
    "ReadFile": FileOp("reads a whole file", (0,)),
    "WriteFile": FileOp("writes a file", (0,)),
    "MatchingFiles": FileOp("lists the files matching a pattern", (0,)),
    "ImmutableConst": FileOp("memory-maps the file named by its memory_region_name attribute"),
    "WholeFileReader": FileOp("reads whole files named by a queue"),
    "WholeFileReaderV2": FileOp("reads whole files named by a queue"),
    "TextLineReader": FileOp("reads text files named by a queue"),
    "TextLineReaderV2": FileOp("reads text files named by a queue"),
    "FixedLengthRecordReader": FileOp("reads record files named by a queue"),
    "FixedLengthRecordReaderV2": FileOp("reads record files named by a queue"),
    "TFRecordReader": FileOp("reads TFRecord files named by a queue"),
    "TFRecordReaderV2": FileOp("reads TFRecord files named by a queue"),
    "LMDBReader": FileOp("reads LMDB databases named by a queue"),
    "TFRecordDataset": FileOp("reads TFRecord files", (0,)),
    "TFRecordDatasetV2": FileOp("reads TFRecord files", (0,)),
    "TextLineDataset": FileOp("reads text files", (0,)),
    "FixedLengthRecordDataset": FileOp("reads record files", (0,)),
    "FixedLengthRecordDatasetV2": FileOp("reads record files", (0,)),
    "CSVDataset": FileOp("reads CSV files", (0,)),
    "CSVDatasetV2": FileOp("reads CSV files", (0,)),
    "ExperimentalCSVDataset": FileOp("reads CSV files", (0,)),
    "LMDBDataset": FileOp("reads LMDB databases", (0,)),
    "ExperimentalLMDBDataset": FileOp("reads LMDB databases", (0,)),
    "MatchingFilesDataset": FileOp("lists the files matching patterns", (0,)),
    "ExperimentalMatchingFilesDataset": FileOp("lists the files matching patterns", (0,)),
    "SqlDataset": FileOp("runs a SQL query against a database file", (1,)),
    "ExperimentalSqlDataset": FileOp("runs a SQL query against a database file", (1,)),
    "SaveDataset": FileOp("writes a dataset to a directory", (1,)),
    "SaveDatasetV2": FileOp("writes a dataset to a directory", (1,)),
    "LoadDataset": FileOp("reads a dataset from a directory", (0,)),
    "DistributedSave": FileOp("writes a dataset to a directory through a tf.data service", (1, 2)),
    "DatasetToTFRecord": FileOp("writes a dataset to a TFRecord file", (1,)),
    "ExperimentalDatasetToTFRecord": FileOp("writes a dataset to a TFRecord file", (1,)),
    "SnapshotDataset": FileOp("reads and writes dataset snapshots in a directory", (1,)),
    "SnapshotDatasetV2": FileOp("reads and writes dataset snapshots in a directory", (1,)),
    "SnapshotDatasetReader": FileOp("reads dataset snapshots from a directory", (0,)),
    "SnapshotChunkDataset": FileOp("reads a dataset snapshot file", (0,)),
    "ListSnapshotChunksDataset": FileOp("lists dataset snapshot files", (0,)),
    "CreateSummaryFileWriter": FileOp("writes TensorBoard event files to a directory", (1,)),
    "CreateSummaryDbWriter": FileOp("writes summaries to a database", (1,)),
    "CalibrationStatisticsSaver": FileOp("writes the file named by its output_file_path attribute"),
    "FileSystemSetConfiguration": FileOp("changes the configuration of a file system"),
    "RpcClient": FileOp("connects to an RPC server", (0,)),
    "RpcServer": FileOp("starts an RPC server listening on an address", (0,)),
    "RpcServerStart": FileOp("starts an RPC server"),
    "RpcCall": FileOp("calls a remote procedure"),
    "Rpc": FileOp("calls a remote procedure at an address", (0,)),
    "TryRpc": FileOp("calls a remote procedure at an address", (0,)),
    "DataServiceDataset": FileOp("reads data from a tf.data service at an address", (2,)),
    "DataServiceDatasetV2": FileOp("reads data from a tf.data service at an address", (2,)),
    "DataServiceDatasetV3": FileOp("reads data from a tf.data service at an address", (2,)),
    "DataServiceDatasetV4": FileOp("reads data from a tf.data service at an address", (2,)),
    "RegisterDataset": FileOp("sends a dataset to a tf.data service at an address", (1,)),
    "RegisterDatasetV2": FileOp("sends a dataset to a tf.data service at an address", (1,)),
}

#: checkpoint and vocabulary ops every honest model uses; their paths are fed by the loader
QUIET_FILE_OPS: dict[str, FileOp] = {
    "SaveV2": FileOp("writes a checkpoint", (0,)), "Save": FileOp("writes a checkpoint", (0,)),
    "SaveSlices": FileOp("writes a checkpoint", (0,)), "MergeV2Checkpoints": FileOp("writes a checkpoint", (0, 1)),
    "RestoreV2": FileOp("reads a checkpoint", (0,)), "Restore": FileOp("reads a checkpoint", (0,)),
    "RestoreSlice": FileOp("reads a checkpoint", (0,)), "DTensorRestoreV2": FileOp("reads a checkpoint", (0,)),
    "InitializeTableFromTextFile": FileOp("reads a vocabulary file", (1,)),
    "InitializeTableFromTextFileV2": FileOp("reads a vocabulary file", (1,)),
}

#: ops that dump tensors to the URLs in their debug_urls attribute (file:// or grpc://)
DEBUG_OPS = frozenset({"DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
                       "DebugNumericSummary"})
#: ops that read a protobuf descriptor set from the file named by descriptor_source
DESCRIPTOR_OPS = frozenset({"DecodeProtoV2", "EncodeProto"})

#: ops whose output is (part of) their input's value, followed when resolving a path input
PASS_THROUGH = {"Identity": (0,), "Snapshot": (0,), "PlaceholderWithDefault": (0,), "ShardedFilename": (0,),
                "ShardedFilespec": (0,)}

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,30})://")


def outside_path(value: str) -> str | None:
    """Why a constant path or address points outside the model (None when it is relative)."""
    value = value.strip()
    scheme = _SCHEME.match(value)
    if scheme:
        return f"is a {scheme.group(1)}:// URL"
    if "\x00" in value:
        return "contains a NUL byte"
    if value.startswith(("/", "\\")) or _DRIVE.match(value):
        return "is an absolute path"
    if value.startswith("~"):
        return "starts in a home directory"
    if any(part == ".." for part in re.split(r"[\\/]", value)):
        return "climbs out with '..'"
    return None


def file_url(value: str) -> bool:
    return value.strip().lower().startswith("file://")
