"""Helpers shared by the benchmarks: estimator options, memory measurement (Linux)."""

import resource
import sys


def maxrss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vmhwm_mib():
    """Peak RSS of this process image (VmHWM of /proc/self/status), or NaN."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def via_shell(command):
    """``command`` run by a shell that forks it, so that its ru_maxrss starts afresh.

    Linux carries the RSS high-water mark of the process that calls exec into
    the new program's ru_maxrss: a child that Python spawns directly would
    report at least the calling benchmark process's peak. A child forked by a
    small shell reports its own. The ``; exit`` stops the shell from exec-ing it.
    """
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command]


def hashed_extra_params(hashing, max_tile_bytes):
    """Keyword arguments for the hashed estimator from the command line, checked.

    Each is passed only when given, so that the estimator's defaults are
    measured otherwise; an invalid value stops the benchmark before any work.
    """
    from sk_hashednets import HashedMLPClassifier

    extra = {
        name: value
        for name, value in (("hashing", hashing), ("max_tile_bytes", max_tile_bytes))
        if value is not None
    }
    try:
        HashedMLPClassifier(**extra)._validate_params()
    except ValueError as error:
        sys.exit(f"invalid option: {error}")
    return extra


def print_table(title, header, rows, markdown, n_text):
    """Print rows under header; the first ``n_text`` columns are text, the rest numbers."""
    print()
    print(f"## {title}" if markdown else title)
    print()
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if i < n_text else "---:" for i in range(len(header))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
