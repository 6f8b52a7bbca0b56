"""HashedNets for scikit-learn: neural networks compressed by the hashing trick."""

from ._kernels import HASH_SPEC_VERSION
from ._multilayer_perceptron import HashedMLPClassifier, HashedMLPRegressor
from ._persistence import ModelFileError, load, save
from ._version import __version__

__all__ = [
    "HASH_SPEC_VERSION",
    "HashedMLPClassifier",
    "HashedMLPRegressor",
    "ModelFileError",
    "__version__",
    "load",
    "save",
]
