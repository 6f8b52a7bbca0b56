"""Where the tests find MNIST: SK_HASHEDNETS_MNIST_DIR, else the copy beside the checkout."""

import os
from pathlib import Path

from sk_hashednets.datasets import DATA_DIR_ENV

MNIST = Path(
    os.environ.get(DATA_DIR_ENV, Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
)
