"""The parts of TensorFlow's protobuf messages the SavedModel scanner reads (field numbers from
tensorflow/core/framework/*.proto and tensorflow/core/protobuf/*.proto, keras' saved_metadata.proto).

Payloads that can be large (tensor contents, string values, Keras metadata JSON) are ``bytes``
fields: the reader hands them out as offsets and the scanner looks only at what it needs.
"""

from __future__ import annotations

from ._protobuf import REPEATED, Message

ATTR_VALUE = Message("AttrValue")
ATTR_ENTRY = Message("NodeDef.AttrEntry").define(key=(1, "string"), value=(2, ATTR_VALUE))
NAME_ATTR_LIST = Message("NameAttrList").define(name=(1, "string"), attr=(2, ATTR_ENTRY, REPEATED))
TENSOR = Message("TensorProto").define(dtype=(1, "enum"), string_val=(8, "bytes", REPEATED))
ATTR_LIST = Message("AttrValue.ListValue").define(
    s=(2, "bytes", REPEATED), tensor=(8, TENSOR, REPEATED), func=(9, NAME_ATTR_LIST, REPEATED))
ATTR_VALUE.define(list=(1, ATTR_LIST), s=(2, "bytes"), i=(3, "int"), b=(5, "bool"), type=(6, "enum"),
                  tensor=(8, TENSOR), placeholder=(9, "string"), func=(10, NAME_ATTR_LIST))
NODE = Message("NodeDef").define(name=(1, "string"), op=(2, "string"), input=(3, "string", REPEATED),
                                 device=(4, "string"), attr=(5, ATTR_ENTRY, REPEATED))
OP_DEF = Message("OpDef").define(name=(1, "string"))
FUNCTION = Message("FunctionDef").define(signature=(1, OP_DEF), node_def=(3, NODE, REPEATED))
GRADIENT = Message("GradientDef").define(function_name=(1, "string"), gradient_func=(2, "string"))
LIBRARY = Message("FunctionDefLibrary").define(function=(1, FUNCTION, REPEATED), gradient=(2, GRADIENT, REPEATED))
VERSIONS = Message("VersionDef").define(producer=(1, "int"), min_consumer=(2, "int"))
GRAPH = Message("GraphDef").define(node=(1, NODE, REPEATED), library=(2, LIBRARY), version=(3, "int"),
                                   versions=(4, VERSIONS))

TENSOR_INFO = Message("TensorInfo").define(name=(1, "string"))
ASSET_FILE = Message("AssetFileDef").define(tensor_info=(1, TENSOR_INFO), filename=(2, "string"))
ANY = Message("Any").define(type_url=(1, "string"), value=(2, "bytes"))
ANY_LIST = Message("CollectionDef.AnyList").define(value=(1, ANY, REPEATED))
COLLECTION = Message("CollectionDef").define(any_list=(5, ANY_LIST))
COLLECTION_ENTRY = Message("MetaGraphDef.CollectionDefEntry").define(key=(1, "string"), value=(2, COLLECTION))
META_INFO = Message("MetaInfoDef").define(meta_graph_version=(1, "string"), tags=(4, "string", REPEATED),
                                          tensorflow_version=(5, "string"))
SAVER = Message("SaverDef").define(filename_tensor_name=(1, "string"), version=(7, "enum"))

USER_OBJECT = Message("SavedUserObject").define(identifier=(1, "string"), metadata=(3, "bytes"))
SAVED_FUNCTION = Message("SavedFunction").define(concrete_functions=(1, "string", REPEATED))
BARE_FUNCTION = Message("SavedBareConcreteFunction").define(concrete_function_name=(1, "string"))
SAVED_ASSET = Message("SavedAsset").define(asset_file_def_index=(1, "int"))
SAVED_OBJECT = Message("SavedObject").define(
    user_object=(4, USER_OBJECT), asset=(5, SAVED_ASSET), function=(6, SAVED_FUNCTION),
    bare_concrete_function=(8, BARE_FUNCTION))
CONCRETE_ENTRY = Message("SavedObjectGraph.ConcreteFunctionsEntry").define(key=(1, "string"))
OBJECT_GRAPH = Message("SavedObjectGraph").define(nodes=(1, SAVED_OBJECT, REPEATED),
                                                  concrete_functions=(2, CONCRETE_ENTRY, REPEATED))

META_GRAPH = Message("MetaGraphDef").define(
    meta_info_def=(1, META_INFO), graph_def=(2, GRAPH), saver_def=(3, SAVER),
    collection_def=(4, COLLECTION_ENTRY, REPEATED), asset_file_def=(6, ASSET_FILE, REPEATED),
    object_graph_def=(7, OBJECT_GRAPH))
SAVED_MODEL = Message("SavedModel").define(saved_model_schema_version=(1, "int"),
                                           meta_graphs=(2, META_GRAPH, REPEATED))

KERAS_OBJECT = Message("keras.SavedObject").define(node_id=(2, "int"), node_path=(3, "string"),
                                                   identifier=(4, "string"), metadata=(5, "bytes"))
KERAS_METADATA = Message("keras.SavedMetadata").define(nodes=(1, KERAS_OBJECT, REPEATED))

FINGERPRINT = Message("FingerprintDef").define(
    saved_model_checksum=(1, "uint"), graph_def_program_hash=(2, "uint"), signature_def_hash=(3, "uint"),
    saved_object_graph_hash=(4, "uint"), checkpoint_hash=(5, "uint"), version=(6, VERSIONS))

#: what each kind of file holds
ROOTS = {"saved_model": SAVED_MODEL, "meta_graph": META_GRAPH, "graph": GRAPH, "keras_metadata": KERAS_METADATA,
         "fingerprint": FINGERPRINT}
