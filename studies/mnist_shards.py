"""MNIST accuracy of sharded hashing (``hash_shards="auto"``) against the paper's element hash.

Usage::

    python studies/mnist_shards.py run [--compressions 8 64] [--seeds 0 1 2]
        [--models sharded element] [--results studies/results/mnist_shards.json]
    python studies/mnist_shards.py report [--compressions 8 64] [--seeds 0 1 2] [--results ...]
        [--element-results studies/results/mnist_compression.json]

``--mnist`` defaults as in ``mnist_compression.py`` (``SK_HASHEDNETS_MNIST_DIR``,
else ``../shared/data/mnist`` beside the checkout).

Issue 18's accuracy check: the hashed 784-1000-10 network of the MNIST
compression study, with that study's settings and helpers (imported from
``mnist_compression.py``: ``HASHED``, ``DROPOUT``, the MNIST directory, the
locked results file), trained with ``hash_shards="auto"`` (``sharded``) and
with the paper's unsharded element hash (``element``, ``hash_shards=None``,
the study's own ``hashed`` model), for every compression and seed. Each result
records, per layer, the resolved shard count and the bucket occupancy: the
virtual weights that share each bucket (``sk_hashednets.plotting.bucket_counts``),
its maximum, mean and their ratio.

``run`` appends each finished model to the results file at once and skips the
ones already there with the current settings, so it can be stopped and resumed.
A sharded result counts while its recorded shards are the ones "auto" gives now.

``report`` prints the markdown table, mean and standard deviation over seeds.
Sharded results record their hash specification version; those of version 2,
whose shards were blocks of consecutive pixels rather than every 16th pixel,
are reported in rows of their own ("sharded, version 2 (contiguous)").
The element rows take this file's element results where it has them, else the
compression study's ``hashed`` results (``--element-results``, same settings,
same bits) with the occupancy of their hash: a network of the same settings
and seed fitted for one epoch on 512 images (the hash depends on the seed,
the shapes and the bucket counts only, never on the data).
"""

import argparse
import importlib.util
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import sk_hashednets
from sk_hashednets import HashedMLPClassifier
from sk_hashednets._layout import resolve_hash_shards
from sk_hashednets.datasets import load_idx
from sk_hashednets.plotting import bucket_counts


def _load_compression_study():
    path = Path(__file__).resolve().with_name("mnist_compression.py")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


study = _load_compression_study()

DEFAULT_RESULTS = study.ROOT / "studies" / "results" / "mnist_shards.json"
#: ``hash_shards`` of each model.
HASH_SHARDS = {"sharded": "auto", "element": None}
#: The compression study's settings these models depend on (its ``hashed`` model's).
SETTINGS = {key: study.SETTINGS[key] for key in study.DEPENDS_ON["hashed"]}
#: Images of the one-epoch fit that gives a reused result's hash (``hash_model``).
HASH_FIT_IMAGES = 512


def make_model(model_name, compression, seed, **overrides):
    """The study's hashed network with the ``hash_shards`` of ``model_name``."""
    params = {
        **study.HASHED,
        "dropout": study.DROPOUT[round(1 / compression)],
        "compression": compression,
        "random_state": seed,
        "hash_shards": HASH_SHARDS[model_name],
    }
    return HashedMLPClassifier(**{**params, **overrides})


def occupancy(model):
    """Per layer: its shards and buckets, and the virtual weights per bucket (max, mean, ratio)."""
    layers = []
    for layer, n_shards in enumerate(model.hash_shards_):
        counts = bucket_counts(model, layer)
        mean = counts.sum() / counts.size
        layers.append(
            {
                "layer": layer,
                "shards": int(n_shards),
                "buckets": int(counts.size),
                "max": int(counts.max()),
                "min": int(counts.min()),
                "mean": float(mean),
                "max_over_mean": float(counts.max() / mean),
            }
        )
    return layers


def hash_model(model_name, compression, seed, X, y, **overrides):
    """A network of the study's settings and ``seed`` fitted for one epoch on a few images.

    Its hash (seeds, shards, bucket counts) is the fully trained network's:
    the hash seeds are drawn before any data is seen.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_model(model_name, compression, seed, **{**overrides, "max_iter": 1})
        return model.fit(X[:HASH_FIT_IMAGES], y[:HASH_FIT_IMAGES])


def hash_version(result):
    """The hash specification version of a result (2 before results recorded it)."""
    return result.get("hash_spec_version", 2)


#: The name of a sharded result of an earlier hash version in the report: version 2's
#: shards were blocks of consecutive pixels (``docs/hashing.md``).
PREVIOUS = {2: "sharded, version 2 (contiguous)"}


def current(result, n_buckets=None, version=None):
    """Whether ``result`` was trained with today's settings (and, if sharded, today's hash).

    A sharded result counts while its hash version is ``version`` (by default
    this package's) and its recorded shards are the ones "auto" gives now.
    """
    if result.get("settings") != SETTINGS:
        return False
    if result["model"] != "sharded":
        return True
    if hash_version(result) != (version or sk_hashednets.HASH_SPEC_VERSION):
        return False
    units = [784, *study.HASHED["hidden_layer_sizes"], 10]
    n_buckets = n_buckets or [layer["buckets"] for layer in result["occupancy"]]
    return result["hash_shards_"] == resolve_hash_shards("auto", units, n_buckets)


def train(model_name, compression, seed, mnist):
    """Fit one network on the study's images; its test accuracy, time and occupancy."""
    model = make_model(model_name, compression, seed)
    start = time.perf_counter()
    model.fit(mnist.X_train, mnist.y_train)
    seconds = time.perf_counter() - start
    return {
        "model": model_name,
        "hash_shards": HASH_SHARDS[model_name],
        "hash_shards_": [int(s) for s in model.hash_shards_],
        "hash_spec_version": int(model.hash_spec_version_),
        "compression": compression,
        "seed": seed,
        "test_accuracy": 100 * model.score(mnist.X_test, mnist.y_test),
        "stored_params": int(model.n_stored_params_),
        "fit_seconds": seconds,
        "epochs": model.n_iter_,
        "best_validation_score": float(model.best_validation_score_),
        "occupancy": occupancy(model),
    }


def run(args):
    mnist = load_idx(args.mnist)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    machine = f"{platform.processor() or platform.machine()}, {sk_hashednets.__version__}"
    for model_name in args.models:
        for seed in args.seeds:
            for ratio in args.compressions:
                # Read again before each model: another process may have trained it meanwhile.
                done = {
                    (r["model"], r["compression"], r["seed"])
                    for r in study._load_results(args.results)
                    if current(r)
                }
                if (model_name, 1 / ratio, seed) in done:
                    continue
                result = train(model_name, 1 / ratio, seed, mnist)
                result["machine"] = machine
                result["settings"] = SETTINGS
                study._append_result(args.results, result)
                print(json.dumps(result), flush=True)


def reused_element_results(results, element_results, mnist_dir):
    """The compression study's ``hashed`` results this file lacks, as element rows."""
    have = {(r["compression"], r["seed"]) for r in results if r["model"] == "element"}
    reused, mnist = [], None
    for r in element_results:
        key = (r["compression"], r["seed"])
        if r["model"] != "hashed" or study._data(r) != "original" or key in have:
            continue
        if not study._current(r) or round(1 / r["compression"]) not in study.DROPOUT:
            continue
        if mnist is None:
            mnist = load_idx(mnist_dir)
        model = hash_model("element", r["compression"], r["seed"], mnist.X_train, mnist.y_train)
        reused.append(
            {
                **{k: r[k] for k in ("compression", "seed", "test_accuracy", "fit_seconds")},
                **{"epochs": r["epochs"], "model": "element", "source": "mnist_compression"},
                "hash_shards_": [int(s) for s in model.hash_shards_],
                "occupancy": occupancy(model),
            }
        )
        have.add(key)
    return reused


def summary_rows(results):
    """Markdown rows: per compression and model, accuracy over seeds and occupancy per layer."""
    groups = {}
    for r in results:
        groups.setdefault((r["compression"], r["model"]), []).append(r)
    lines = []
    for (compression, model), rows in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        rows = sorted(rows, key=lambda r: r["seed"])
        acc = np.array([r["test_accuracy"] for r in rows])
        seeds = ", ".join(str(r["seed"]) for r in rows)
        layers = []
        for layer in range(len(rows[0]["occupancy"])):
            stats = [r["occupancy"][layer] for r in rows]
            layers.append(
                f"{stats[0]['shards']} / {stats[0]['buckets']} / "
                f"{max(s['max'] for s in stats)} / {stats[0]['mean']:.1f} / "
                f"{np.mean([s['max_over_mean'] for s in stats]):.2f}"
            )
        sources = sorted({r.get("source", "mnist_shards") for r in rows})
        lines.append(
            f"| 1/{round(1 / compression)} | {model} | {acc.mean():.2f} ± {acc.std():.2f} | "
            f"{' '.join(f'{a:.2f}' for a in acc)} | {seeds} | "
            + " | ".join(layers)
            + f" | {np.mean([r['fit_seconds'] for r in rows]):.0f} | "
            f"{np.mean([r['epochs'] for r in rows]):.0f} | {', '.join(sources)} |"
        )
    return lines


def differences(results, sharded="sharded"):
    """Per compression: the seeds both models have, and the ``sharded`` mean minus the element one.

    Over the seeds both have (all of them once the study is complete), so that an unfinished
    study compares like with like.
    """
    out = {}
    for compression in sorted({r["compression"] for r in results}, reverse=True):
        accuracy = {
            model: {
                r["seed"]: r["test_accuracy"]
                for r in results
                if r["compression"] == compression and r["model"] == model
            }
            for model in (sharded, "element")
        }
        seeds = sorted(set(accuracy[sharded]) & set(accuracy["element"]))
        if seeds:
            means = {m: np.mean([accuracy[m][s] for s in seeds]) for m in accuracy}
            out[compression] = (seeds, means[sharded] - means["element"])
    return out


def report(args):
    results = list(
        {
            (r["model"], r["compression"], r["seed"]): r
            for r in reversed(study._load_results(args.results))
            if current(r)
        }.values()
    )  # the first result of each model, should two processes have trained it
    for version, name in PREVIOUS.items():
        results += list(
            {
                (r["compression"], r["seed"]): {**r, "model": name}
                for r in reversed(study._load_results(args.results))
                if r["model"] == "sharded" and current(r, version=version)
            }.values()
        )
    element = study._load_results(args.element_results) if args.element_results else []
    results += reused_element_results(results, element, args.mnist)
    results = [
        r
        for r in results
        if round(1 / r["compression"]) in args.compressions and r["seed"] in args.seeds
    ]
    print(f"command: python {' '.join(sys.argv)}\n")
    print(
        "| compression | model | test accuracy (%) | per seed | seeds "
        "| layer 0: shards / buckets / max / mean / max÷mean "
        "| layer 1: shards / buckets / max / mean / max÷mean | fit time (s) | epochs | from |"
    )
    print("|---:|---|---:|---|---|---|---|---:|---:|---|")
    for line in summary_rows(results):
        print(line)
    print()
    for sharded in ("sharded", *PREVIOUS.values()):
        for compression, (seeds, diff) in differences(results, sharded).items():
            print(
                f"1/{round(1 / compression)}: {sharded} - element = {diff:+.2f} points "
                f"(mean over seeds {', '.join(map(str, seeds))})"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train the models not yet in the results file")
    run_parser.add_argument(
        "--models", nargs="+", default=["sharded", "element"], choices=list(HASH_SHARDS)
    )
    report_parser = sub.add_parser("report", help="print the table")
    report_parser.add_argument(
        "--element-results",
        type=Path,
        default=study.DEFAULT_RESULTS,
        help="the compression study's results, for the element rows this file lacks",
    )
    for p in (run_parser, report_parser):
        p.add_argument(
            "--compressions", type=int, nargs="+", default=[8, 64], help="inverse ratios"
        )
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        p.add_argument("--mnist", type=Path, default=study.DEFAULT_MNIST)
        p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args()
    if args.command == "run":
        if not set(args.compressions) <= set(study.DROPOUT):
            sys.exit(f"--compressions takes inverse ratios among {sorted(study.DROPOUT)}.")
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
