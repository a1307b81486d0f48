"""More exact globals that honest files written by the common libraries name (pickle_policy.SAFE_EXACT).

Each entry is one dotted path seen in a file the library itself wrote, and is harmless to import
and to call with any arguments a pickle can supply: pure numeric functions, data classes restored
from their state, and the pickling helpers of those classes. No module prefixes: everything else
in the same modules keeps its own verdict.
"""

from __future__ import annotations

# numpy functions estimators keep as hyperparameters: FunctionTransformer(np.log1p, inverse_func=np.expm1),
# TransformedTargetRegressor(func=np.log), pooling and aggregation functions. numpy pickles ufuncs and
# array functions under their public name.
_NUMPY_MATH = (
    "absolute", "add", "amax", "amin", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "argmax",
    "argmin", "around", "average", "cbrt", "ceil", "clip", "cos", "cosh", "cumsum", "divide", "exp", "exp2", "expm1",
    "fabs", "float_power", "floor", "floor_divide", "fmax", "fmin", "isfinite", "isinf", "isnan", "log", "log10",
    "log1p", "log2", "logical_not", "max", "maximum", "median", "min", "minimum", "multiply", "nan_to_num",
    "nanmax", "nanmean", "nanmedian", "nanmin", "nanstd", "nansum", "nanvar", "negative", "percentile",
    "positive", "power", "prod", "quantile", "reciprocal", "remainder", "rint", "round", "sign", "sin", "sinh",
    "sqrt", "square", "std", "subtract", "sum", "tan", "tanh", "true_divide", "trunc", "var",
)

# scikit-learn: metric functions that scorers keep (GridSearchCV(scoring="f1"), make_scorer(f1_score)),
# selection score functions, and helpers that fitted estimators keep as attributes.
_SKLEARN_METRICS = {
    "sklearn.metrics._classification": (
        "accuracy_score", "balanced_accuracy_score", "brier_score_loss", "cohen_kappa_score", "d2_brier_score",
        "d2_log_loss_score", "f1_score", "fbeta_score", "hamming_loss", "hinge_loss", "jaccard_score", "log_loss",
        "matthews_corrcoef", "precision_score", "recall_score", "zero_one_loss"),
    "sklearn.metrics._ranking": (
        "auc", "average_precision_score", "coverage_error", "dcg_score", "label_ranking_average_precision_score",
        "label_ranking_loss", "ndcg_score", "roc_auc_score", "top_k_accuracy_score"),
    "sklearn.metrics._regression": (
        "d2_absolute_error_score", "d2_pinball_score", "d2_tweedie_score", "explained_variance_score", "max_error",
        "mean_absolute_error", "mean_absolute_percentage_error", "mean_gamma_deviance", "mean_pinball_loss",
        "mean_poisson_deviance", "mean_squared_error", "mean_squared_log_error", "mean_tweedie_deviance",
        "median_absolute_error", "r2_score", "root_mean_squared_error", "root_mean_squared_log_error"),
    "sklearn.metrics._scorer": ("positive_likelihood_ratio", "negative_likelihood_ratio"),
    "sklearn.metrics.cluster._supervised": (
        "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score", "fowlkes_mallows_score",
        "homogeneity_score", "mutual_info_score", "normalized_mutual_info_score", "rand_score", "v_measure_score"),
    "sklearn.metrics.cluster._unsupervised": ("calinski_harabasz_score", "davies_bouldin_score", "silhouette_score"),
    "sklearn.feature_selection._mutual_info": ("mutual_info_classif", "mutual_info_regression"),
}
_SKLEARN_OTHER = (
    "sklearn.compose._column_transformer.make_column_selector",  # a class with a lower-case name
    # HistGradientBoosting's categorical preprocessor keeps partial(check_array)
    "sklearn.utils.validation.check_array",
)

# scipy.sparse containers whose class names are lower case (the capitalised ones pass as classes).
_SCIPY_SPARSE = tuple(f"scipy.sparse._{kind}.{kind}_{shape}" for shape in ("matrix", "array")
                      for kind in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil"))

# torch: module hooks that whole-module saves carry (old-style weight_norm/spectral_norm, pruning),
# nested jagged tensors (torch registers these three with its own weights_only allowlist), plain datasets.
_TORCH = (
    "torch.nn.utils.weight_norm.WeightNorm", "torch.nn.utils.spectral_norm.SpectralNorm",
    "torch.nn.utils.spectral_norm.SpectralNormStateDictHook",
    "torch.nn.utils.spectral_norm.SpectralNormLoadStateDictPreHook",
    "torch.nn.modules.module._WrappedHook", "torch.utils.hooks.RemovableHandle",
    *(f"torch.nn.utils.prune.{n}" for n in ("PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
                                            "RandomStructured", "LnStructured", "CustomFromMask")),
    "torch.nn.parameter.UninitializedBuffer",
    "torch.nested._internal.nested_tensor.NestedTensor", "torch.nested._internal.nested_tensor._rebuild_njt",
    "torch._dynamo.decorators._DimRange",
    *(f"torch.utils.data.dataset.{n}" for n in ("TensorDataset", "Subset", "ConcatDataset", "StackDataset")),
)
# torch.distributions objects (an RL policy's action distribution, a prior): tensors and flags only.
_TORCH_DISTRIBUTIONS = (
    "bernoulli.Bernoulli", "beta.Beta", "binomial.Binomial", "categorical.Categorical", "cauchy.Cauchy", "chi2.Chi2",
    "continuous_bernoulli.ContinuousBernoulli", "dirichlet.Dirichlet", "exponential.Exponential",
    "fishersnedecor.FisherSnedecor", "gamma.Gamma", "generalized_pareto.GeneralizedPareto", "geometric.Geometric",
    "gumbel.Gumbel", "half_cauchy.HalfCauchy", "half_normal.HalfNormal", "independent.Independent",
    "inverse_gamma.InverseGamma", "kumaraswamy.Kumaraswamy", "laplace.Laplace", "lkj_cholesky.LKJCholesky",
    "log_normal.LogNormal", "logistic_normal.LogisticNormal",
    "lowrank_multivariate_normal.LowRankMultivariateNormal", "mixture_same_family.MixtureSameFamily",
    "multinomial.Multinomial", "multivariate_normal.MultivariateNormal", "negative_binomial.NegativeBinomial",
    "normal.Normal", "one_hot_categorical.OneHotCategorical", "one_hot_categorical.OneHotCategoricalStraightThrough",
    "pareto.Pareto", "poisson.Poisson", "relaxed_bernoulli.RelaxedBernoulli",
    "relaxed_categorical.RelaxedOneHotCategorical", "studentT.StudentT",
    "transformed_distribution.TransformedDistribution", "uniform.Uniform", "von_mises.VonMises",
    "weibull.Weibull", "wishart.Wishart",
    *(f"transforms.{n}Transform" for n in (
        "Abs", "Affine", "Cat", "Compose", "CorrCholesky", "Exp", "Independent", "LowerCholesky",
        "PositiveDefinite", "Power", "Reshape", "Sigmoid", "Softmax", "Softplus", "Stack", "StickBreaking", "Tanh")),
)

# pandas (3.x pickles under the public names) and the pyarrow helpers its default string arrays use.
_PANDAS = (
    *(f"pandas.{n}" for n in (
        "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "TimedeltaIndex", "PeriodIndex",
        "IntervalIndex", "CategoricalIndex", "Categorical", "CategoricalDtype", "StringDtype", "BooleanDtype",
        "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype",
        "UInt64Dtype", "Float32Dtype", "Float64Dtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype",
        "SparseDtype", "ArrowDtype", "Interval", "Period", "NA", "DateOffset")),
    *(f"pandas.arrays.{n}" for n in (
        "ArrowExtensionArray", "ArrowStringArray", "BooleanArray", "DatetimeArray", "FloatingArray", "IntegerArray",
        "IntervalArray", "PeriodArray", "SparseArray", "StringArray", "TimedeltaArray", "NumpyExtensionArray")),
    "pandas.core.internals.managers.SingleBlockManager", "pandas.core.indexes.datetimes._new_DatetimeIndex",
    "pandas.core.indexes.interval._new_IntervalIndex", "pandas.core.indexes.timedeltas._new_TimedeltaIndex",
    "pandas.core.indexes.period._new_PeriodIndex",
    # Cython unpickling helpers: they check a checksum of the class layout, then set the saved fields
    "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked", "pandas._libs.interval.__pyx_unpickle_IntervalMixin",
    "pandas._libs.sparse.IntIndex", "pandas._libs.tslibs.nattype._nat_unpickle",
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle", "pandas._libs.tslibs.timestamps._unpickle_timestamp",
    *(f"pandas._libs.tslibs.offsets.{n}" for n in (
        "Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano", "BusinessDay", "Week", "MonthEnd", "MonthBegin",
        "QuarterEnd", "QuarterBegin", "YearEnd", "YearBegin", "BusinessMonthEnd", "BusinessMonthBegin")),
    "pyarrow.lib._restore_array", "pyarrow.lib.type_for_alias", "pyarrow.lib.py_buffer", "pyarrow.NA",
    "dateutil.relativedelta.relativedelta",
)

# Methods pickled as getattr(cls, name) (see _pickle_relaxations): timezone-aware datetimes and timestamps
# (ZoneInfo._unpickle reads the named zone from the system's timezone database) and the alternate
# constructors of plain data types.
_METHODS = (
    "zoneinfo.ZoneInfo", "zoneinfo.ZoneInfo._unpickle",
    "builtins.float.fromhex", "builtins.int.from_bytes", "builtins.bytes.fromhex", "builtins.bytearray.fromhex",
    "builtins.dict.fromkeys", "datetime.datetime.fromisoformat", "datetime.datetime.fromtimestamp",
    "datetime.datetime.fromordinal", "datetime.date.fromisoformat", "datetime.date.fromordinal",
    "datetime.date.fromtimestamp",
)

# Whole-module saves of uninitialised lazy modules keep two bound-method hooks (getattr(module, name)).
_LAZY_MODULES = (
    "linear.LazyLinear", *(f"conv.LazyConv{d}d" for d in (1, 2, 3)),
    *(f"conv.LazyConvTranspose{d}d" for d in (1, 2, 3)),
    *(f"batchnorm.LazyBatchNorm{d}d" for d in (1, 2, 3)), *(f"instancenorm.LazyInstanceNorm{d}d" for d in (1, 2, 3)),
)
_LAZY_HOOKS = tuple(f"torch.nn.modules.{cls}.{hook}" for cls in _LAZY_MODULES
                    for hook in ("_infer_parameters", "_lazy_load_hook"))

HONEST_LIBRARY_NAMES: frozenset[str] = frozenset({
    *(f"numpy.{n}" for n in _NUMPY_MATH),
    *(f"{module}.{n}" for module, names in _SKLEARN_METRICS.items() for n in names),
    *_SKLEARN_OTHER, *_SCIPY_SPARSE, *_TORCH, *_PANDAS, *_METHODS, *_LAZY_HOOKS,
    *(f"torch.distributions.{n}" for n in _TORCH_DISTRIBUTIONS),
})
