"""Names that honest Keras configs use, and the Keras APIs that have no business in one.

The class and function names are Keras' public modelling API (layers, optimizers and their
schedules, losses, metrics, initializers, regularizers, constraints, activations, dtype
policies) of Keras 3, plus the Keras 2 / tf.keras names that old H5 files still carry.
"""

from __future__ import annotations

_KERAS3_CLASSES = """
AUC AWQConfig AWQDTypePolicy AbsMaxQuantizer Accuracy Activation ActivityRegularization Adadelta Adafactor
Adagrad Adam AdamW Adamax AdaptiveAveragePooling1D AdaptiveAveragePooling2D AdaptiveAveragePooling3D
AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add AdditiveAttention AlphaDropout Attention
AugMix AutoContrast Average AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D
BatchNormalization Bidirectional BinaryAccuracy BinaryCrossentropy BinaryFocalCrossentropy BinaryIoU CTC
CategoricalAccuracy CategoricalCrossentropy CategoricalFocalCrossentropy CategoricalGeneralizedCrossEntropy
CategoricalHinge CategoryEncoding CenterCrop Circle Concatenate ConcordanceCorrelation Constant Constraint
ContrastLimitedAdaptiveHistogramEqualization Conv1D Conv1DTranspose Conv2D Conv2DTranspose Conv3D
Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D Convolution1DTranspose Convolution2D
Convolution2DTranspose Convolution3D Convolution3DTranspose CosineDecay CosineDecayRestarts CosineSimilarity
Cropping1D Cropping2D Cropping3D CutMix DTypePolicy DTypePolicyMap Dense DepthwiseConv1D DepthwiseConv2D
Dice Discretization Dot Dropout ELU EinsumDense Embedding Equalization ExponentialDecay F1Score FBetaScore
FalseNegatives FalsePositives Flatten Float8QuantizationConfig FloatDTypePolicy Ftrl GPTQConfig
GPTQDTypePolicy GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D
GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D
GlobalMaxPool3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GlorotNormal GlorotUniform
GroupNormalization GroupQueryAttention HashedCrossing Hashing HeNormal HeUniform Hinge Huber Identity
IdentityInitializer Initializer InputLayer InputSpec Int4DTypePolicy Int4QuantizationConfig
Int8QuantizationConfig IntegerLookup InverseTimeDecay IoU KLDivergence L1 L1L2 L2 LSTM LSTMCell
Lamb Layer LayerNormalization LeakyReLU LearningRateSchedule LecunNormal LecunUniform Lion LogCosh
LogCoshError Loss LossScaleOptimizer Masking MaxNorm MaxNumBoundingBoxes MaxPool1D MaxPool2D MaxPool3D
MaxPooling1D MaxPooling2D MaxPooling3D Maximum Mean MeanAbsoluteError MeanAbsolutePercentageError MeanIoU
MeanMetricWrapper MeanSquaredError MeanSquaredLogarithmicError MelSpectrogram Metric MinMaxNorm Minimum
MixUp Model MultiHeadAttention MultiOptimizer Multiply Muon Nadam NonNeg Normalization OneHotIoU
OneHotMeanIoU Ones Optimizer OptimizerMap Orthogonal OrthogonalInitializer OrthogonalRegularizer PReLU
PearsonCorrelation Permute PiecewiseConstantDecay Pipeline Poisson PolynomialDecay Precision
PrecisionAtRecall QuantizationConfig QuantizedDTypePolicy QuantizedFloat8DTypePolicy Quantizer R2Score
RMSNormalization RMSprop RNN RandAugment RandomBrightness RandomColorDegeneration RandomColorJitter
RandomContrast RandomCrop RandomElasticTransform RandomErasing RandomFlip RandomGaussianBlur RandomGrayscale
RandomHue RandomInvert RandomNormal RandomPerspective RandomPosterization RandomRotation RandomSaturation
RandomSharpness RandomShear RandomTranslation RandomUniform RandomZoom ReLU Recall RecallAtPrecision
Regularizer RepeatVector Rescaling Reshape Resizing ReversibleEmbedding RootMeanSquaredError SGD STFT
STFTInitializer STFTSpectrogram ScheduleFreeAdamW SeedGenerator SensitivityAtSpecificity SeparableConv1D
SeparableConv2D SeparableConvolution1D SeparableConvolution2D Sequential SimpleRNN SimpleRNNCell Softmax
Solarization SparseCategoricalAccuracy SparseCategoricalCrossentropy SparseTopKCategoricalAccuracy
SpatialDropout1D SpatialDropout2D SpatialDropout3D SpecificityAtSensitivity SpectralNormalization
SquaredHinge StackedRNNCells StringLookup Subtract Sum TextVectorization TimeDistributed
TopKCategoricalAccuracy TrueNegatives TruePositives TruncatedNormal Tversky UnitNorm UnitNormalization
UpSampling1D UpSampling2D UpSampling3D VarianceScaling Wrapper ZeroPadding1D ZeroPadding2D ZeroPadding3D
Zeros constant glorot_normal glorot_uniform he_normal he_uniform identity l1 l1_l2 l2 lecun_normal
lecun_uniform max_norm min_max_norm non_neg ones orthogonal orthogonal_regularizer random_normal
random_uniform stft truncated_normal unit_norm variance_scaling zeros
"""

# Keras 2 / tf.keras names that Keras 3 dropped or renamed (old H5 files carry them without a module),
# and the layers with checks of their own.
_KERAS2_CLASSES = """
Functional SlicingOpLambda TensorFlowOpLayer InstanceProperty InstanceMethod ClassMethod CuDNNLSTM CuDNNGRU
LocallyConnected1D LocallyConnected2D ThresholdedReLU DenseFeatures SequenceFeatures RandomFourierFeatures
SyncBatchNormalization AbstractRNNCell PeepholeLSTMCell LinearModel WideDeepModel RandomHeight RandomWidth
Policy PolicyV1 LossScaleOptimizerV3 LossScaleOptimizerV1 MeanRelativeError MeanTensor SumOverBatchSize
SumOverBatchSizeMetricWrapper LossFunctionWrapper KLD MAE MAPE MSE MSLE ConvRNN2D Merge
Lambda TFOpLambda TFSMLayer TorchModuleWrapper
"""

_KERAS_FUNCTIONS = """
binary_accuracy binary_crossentropy binary_focal_crossentropy categorical_accuracy categorical_crossentropy
categorical_focal_crossentropy categorical_generalized_cross_entropy categorical_hinge celu circle
concordance_correlation cosine_similarity ctc dice elu exponential gelu glu hard_shrink hard_sigmoid
hard_silu hard_swish hard_tanh hinge huber kl_divergence leaky_relu linear log_cosh log_sigmoid log_softmax
mean_absolute_error mean_absolute_percentage_error mean_squared_error mean_squared_logarithmic_error mish
pearson_correlation poisson relu relu6 selu sigmoid silu soft_shrink softmax softplus softsign
sparse_categorical_accuracy sparse_categorical_crossentropy sparse_plus sparse_sigmoid
sparse_top_k_categorical_accuracy sparsemax squared_hinge squareplus swish tanh tanh_shrink threshold
top_k_categorical_accuracy tversky
mse mae mape msle kld kullback_leibler_divergence logcosh cosine cosine_proximity acc accuracy crossentropy
"""

KERAS_CLASSES = frozenset((_KERAS3_CLASSES + _KERAS2_CLASSES).split())
KERAS_FUNCTIONS = frozenset(_KERAS_FUNCTIONS.split())

#: top-level packages (and dotted prefixes) whose objects Keras itself writes
KERAS_NAMESPACES = ("keras", "keras_hub", "keras_cv", "keras_nlp", "keras_rs", "tf_keras", "keras_core",
                    "tensorflow.keras", "tensorflow.python.keras", "tensorflow.python.keras.engine")

#: special class names of Keras' own serialization format
SPECIAL_CLASS_NAMES = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__",
                                 "__slice__", "__typespec__", "__tuple__"})

#: Keras APIs that load, save, download or switch safe mode off: never part of a model
#: (the "non-modeling" APIs Keras itself refuses to deserialize since 3.11)
GADGET_FUNCTIONS = frozenset({
    "enable_unsafe_deserialization", "get_file", "load_model", "save_model", "load_weights", "save_weights",
    "model_from_json", "model_from_yaml", "model_from_config", "load_img", "save_img",
    "image_dataset_from_directory", "text_dataset_from_directory", "audio_dataset_from_directory",
    "deserialize_keras_object", "register_keras_serializable", "func_load", "load_model_from_hdf5",
    "load_weights_from_hdf5_group", "save_model_to_hdf5", "validate_file", "extract_archive",
})

#: Keras module path parts that hold file, download, saving and registry utilities
GADGET_MODULE_PARTS = frozenset({
    "file_utils", "python_utils", "saving_lib", "saving_api", "legacy_h5_format", "serialization_lib",
    "object_registration", "io_utils", "image_utils", "dataset_utils", "image_dataset_utils",
    "text_dataset_utils", "audio_dataset_utils", "global_state", "saving",
})

#: tf.* functions a tf.keras TFOpLambda layer may call that read, write or run code
TF_OP_GADGETS = ("io.", "gfile", "py_function", "numpy_function", "py_func", "raw_ops.", "load_op_library",
                 "load_library", "saved_model", "summary.", "keras.")

#: layer classes whose `vocabulary` (and TextVectorization's `stop_words`) may name a file
LOOKUP_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization", "IndexLookup"})

#: names in Lambda bytecode that only code with side effects needs
DANGEROUS_CODE_NAMES = frozenset({
    "os", "posix", "nt", "subprocess", "system", "popen", "Popen", "spawnv", "spawnl", "execv", "execve",
    "execl", "execvp", "fork", "forkpty", "eval", "exec", "execfile", "compile", "__import__", "import_module",
    "importlib", "open", "builtins", "__builtins__", "globals", "getattr", "setattr", "delattr", "socket",
    "shutil", "rmtree", "unlink", "pty", "ctypes", "CDLL", "cdll", "marshal", "pickle", "loads", "dill",
    "sys", "runpy", "urllib", "urlopen", "urlretrieve", "requests", "webbrowser", "check_output",
    "check_call", "getoutput", "getstatusoutput", "environ", "getenv", "b64decode", "breakpoint",
    "__subclasses__", "__globals__", "__code__", "__reduce__", "get_file", "enable_unsafe_deserialization",
    "write_file", "read_file",
})
