"""Facts about ExecuTorch programs (.pte) that the ExecuTorch scanner needs.

A program is a flatbuffer (schema executorch_flatbuffer.Program, file identifier "ET12"); the
field numbers below follow the schema's declaration order, a union taking two slots (its type
byte, then its value). Exporters may place an extended header inside the flatbuffer's padding at
byte 8, and large data (delegate blobs, constant tensors, named data) in segments after the
flatbuffer, at offsets relative to the header's segment base.
"""

from __future__ import annotations

IDENTIFIER = b"ET12"

# --- extended header at byte 8: magic, header length (u32), then little-endian u64 values ---------
HEADER_AT = 8
HEADER_MAGIC = b"eh00"
HEADER_MIN_LENGTH = 24  # magic, length, program size, segment base offset
HEADER_FULL_LENGTH = 32  # ... and the size of the segment data

# --- table fields -------------------------------------------------------------------------------
# Program
PROGRAM_VERSION, PROGRAM_PLANS, PROGRAM_CONSTANT_BUFFERS, PROGRAM_DELEGATE_DATA = 0, 1, 2, 3
PROGRAM_SEGMENTS, PROGRAM_CONSTANT_SEGMENT, PROGRAM_MUTABLE_SEGMENTS, PROGRAM_NAMED_DATA = 4, 5, 6, 7
# ExecutionPlan
PLAN_NAME, PLAN_VALUES, PLAN_INPUTS, PLAN_OUTPUTS, PLAN_CHAINS, PLAN_OPERATORS, PLAN_DELEGATES = 0, 2, 3, 4, 5, 6, 7
PLAN_BUFFER_SIZES = 8
# Chain
CHAIN_INPUTS, CHAIN_OUTPUTS, CHAIN_INSTRUCTIONS = 0, 1, 2
# Instruction: the InstructionArguments union (type 0 is NONE)
INSTR_TYPE, INSTR_VALUE = 0, 1
KERNEL_CALL, DELEGATE_CALL, MOVE_CALL, JUMP_FALSE_CALL, FREE_CALL = 1, 2, 3, 4, 5
# EValue: the KernelTypes union (type 0 is NONE, so Null is 1); Tensor and the tensor lists point at
# other data
EVALUE_TYPE, EVALUE_VALUE = 0, 1
KT_TENSOR, KT_TENSOR_LIST, KT_OPTIONAL_TENSOR_LIST = 5, 10, 11
KERNEL_TYPES = 11  # the highest KernelTypes member
# Tensor
TENSOR_SCALAR_TYPE, TENSOR_SIZES, TENSOR_DIM_ORDER, TENSOR_DATA_BUFFER, TENSOR_ALLOCATION = 0, 2, 3, 5, 6
TENSOR_EXTRA_INFO = 9
# ExtraTensorInfo
EXTRA_MUTABLE_SEGMENT, EXTRA_NAME, EXTRA_LOCATION = 0, 1, 2
# BackendDelegate, BackendDelegateDataReference, CompileSpec
DELEGATE_ID, DELEGATE_PROCESSED, DELEGATE_SPECS = 0, 1, 2
REF_LOCATION, REF_INDEX = 0, 1
LOCATION_INLINE, LOCATION_SEGMENT = 0, 1
SPEC_KEY, SPEC_VALUE = 0, 1
# DataSegment, SubsegmentOffsets, NamedData, Buffer / BackendDelegateInlineData
SEGMENT_OFFSET, SEGMENT_SIZE = 0, 1
SUBSEGMENT_INDEX, SUBSEGMENT_OFFSETS = 0, 1
NAMED_KEY, NAMED_SEGMENT = 0, 1
BYTES_FIELD = 0

#: ScalarType -> bytes per element (the enum of scalar_type.fbs; codes 8-10 and 18-21 are not used)
SCALAR_BYTES: dict[int, int] = {
    0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 2, 6: 4, 7: 8, 11: 1, 12: 1, 13: 1, 14: 4, 15: 2, 16: 1, 17: 1, 22: 2,
    23: 1, 24: 1, 25: 1, 26: 1, 27: 2, 28: 4, 29: 8,
}

#: Operator namespaces that ExecuTorch's exporters emit and its own kernel libraries implement: ATen
#: and the runtime's primitive ops, the quantized and dim-order kernels, device copies, the LLM
#: extension's custom ops (llama, preprocess), torchao's low-bit kernels and the Cadence and
#: Cortex-M kernel libraries. Any other namespace needs a kernel the application links in itself.
KNOWN_NAMESPACES = frozenset({
    "aten", "executorch_prim", "quantized_decomposed", "dim_order_ops", "et_copy", "llama", "preprocess",
    "torchao", "cadence", "cortex_m",
})

#: Backend ids of the delegates ExecuTorch ships (the id is the name of the backend's class).
KNOWN_BACKENDS = frozenset({
    "XnnpackBackend", "CoreMLBackend", "CoreAIBackend", "MPSBackend", "VulkanBackend", "QnnBackend",
    "EthosUBackend", "VgfBackend", "TOSABackend", "NeuropilotBackend", "NeutronBackend", "EnnBackend",
    "OpenvinoBackend", "MLXBackend", "CudaBackend", "MetalBackend", "NativeBackend",
})
