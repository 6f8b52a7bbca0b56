"""The safe model format: exact round trips, and refusal of every bad file."""

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.exceptions import NotFittedError

from sk_hashednets import (
    HASH_SPEC_VERSION,
    HashedMLPClassifier,
    HashedMLPRegressor,
    ModelFileError,
    load,
    save,
)

X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def _fitted(kind, solver="adam", dtype=np.float64):
    X = X_IRIS.astype(dtype)
    kw = dict(hidden_layer_sizes=(6, 5), solver=solver, max_iter=5, random_state=0)
    if kind == "multiclass":
        return HashedMLPClassifier(**kw).fit(X, Y_IRIS), X
    if kind == "binary":
        return HashedMLPClassifier(**kw).fit(X, Y_IRIS == 1), X
    if kind == "strings":
        return HashedMLPClassifier(**kw).fit(
            X, np.array(["setosa", "versicolor", "virginica"])[Y_IRIS]
        ), X
    if kind == "multilabel":
        Xm, Ym = make_multilabel_classification(n_samples=60, n_features=4, random_state=0)
        return HashedMLPClassifier(**kw).fit(Xm.astype(dtype), Ym), Xm.astype(dtype)
    if kind == "regression":
        Xr, yr = make_regression(n_samples=60, n_features=4, n_targets=2, random_state=0)
        return HashedMLPRegressor(**kw).fit(Xr.astype(dtype), yr), Xr.astype(dtype)
    raise ValueError(kind)


def _round_trip(model):
    buffer = io.BytesIO()
    save(model, buffer)
    buffer.seek(0)
    return load(buffer)


def _file_bytes(model):
    buffer = io.BytesIO()
    save(model, buffer)
    return buffer.getvalue()


def _rewrite(data, edit):
    """Load a file's entries, let ``edit`` change them, write them back (no checks)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    meta = json.loads(str(entries.pop("__meta__")))
    edit(meta, entries)
    out = io.BytesIO()
    np.savez(out, __meta__=np.array(json.dumps(meta)), **entries)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["multiclass", "binary", "strings", "multilabel", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(kind, solver, dtype):
    model, X = _fitted(kind, solver, dtype)
    loaded = _round_trip(model)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
    for a, b in zip(
        loaded.bucket_weights_ + loaded.intercepts_, model.bucket_weights_ + model.intercepts_
    ):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.hash_seeds_, model.hash_seeds_)
    for name in [
        "n_iter_",
        "t_",
        "loss_",
        "n_buckets_",
        "n_virtual_params_",
        "n_stored_params_",
        "out_activation_",
    ]:
        assert getattr(loaded, name) == getattr(model, name)
    if solver != "lbfgs":
        assert loaded.loss_curve_ == model.loss_curve_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_continues_as_if_never_saved(solver):
    model, X = _fitted("multiclass", solver)
    loaded = _round_trip(model)
    model.partial_fit(X, Y_IRIS)
    loaded.partial_fit(X, Y_IRIS)
    for a, b in zip(loaded.bucket_weights_, model.bucket_weights_):
        np.testing.assert_array_equal(a, b)


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_IRIS, columns=["sl", "sw", "pl", "pw"])
    model = HashedMLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
        frame, Y_IRIS
    )
    loaded = _round_trip(model)
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_file_holds_no_pickle_and_small_arrays_only():
    model, _ = _fitted("multiclass")
    data = _file_bytes(model)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            with zf.open(name) as member:
                array = np.lib.format.read_array(member, allow_pickle=False)
            assert array.dtype.kind != "O"
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
    assert meta["hash_spec_version"] == HASH_SPEC_VERSION
    assert meta["package_version"]


def test_save_refuses_what_it_cannot_store():
    with pytest.raises(TypeError, match="HashedMLPClassifier or HashedMLPRegressor"):
        save(object(), io.BytesIO())
    with pytest.raises(NotFittedError):
        save(HashedMLPClassifier(), io.BytesIO())


def test_object_labels_come_back_as_objects():
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[Y_IRIS]
    model = HashedMLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    model.fit(X_IRIS, labels)
    loaded = _round_trip(model)
    assert loaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X_IRIS), model.predict(X_IRIS))


def test_random_generator_state_is_not_silently_dropped():
    model = HashedMLPClassifier(
        hidden_layer_sizes=(3,), max_iter=2, random_state=np.random.RandomState(0)
    )
    model.fit(X_IRIS, Y_IRIS)
    with pytest.warns(UserWarning, match="random_state=None"):
        loaded = _round_trip(model)
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict(X_IRIS), model.predict(X_IRIS))


def _write_to_path(tmp_path, data):
    path = tmp_path / "model.npz"
    path.write_bytes(data)
    return path


def test_truncated_file_is_refused(tmp_path):
    model, _ = _fitted("multiclass")
    data = _file_bytes(model)
    for cut in (10, len(data) // 2, len(data) - 5):
        with pytest.raises(ModelFileError, match="truncated, corrupted"):
            load(_write_to_path(tmp_path, data[:cut]))


def test_corrupted_bytes_never_give_a_different_network(tmp_path):
    """Flip one byte at a time across the file: each load refuses or is unchanged."""
    model = HashedMLPClassifier(hidden_layer_sizes=(40,), max_iter=3, random_state=0)
    model.fit(X_IRIS, Y_IRIS)
    expected = model.predict_proba(X_IRIS)
    data = _file_bytes(model)
    refused = 0
    for position in range(0, len(data), 13):
        corrupted = bytearray(data)
        corrupted[position] ^= 0xFF
        try:
            loaded = load(_write_to_path(tmp_path, bytes(corrupted)))
        except ModelFileError:
            refused += 1
            continue
        # Some bytes are not read (zip comments, header padding): harmless.
        np.testing.assert_array_equal(loaded.predict_proba(X_IRIS), expected)
    assert refused > len(range(0, len(data), 13)) // 2


def test_not_a_model_file_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(ModelFileError, match="no __meta__ entry"):
        load(path)
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ModelFileError, match="Cannot read"):
        load(path)


def test_extra_object_is_refused_without_being_unpickled(tmp_path):
    model, _ = _fitted("multiclass")
    data = _file_bytes(model)

    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("the extra object was unpickled",))

    def add_object(meta, entries):
        entries["payload"] = np.array([Boom()], dtype=object)

    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    meta = json.loads(str(entries.pop("__meta__")))
    add_object(meta, entries)
    out = tmp_path / "evil.npz"
    np.savez(out, __meta__=np.array(json.dumps(meta)), allow_pickle=True, **entries)
    with pytest.raises(
        ModelFileError, match=r"entries that a model file does not have: \['payload'\]"
    ):
        load(out)


def test_extra_numeric_entry_is_refused():
    model, _ = _fitted("multiclass")
    data = _rewrite(_file_bytes(model), lambda meta, e: e.update(extra=np.zeros(3)))
    with pytest.raises(ModelFileError, match="does not have: \\['extra'\\]"):
        load(io.BytesIO(data))


def test_missing_entry_is_refused():
    model, _ = _fitted("multiclass")
    data = _rewrite(_file_bytes(model), lambda meta, e: e.pop("intercepts_1"))
    with pytest.raises(ModelFileError, match="lacks the entries \\['intercepts_1'\\]"):
        load(io.BytesIO(data))


def test_declared_shape_disagreeing_with_array_is_refused():
    model, _ = _fitted("multiclass")

    def lie_about_shape(meta, entries):
        meta["arrays"]["bucket_weights_0"]["shape"] = [999]

    data = _rewrite(_file_bytes(model), lie_about_shape)
    with pytest.raises(ModelFileError, match="bucket_weights_0 has dtype .* but the file declares"):
        load(io.BytesIO(data))


def test_array_disagreeing_with_the_architecture_is_refused():
    model, _ = _fitted("multiclass")

    def shorten_buckets(meta, entries):
        entries["bucket_weights_0"] = entries["bucket_weights_0"][:-1]
        meta["arrays"]["bucket_weights_0"]["shape"] = [len(entries["bucket_weights_0"])]

    data = _rewrite(_file_bytes(model), shorten_buckets)
    with pytest.raises(ModelFileError, match="architecture implies"):
        load(io.BytesIO(data))


def test_tampered_values_are_refused():
    model, _ = _fitted("multiclass")

    def change_a_bucket(meta, entries):
        entries["bucket_weights_1"] = entries["bucket_weights_1"].copy()
        entries["bucket_weights_1"][0] += 1.0

    data = _rewrite(_file_bytes(model), change_a_bucket)
    with pytest.raises(ModelFileError, match="checksum does not match"):
        load(io.BytesIO(data))


@pytest.mark.parametrize(
    "key, value, match",
    [
        (
            "hash_spec_version",
            HASH_SPEC_VERSION + 1,
            f"hash specification version {HASH_SPEC_VERSION + 1}",
        ),
        ("format_version", 99, "file format version 99"),
        ("estimator", "os.system", "unknown estimator"),
        ("format", "something else", "not an sk_hashednets model file"),
    ],
)
def test_incompatible_header_is_refused(key, value, match):
    model, _ = _fitted("multiclass")
    data = _rewrite(_file_bytes(model), lambda meta, e: meta.update({key: value}))
    with pytest.raises(ModelFileError, match=match):
        load(io.BytesIO(data))


def test_invalid_parameters_are_refused():
    model, _ = _fitted("multiclass")
    data = _rewrite(
        _file_bytes(model), lambda meta, e: meta["params"].update(activation="__import__")
    )
    with pytest.raises(ModelFileError, match="invalid estimator parameters"):
        load(io.BytesIO(data))


@pytest.mark.parametrize("name", ["m.skh", "model.npz", "no_suffix"])
@pytest.mark.parametrize("as_path", [str, lambda p: p])
def test_load_reads_the_path_that_save_wrote(tmp_path, name, as_path):
    """Issue 19 item 2: the file is written at the given path, whatever its suffix."""
    model, X = _fitted("multiclass")
    path = as_path(tmp_path / name)
    save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    np.testing.assert_array_equal(load(path).predict_proba(X), model.predict_proba(X))


def test_save_and_load_take_open_binary_files(tmp_path):
    model, X = _fitted("binary")
    with open(tmp_path / "model.bin", "wb") as f:
        save(model, f)
    with open(tmp_path / "model.bin", "rb") as f:
        np.testing.assert_array_equal(load(f).predict(X), model.predict(X))


def test_missing_file_is_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "absent.skh"
    with pytest.raises(FileNotFoundError, match="absent.skh"):
        load(path)
    with pytest.raises(FileNotFoundError, match="absent.skh"):
        load(str(path))
