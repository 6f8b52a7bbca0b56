"""Download size of what ``pip install "sk_hashednets[gpu]"`` brings, package by package.

Resolves the requirement with pip (``--dry-run --report``, nothing installed)
and asks the index for each wheel's size (HTTP HEAD); needs network access to
the index. Installed, the libraries take more room than their wheels.

    python benchmarks/gpu_extra_size.py
    python benchmarks/gpu_extra_size.py "cupy-cuda12x>=14" "cuda-toolkit[nvrtc,cublas,cudart]==12.*"
"""

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

DEFAULT = ["cupy-cuda12x[ctk]>=14"]  # the gpu extra of pyproject.toml


def main(requirements):
    print("$ python benchmarks/gpu_extra_size.py " + " ".join(requirements))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
            + ["--quiet", "--report", str(report), *requirements],
            check=True,
        )
        packages = json.loads(report.read_text())["install"]
    total = 0
    for package in packages:
        url = package["download_info"]["url"]
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as response:
            size = int(response.headers["Content-Length"])
        total += size
        print(f"{package['metadata']['name']:<26} {size / 2**20:8.1f} MiB")
    print(f"{'total':<26} {total / 2**20:8.1f} MiB ({total / 10**9:.2f} GB) to download")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
