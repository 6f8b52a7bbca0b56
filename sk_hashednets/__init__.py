"""HashedNets for scikit-learn: neural networks compressed by the hashing trick."""

from ._kernels import HASH_SPEC_VERSION
from ._multilayer_perceptron import HashedMLPClassifier, HashedMLPRegressor
from ._persistence import ModelFileError, load, save

__version__ = "0.1.0"

__all__ = [
    "HASH_SPEC_VERSION",
    "HashedMLPClassifier",
    "HashedMLPRegressor",
    "ModelFileError",
    "__version__",
    "load",
    "save",
]
