"""MNIST compression study: hashed 784-1000-10 against an equivalent-size dense network.

Usage::

    python studies/mnist_compression.py run [--compressions 1 2 4 8 16 32 64] [--seeds 0 1 2]
        [--models hashed dense distilled] [--data original shifted]
        [--results studies/results/mnist_compression.json]
    python studies/mnist_compression.py report [--results ...] [--plot docs/mnist.png]
    python studies/mnist_compression.py teacher --shifts 8 --out teacher.joblib

``--mnist`` defaults to the directory in ``SK_HASHEDNETS_MNIST_DIR``, else
``../shared/data/mnist`` beside the checkout.

The published setting (Chen et al., 2015): one hidden layer of 1000 ReLU
units, compression 1, 1/2, ..., 1/64, the 60,000 training images (a held-out
twelfth of them for early stopping) and the 10,000 test images. For every
compression and seed, ``run`` trains

- ``hashed``: ``HashedMLPClassifier`` with the settings of ``HASHED`` below;
- ``dense``: an equivalent-size ``MLPClassifier``, whose hidden width gives the
  hashed network's number of stored parameters (buckets and biases);
- ``distilled``: the hashed network with a dense 784-1200-1200-10 teacher
  (``TEACHER`` below: fitted once, on the training images and their one-pixel
  shifts, and cached next to the results), with the settings of ``DISTILL``
  and less dropout (``DISTILLED_DROPOUT``).

``--data shifted`` trains every model of the run on the training images and
their shifts by one pixel up, down, left and right (300,000 images, ``SHIFTS``),
a series of its own next to the published setting's: the early-stopping
twelfth is then drawn from the 300,000, so it holds shifts of images the network
trains on and its score is optimistic (the test images are never seen).

Each finished model is appended to the results file at once, so a long study
can run in pieces (and on several machines) and be resumed: ``run`` skips the
(model, compression, seed, data) results already there. ``report`` prints the
markdown table (mean and standard deviation over seeds) and draws the plot.
Every result records the settings (``SETTINGS``); a result counts while the
settings its kind of model depends on (``DEPENDS_ON``) are unchanged, so a new
distillation setting trains the distilled networks again and nothing else.

``teacher`` trains a teacher with the study's ``TEACHER`` settings on the images
and their one-pixel shifts in 4 directions (the study's teacher) or in all 8
(``--shifts 8``), prints its test accuracy, time and fingerprint, and saves it,
for pilot runs with ``mnist_pilot.py --teacher``.
"""

import argparse
import fcntl
import hashlib
import io
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import sk_hashednets
from sk_hashednets import HashedMLPClassifier
from sk_hashednets._layout import resolve_n_buckets
from sk_hashednets.datasets import DATA_DIR_ENV, load_idx

ROOT = Path(__file__).resolve().parents[1]
#: MNIST: the directory in SK_HASHEDNETS_MNIST_DIR, else the project's copy beside the checkout.
DEFAULT_MNIST = Path(os.environ.get(DATA_DIR_ENV, ROOT.parent / "shared" / "data" / "mnist"))
DEFAULT_RESULTS = ROOT / "studies" / "results" / "mnist_compression.json"

#: Training settings shared by the hashed and the dense networks (the documented
#: settings of the study): SGD with Nesterov momentum, the learning rate divided
#: by 5 whenever the validation score stalls for 3 epochs, early stopping on a
#: held-out twelfth of the training images.
COMMON = {
    "solver": "sgd",
    "learning_rate_init": 0.05,
    "learning_rate": "adaptive",
    "momentum": 0.9,
    "batch_size": 128,
    "max_iter": 120,
    "early_stopping": True,
    "validation_fraction": 1 / 12,
    "n_iter_no_change": 3,
}
HASHED = {**COMMON, "hidden_layer_sizes": (1000,)}
#: Dropout on the hidden layer of the hashed networks, by inverse compression
#: (``MLPClassifier`` has none). Chosen from pilot runs at 1/8 and 1/64, seed 0:
#: 0.5 at 1/8 (98.47% against 98.28% with 0.3), 0.2 at 1/64 (97.34% against
#: 96.94% with 0.5); the compressions between take the nearer of the two.
DROPOUT = {1: 0.5, 2: 0.5, 4: 0.5, 8: 0.5, 16: 0.2, 32: 0.2, 64: 0.2}
#: The shifts of the ``--data shifted`` series: one pixel up, down, left and right.
SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))
#: The 8 one-pixel shifts (the diagonals too): ``teacher --shifts 8``, a pilot teacher.
EIGHT_SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
#: The teacher of the distilled networks: a dense 784-1200-1200-10 ``MLPClassifier``
#: trained once (``random_state=0``, cached next to the results; every seed's student
#: learns from it) on the training images and their shifts by one pixel up, down, left
#: and right, 300,000 images. A teacher trained like its students, on the same 60,000
#: images, is no better than they are and teaches them nothing; one trained on the
#: shifts in all 8 directions (99.16% against 98.89%) gave its students lower
#: validation scores (pilot runs).
TEACHER = {
    "solver": "sgd",
    "learning_rate_init": 0.05,
    "learning_rate": "adaptive",
    "momentum": 0.9,
    "batch_size": 256,
    "max_iter": 40,
    "early_stopping": True,
    "validation_fraction": 1 / 12,
    "n_iter_no_change": 3,
    "hidden_layer_sizes": (1200, 1200),
}
TEACHER_SHIFTS = SHIFTS
#: Settings of the distilled networks, laid over ``HASHED``: the teacher's share of the
#: loss, its temperature, and a learning rate halved, as the teacher's term of the output
#: gradient reaches ``distill_weight * distill_temperature`` per logit (at 0.05 the 1/64
#: network diverged). Chosen from pilot runs (``mnist_pilot.py``, seeds 0 to 2, at 1/8 and
#: 1/64) on the mean validation score.
DISTILL = {"distill_temperature": 4.0, "distill_weight": 0.9, "learning_rate_init": 0.025}
#: Dropout of the distilled networks, by inverse compression: less than ``DROPOUT``, as the
#: teacher's soft targets regularise too; the compressions between take the nearer.
DISTILLED_DROPOUT = {1: 0.3, 2: 0.3, 4: 0.3, 8: 0.3, 16: 0.1, 32: 0.1, 64: 0.1}
#: Recorded with every result: changing a setting retires the results that depend on it
#: (``DEPENDS_ON``) instead of mixing them with new ones.
SETTINGS = json.loads(
    json.dumps(
        {
            "hashed": HASHED,
            "dropout": DROPOUT,
            "shifts": SHIFTS,
            "teacher": TEACHER,
            "teacher_shifts": TEACHER_SHIFTS,
            "distill": DISTILL,
            "distilled_dropout": DISTILLED_DROPOUT,
        }
    )
)
#: The settings each kind of model depends on (``--data shifted`` adds ``shifts``): a
#: change to the others leaves its results standing. The dense networks use ``COMMON``,
#: part of ``HASHED``.
DEPENDS_ON = {
    "dense": ("hashed",),
    "hashed": ("hashed", "dropout"),
    "distilled": ("hashed", "teacher", "teacher_shifts", "distill", "distilled_dropout"),
}


def _current(result):
    """Whether ``result`` was trained with the settings its model depends on now."""
    recorded = dict(result["settings"])
    # Until "shifts" was recorded, the shifted series used the teacher's shifts.
    recorded.setdefault("shifts", recorded["teacher_shifts"])
    keys = DEPENDS_ON[result["model"]] + (("shifts",) if _data(result) == "shifted" else ())
    return all(recorded.get(key) == SETTINGS[key] for key in keys)


def equivalent_width(compression):
    """Hidden width of the dense 784-h-10 network with the hashed one's stored parameters."""
    # The estimator's own rule for bucket counts; biases are dense.
    n_buckets = resolve_n_buckets(None, compression, [784, 1000, 10])
    n_stored = sum(n_buckets) + 1000 + 10
    return max(1, round((n_stored - 10) / (784 + 1 + 10))), n_stored


def _file_size(model):
    buffer = io.BytesIO()
    if isinstance(model, HashedMLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # teacher=None is recorded
            sk_hashednets.save(model, buffer)
    else:
        joblib.dump(model, buffer)
    return buffer.getbuffer().nbytes


def shifted(images, dy, dx):
    """MNIST images (rows of 784 pixels) moved ``dy`` pixels down and ``dx`` right, zero-filled."""
    side = 28
    square = images.reshape(-1, side, side)
    out = np.zeros_like(square)
    out[:, max(dy, 0) : side + min(dy, 0), max(dx, 0) : side + min(dx, 0)] = square[
        :, max(-dy, 0) : side + min(-dy, 0), max(-dx, 0) : side + min(-dx, 0)
    ]
    return out.reshape(len(images), -1)


def with_shifts(X, y, shifts=SHIFTS):
    """The images and their one-pixel ``shifts`` (the shifted series' ``SHIFTS``), with labels."""
    X = np.concatenate([X] + [shifted(X, dy, dx) for dy, dx in shifts])
    return X, np.concatenate([y] * (1 + len(shifts)))


def _teacher(mnist, cache_dir):
    # The name carries the teacher's settings: changing them trains a new teacher.
    settings = json.dumps([TEACHER, TEACHER_SHIFTS], sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
    path = cache_dir / f"teacher_784-1200-1200-10_{digest}.joblib"
    if path.exists():
        return joblib.load(path)
    teacher = train_teacher(mnist, TEACHER_SHIFTS)
    joblib.dump(teacher, path)
    return teacher


def train_teacher(mnist, shifts):
    """A ``TEACHER`` fitted on the training images and their ``shifts``, with its fit time."""
    X, y = with_shifts(mnist.X_train, mnist.y_train, shifts)
    teacher = MLPClassifier(**TEACHER, random_state=0)
    start = time.perf_counter()
    teacher.fit(X, y)
    teacher.fit_time_ = time.perf_counter() - start
    accuracy = 100 * teacher.score(mnist.X_test, mnist.y_test)
    print(
        f"teacher: {len(X)} training images, test accuracy {accuracy:.2f}%, "
        f"{teacher.n_iter_} epochs, {teacher.fit_time_:.0f} s, fingerprint {_fingerprint(teacher)}",
        flush=True,
    )
    return teacher


def _fingerprint(teacher):
    """The first 16 hex digits of the SHA-256 of a teacher's weights and biases.

    Two teachers trained by the same command on different machines or thread counts
    may differ (OpenBLAS rounds differently); the fingerprint says which one taught.
    """
    digest = hashlib.sha256()
    for array in [*teacher.coefs_, *teacher.intercepts_]:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _train(model_name, compression, seed, mnist, cache_dir, data):
    if model_name == "dense":
        width, _ = equivalent_width(compression)
        model = MLPClassifier(**{**COMMON, "hidden_layer_sizes": (width,)}, random_state=seed)
    else:
        extra, teacher_record = {}, {}
        if model_name == "distilled":
            teacher = _teacher(mnist, cache_dir)
            extra = {**DISTILL, "teacher": teacher}
            teacher_record = {
                "teacher_test_accuracy": 100 * teacher.score(mnist.X_test, mnist.y_test),
                "teacher_fit_seconds": getattr(teacher, "fit_time_", None),
                "teacher_sha256": _fingerprint(teacher),
            }
        dropout = (DISTILLED_DROPOUT if model_name == "distilled" else DROPOUT)[
            round(1 / compression)
        ]
        model = HashedMLPClassifier(
            **{**HASHED, **extra},
            dropout=dropout,
            compression=compression,
            random_state=seed,
        )
    X, y = mnist.X_train, mnist.y_train
    if data == "shifted":
        X, y = with_shifts(X, y)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    if model_name == "dense":
        teacher_record = {}
        n_stored = sum(W.size for W in model.coefs_) + sum(b.size for b in model.intercepts_)
        hidden = model.hidden_layer_sizes[0]
    else:
        n_stored, hidden = model.n_stored_params_, 1000
    return {
        "model": model_name,
        "compression": compression,
        "seed": seed,
        "data": data,
        "training_images": len(X),
        "hidden": hidden,
        "test_accuracy": 100 * model.score(mnist.X_test, mnist.y_test),
        "stored_params": int(n_stored),
        "file_bytes": _file_size(model),
        "fit_seconds": seconds,
        "epochs": model.n_iter_,
        "best_validation_score": float(model.best_validation_score_),
        **teacher_record,
    }


def _data(result):
    # Results from before ``--data`` existed were all trained on the original images.
    return result.get("data", "original")


def _load_results(path):
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else []


def _append_result(path, result):
    """Append one result under an exclusive lock: several ``run`` processes may share the file."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        results = json.loads(text) if text else []
        results.append(result)
        f.seek(0)
        f.truncate()
        f.write(json.dumps(results, indent=1))
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def run(args):
    mnist = load_idx(args.mnist)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    machine = f"{platform.processor() or platform.machine()}, {sk_hashednets.__version__}"
    for seed in args.seeds:
        for ratio in args.compressions:
            for model_name in args.models:
                # Read again before each model: another process may have trained it meanwhile.
                done = {
                    (r["model"], r["compression"], r["seed"], _data(r))
                    for r in _load_results(args.results)
                    if _current(r)
                }
                if (model_name, 1 / ratio, seed, args.data) in done:
                    continue
                result = _train(model_name, 1 / ratio, seed, mnist, args.results.parent, args.data)
                result["machine"] = machine
                result["settings"] = SETTINGS
                _append_result(args.results, result)
                print(json.dumps(result), flush=True)


def report(args):
    results = _load_results(args.results)
    stale = [r for r in results if not _current(r)]
    if stale:
        print(f"({len(stale)} results trained with other settings are left out.)")
    groups = {}
    for r in results:
        if not _current(r):
            continue
        groups.setdefault((r["compression"], r["model"], _data(r)), []).append(r)
    print(f"command: python {' '.join(sys.argv)}\n")
    print(f"settings: {json.dumps(SETTINGS)}\n")
    print(
        "| compression | model | training images | hidden | stored params | file (KiB) "
        "| test accuracy (%) | seeds | fit time (s) | epochs |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (compression, model, data), rows in sorted(
        groups.items(), key=lambda kv: (-kv[0][0], kv[0][2] != "original", kv[0][1])
    ):
        acc = np.array([r["test_accuracy"] for r in rows])
        images = "60,000" if data == "original" else "60,000 + shifts"
        print(
            f"| 1/{round(1 / compression)} | {model} | {images} | {rows[0]['hidden']} | "
            f"{rows[0]['stored_params']} | {rows[0]['file_bytes'] / 1024:.0f} | "
            f"{acc.mean():.2f} ± {acc.std():.2f} | {len(rows)} | "
            f"{np.mean([r['fit_seconds'] for r in rows]):.0f} | "
            f"{np.mean([r['epochs'] for r in rows]):.0f} |"
        )
    if args.plot:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        colors = {"hashed": "C0", "dense": "C1", "distilled": "C2"}
        for data in ("original", "shifted"):
            for model in ("hashed", "dense", "distilled"):
                points = sorted(
                    (
                        rows[0]["stored_params"],
                        np.mean([r["test_accuracy"] for r in rows]),
                        np.std([r["test_accuracy"] for r in rows]),
                    )
                    for (_, m, d), rows in groups.items()
                    if m == model and d == data
                )
                if not points:
                    continue
                x, y, err = zip(*points)
                # Series at a few compressions only are points, not lines.
                style = {"linestyle": "none"} if len(points) < 4 else {}
                if data == "shifted":
                    style = {
                        **style,
                        "linestyle": style.get("linestyle", "--"),
                        "markerfacecolor": "white",
                    }
                label = model if data == "original" else f"{model}, + shifts"
                ax.errorbar(
                    x, y, yerr=err, marker="o", capsize=3, label=label, color=colors[model], **style
                )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("stored parameters")
        ax.set_ylabel("MNIST test accuracy (%)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"\nplot: {args.plot}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train the models not yet in the results file")
    run_parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    run_parser.add_argument(
        "--compressions",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16, 32, 64],
        help="inverse compression ratios",
    )
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument(
        "--models",
        nargs="+",
        default=["hashed", "dense"],
        choices=["hashed", "dense", "distilled"],
    )
    run_parser.add_argument(
        "--data",
        choices=["original", "shifted"],
        default="original",
        help="train on the 60,000 training images or on them and their one-pixel shifts",
    )
    teacher_parser = sub.add_parser("teacher", help="train and save a teacher for pilot runs")
    teacher_parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    teacher_parser.add_argument(
        "--shifts",
        type=int,
        choices=[4, 8],
        default=len(TEACHER_SHIFTS),
        help="one-pixel shifts: 4 (up, down, left, right: the study's teacher) or 8",
    )
    teacher_parser.add_argument("--out", type=Path, required=True, help="joblib file to write")
    report_parser = sub.add_parser("report", help="print the table and draw the plot")
    report_parser.add_argument("--plot", type=Path, default=None)
    for p in (run_parser, report_parser):
        p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args()
    if args.command == "run":
        if not set(args.compressions) <= set(DROPOUT):
            sys.exit(
                f"--compressions takes inverse ratios among {sorted(DROPOUT)} (8 for "
                "compression 1/8): the study's dropout is set for those."
            )
        run(args)
    elif args.command == "teacher":
        shifts = SHIFTS if args.shifts == 4 else EIGHT_SHIFTS
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        joblib.dump(train_teacher(load_idx(args.mnist), shifts), args.out)
    else:
        if not args.results.exists():
            sys.exit(f"No results at {args.results}: run the study first.")
        report(args)


if __name__ == "__main__":
    main()
