"""The documentation builds offline with warnings as errors, examples included.

The build runs on a copy of ``docs/`` and ``examples/`` in a temporary
directory: sphinx-gallery and autosummary write their generated pages next to
the sources, and the copy keeps them (and any stale ones from a developer's own
build) out of the repository. A docstring that numpydoc cannot parse, a broken
cross-reference, a page missing from every toctree or a gallery script that
fails all make the build fail.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

# What sphinx-gallery, autosummary and a build in place leave in docs/.
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__")


def _pages():
    return sorted(
        p.relative_to(DOCS).with_suffix("").as_posix()
        for p in DOCS.rglob("*.md")
        if not set(p.relative_to(DOCS).parts) & set(GENERATED)
    )


def _toctree_entries():
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    entries = set()
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.add(line)
    return entries


def test_every_page_is_in_a_toctree():
    # The -W build fails on an orphan page too; this says which, without a build.
    missing = set(_pages()) - _toctree_entries() - {"index"}
    assert not missing, f"pages in no toctree of docs/index.md: {sorted(missing)}"


def test_every_figure_comes_from_a_committed_script():
    # A gallery image names its script; any other image must be a file in docs/
    # on a page that gives the benchmarks/ or studies/ command that made it.
    figure = re.compile(r"```\{(?:figure|image)\}\s+(\S+)|!\[[^\]]*\]\(([^)\s]+)\)")
    for page in DOCS.rglob("*.md"):
        if set(page.relative_to(DOCS).parts) & set(GENERATED):
            continue
        text = page.read_text(encoding="utf-8")
        for match in figure.finditer(text):
            path = match.group(1) or match.group(2)
            assert not path.startswith(("http://", "https://")), f"{page.name}: remote {path}"
            gallery = re.fullmatch(r"/?auto_examples/images/sphx_glr_(plot_\w+?)_\d{3}\.png", path)
            if gallery:
                script = EXAMPLES / f"{gallery.group(1)}.py"
                assert script.is_file(), f"{page.name}: {path} has no script {script.name}"
                continue
            assert (page.parent / path).is_file(), f"{page.name}: {path} does not exist"
            scripts = re.findall(r"python ((?:benchmarks|studies)/\w+\.py)", text)
            assert any((ROOT / s).is_file() for s in scripts), (
                f"{page.name}: {path} is neither a gallery image nor on a page that gives "
                "the benchmarks/ or studies/ command that made it"
            )


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    # pip install ".[docs]" (part of ".[test]") installs them.
    for module in [
        "sphinx",
        "numpydoc",
        "sphinx_gallery",
        "myst_parser",
        "pydata_sphinx_theme",
        "matplotlib",
    ]:
        pytest.importorskip(module)
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(*GENERATED, "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(DOCS, source / "docs", ignore=ignore)
    shutil.copytree(EXAMPLES, source / "examples", ignore=ignore)
    env = dict(os.environ, MPLBACKEND="Agg")
    # The package under test is this checkout's, as for the rest of the suite.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    html = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            str(source / "docs"),
            str(html),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"sphinx-build failed ({result.returncode}):\n{result.stderr}\n"
        f"--- last lines of stdout ---\n{result.stdout[-3000:]}"
    )
    for page in [
        "index",
        "introduction",
        "compression",
        "api",
        "hashing",
        "auto_examples/plot_virtual_matrix",
        "auto_examples/plot_compression",
        "auto_examples/quickstart",
        "auto_examples/plot_mnist_compression",
        "generated/sk_hashednets.HashedMLPClassifier",
    ]:
        assert (html / f"{page}.html").is_file(), f"{page}.html was not built"
    # Classes list their methods, the inherited ones included.
    api = (html / "generated/sk_hashednets.HashedMLPClassifier.html").read_text(encoding="utf-8")
    for method in ["fit", "partial_fit", "predict_proba", "virtual_coefs", "to_sklearn"]:
        assert f"HashedMLPClassifier.{method}" in api
    # The pages' figures are the gallery's, made by this build.
    images = html / "_images"
    assert (images / "sphx_glr_plot_virtual_matrix_001.png").is_file()
    assert (images / "sphx_glr_plot_compression_001.png").is_file()
    # quickstart.py and the MNIST study are shown, not run.
    for name in ["quickstart", "plot_mnist_compression"]:
        assert not list((source / "docs/auto_examples/images").glob(f"sphx_glr_{name}_*"))
