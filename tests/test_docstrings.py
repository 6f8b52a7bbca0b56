"""Every public object documents itself with numpydoc sections and a runnable example.

The examples themselves run as doctests (``--doctest-modules`` in pyproject.toml);
this test makes sure none is missing.
"""

import inspect

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import sk_hashednets
from sk_hashednets import plotting


def _public_objects():
    objects = {}
    for module in (sk_hashednets, plotting):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                objects[f"{module.__name__}.{name}"] = obj
            if inspect.isclass(obj):
                for method_name in vars(obj):
                    # getattr, not vars: partial_fit hides behind available_if.
                    method = getattr(obj, method_name)
                    ours = getattr(method, "__module__", "").startswith("sk_hashednets")
                    if not method_name.startswith("_") and inspect.isroutine(method) and ours:
                        objects[f"{module.__name__}.{name}.{method_name}"] = method
    # Methods defined once in the base class and shown on both estimators.
    base = sk_hashednets.HashedMLPClassifier.__mro__[2]
    for method_name, method in vars(base).items():
        if not method_name.startswith("_") and inspect.isfunction(method):
            objects[f"{base.__name__}.{method_name}"] = method
    return objects


PUBLIC = _public_objects()


def test_the_public_api_is_all_covered():
    names = set(PUBLIC)
    for expected in [
        "sk_hashednets.HashedMLPClassifier.predict_proba",
        "sk_hashednets.HashedMLPRegressor.partial_fit",
        "BaseHashedMLP.fit",
        "BaseHashedMLP.to_sklearn",
        "sk_hashednets.load",
        "sk_hashednets.plotting.plot_bucket_usage",
    ]:
        assert expected in names


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_docstring_has_sections_and_example(name):
    obj = PUBLIC[name]
    doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
    assert doc["Summary"], f"{name} has no summary line"
    examples = "\n".join(doc["Examples"])
    assert ">>>" in examples, f"{name} has no runnable Examples section"
    if inspect.isroutine(obj):
        documented = {p.name for p in doc["Parameters"]}
        arguments = [p for p in inspect.signature(obj).parameters if p != "self"]
        assert documented == set(arguments), f"{name}: parameters documented {documented}"
