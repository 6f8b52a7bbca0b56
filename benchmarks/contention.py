"""The quick start's fits alone and beside one busy process, in one run.

examples/quickstart.py fits ``MLPClassifier`` and ``HashedMLPClassifier`` at five
compressions on scikit-learn's digits. On a machine with few cores, a process
that keeps one core busy can make those fits many times slower when the
kernels' and BLAS's threads spin for the core that is left (issue 19 item 5).
This script times the same fits, each in a fresh Python process, first alone
and then beside a busy process (a second Python process spinning for at most
``--busy-limit`` seconds, stopped as soon as the fit ends), repeat after repeat,
and prints per model the median time alone, beside the busy process, and the
median of the repeats' busy/alone ratios. ``--env`` adds configurations
(environment variables for the fitting process) measured the same way in the
same run, so that their ratios can be compared.

    python benchmarks/contention.py
    python benchmarks/contention.py --models dense 8 64 --repeats 2 \
        --env "" "NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"

A configuration may also run another copy of the package, e.g. the code before a
change: ``"PYTHONSAFEPATH=1 PYTHONPATH=/path/to/old/checkout"``.

The goal: every fit beside one busy process within 2 times its time alone.
Other processes on the machine change both columns; compare ratios, and read
the load average printed at the start and the end.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

#: The fitting process: the quick start's data and models, timed fit by fit.
CHILD = r"""
import json, sys, time, warnings
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sk_hashednets import HashedMLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

def model(name, **kw):
    if name == "dense":
        return MLPClassifier(hidden_layer_sizes=(256,), random_state=0, **kw)
    return HashedMLPClassifier(
        hidden_layer_sizes=(256,), compression=1 / float(name), random_state=0, **kw
    )

names = sys.argv[1:]
for name in names:  # compile the kernels and load BLAS before any timing
    model(name, max_iter=1).fit(X_train[:50], y_train[:50])
print("ready", flush=True)
sys.stdin.readline()  # the parent starts the busy process, if any, then says go
try:  # a count of the free cores stands for a second: count afresh, beside the busy process
    from sk_hashednets._kernels import _free_cores
    _free_cores._forget_count()
except (ImportError, AttributeError):  # a checkout from before the count
    pass
seconds = {}
for name in names:
    start = time.perf_counter()
    model(name).fit(X_train, y_train)
    seconds[name] = time.perf_counter() - start
print(json.dumps(seconds), flush=True)
"""

#: The busy process: one core spinning, for at most argv[1] seconds.
BUSY = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"


def fit_times(models, env, busy_limit):
    """Seconds of each fit, in a fresh process with ``env``, beside a busy process or not."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *models],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    busy = None
    if busy_limit:
        busy = subprocess.Popen([sys.executable, "-c", BUSY, str(busy_limit)])
        time.sleep(0.5)  # let it start spinning
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait()
        child.wait()
    return result


def parse_env(text):
    return dict(item.split("=", 1) for item in shlex.split(text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["dense", "1", "4", "8", "16", "64"],
        help="'dense' (MLPClassifier) and hashed compressions 1/N given as N",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy-limit", type=float, default=300.0, help="seconds, at most")
    parser.add_argument(
        "--env",
        nargs="+",
        default=[""],
        help='configurations, each "VAR=VALUE ..." ("" = the environment as it is)',
    )
    args = parser.parse_args(argv)
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"cores available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()}")
    quiet = {text: {name: [] for name in args.models} for text in args.env}
    busy = {text: {name: [] for name in args.models} for text in args.env}
    for _ in range(args.repeats):  # configurations interleaved: the same drift for all
        for text in args.env:
            env = parse_env(text)
            for name, seconds in fit_times(args.models, env, 0).items():
                quiet[text][name].append(seconds)
            for name, seconds in fit_times(args.models, env, args.busy_limit).items():
                busy[text][name].append(seconds)
    for text in args.env:
        quiet_s, busy_s = quiet[text], busy[text]
        print(f"\nconfiguration: {text or '(environment as it is)'}")
        print(f"{'model':<10} {'alone (s)':>10} {'busy (s)':>10} {'busy/alone':>11}")
        for name in args.models:
            ratio = statistics.median(b / q for b, q in zip(busy_s[name], quiet_s[name]))
            label = "dense" if name == "dense" else f"1/{name}"
            print(
                f"{label:<10} {statistics.median(quiet_s[name]):>10.2f} "
                f"{statistics.median(busy_s[name]):>10.2f} {ratio:>11.2f}"
            )
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
