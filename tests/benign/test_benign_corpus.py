"""Right both ways, the honest side: files the real libraries write scan clean.

Each file in the corpus (see conftest.py) must give no warning or critical finding and
complete coverage. An INFO finding is allowed where it documents something true about the
file (an object array's pickle, a tensor's embedded storage pickle).
"""

from __future__ import annotations

import pickle
import warnings

import pytest

from tests.conftest import findings, run_cli, scan

from .conftest import CORPUS

# Files whose INFO notes are expected; every other file must produce no issue at all.
EXPECTED_INFO = {
    "np_object.npy": {"MA-N001"},  # object dtype: the array data is a pickle, which was walked
    "torch_tensor_pickle.pkl": {"MA-P012"},  # storage bytes handed to torch.storage._load_from_bytes
    "pytorch_model.bin": {"MA-S008"},  # a torch checkpoint recognised by content in a .bin file
}


def _describe(issues: list[dict]) -> str:
    return "\n".join(f"  {i['severity']} {i['rule_code']} {i['message']} @ {i['location']}" for i in issues)


def test_honest_file_scans_clean(benign_corpus, benign_name):
    path = benign_corpus / benign_name
    assert path.is_file(), f"builder did not write {benign_name}"
    result = scan(path)
    bad = findings(result, "warning")
    assert not bad, f"{benign_name} produced findings:\n{_describe(bad)}"
    assert result["has_errors"] is False, f"{benign_name} was not fully scanned"
    assert result["files_scanned"] == 1
    notes = {i["rule_code"] for i in result["issues"]}
    assert notes <= EXPECTED_INFO.get(benign_name, set()), f"unexpected notes:\n{_describe(result['issues'])}"


def test_expected_info_notes_are_reported(benign_corpus):
    """The allowed notes are real: the object array and embedded storage pickles are scanned."""
    for name, expected in EXPECTED_INFO.items():
        got = {i["rule_code"] for i in scan(benign_corpus / name)["issues"]}
        assert expected <= got, name


def test_corpus_is_complete(benign_corpus):
    assert sorted(p.name for p in benign_corpus.iterdir()) == sorted(CORPUS)


def test_cli_directory_scan_is_clean(benign_corpus):
    run = run_cli("scan", str(benign_corpus), "--format", "json")
    assert run.code == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = run.json()
    assert report["has_errors"] is False
    assert report["files_scanned"] == len(CORPUS)
    assert not [i for i in report["issues"] if i["severity"] in ("warning", "critical")]


def test_every_default_sklearn_estimator_pickles_clean(tmp_path):
    """Every estimator scikit-learn ships that fits with default arguments, pickled."""
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.utils import all_estimators

    x, y = make_classification(n_samples=60, n_features=5, n_informative=3, random_state=0)
    x = np.abs(x)  # some estimators (chi2, NMF, MultinomialNB) need non-negative input
    written = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            try:
                est = cls()
            except TypeError:
                continue  # meta-estimators need an inner estimator
            try:
                try:
                    est.fit(x, y)
                except Exception:  # noqa: BLE001 - unsupervised or picky estimators
                    est.fit(x)
                data = pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - not every estimator fits this toy problem
                continue
            (tmp_path / f"{name}.pkl").write_bytes(data)
            written += 1
    assert written >= 100
    result = scan(tmp_path)
    assert result["files_scanned"] == written
    assert not findings(result, "warning"), _describe(findings(result, "warning"))
    assert result["has_errors"] is False


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("protocol", [None, 2])
@pytest.mark.parametrize("case", ["complex", "defaultdict", "ndarray", "types", "containers", "numpy_kinds",
                                  "datetime"])
def test_dill_builtin_types_scan_clean(tmp_path, case, protocol):
    """dill writes plain data through its own helpers (dill._dill._load_type('complex'|'list'),
    dill._dill._create_array(numpy reconstruct, args, state)); those calls are argument-checked."""
    import collections
    import datetime

    import dill
    import numpy as np

    value = {"complex": 3 + 4j, "defaultdict": collections.defaultdict(list, {"a": [1]}),
             "ndarray": np.arange(4.0),
             "types": [int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset, bool,
                       type(None), slice, range, collections.defaultdict(set), collections.defaultdict(dict)],
             "containers": {"od": collections.OrderedDict(a=1), "set": {1, 2}, "frozenset": frozenset({3}),
                            "bytes": b"\x00\xff", "bytearray": bytearray(b"ab"), "slice": slice(1, 9, 2),
                            "counter": collections.Counter("aab"), "deque": collections.deque([1])},
             "numpy_kinds": [np.zeros((2, 3), dtype=np.float32), np.array([1, "a", 2j], dtype=object),
                             np.matrix([[1, 2]]), np.ma.masked_array([1, 2], mask=[0, 1]),
                             np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
                             np.array(["2020-01-01"], dtype="datetime64[D]")],
             "datetime": [datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), datetime.date(2020, 1, 1),
                          datetime.timedelta(3)]}[case]
    path = tmp_path / f"{case}.dill"
    path.write_bytes(dill.dumps({"value": value}, protocol=protocol))
    result = scan(path)
    assert not findings(result, "info"), _describe(result["issues"])
    assert result["has_errors"] is False
