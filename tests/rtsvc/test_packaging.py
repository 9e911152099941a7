"""The wheel maps rtsvc/, models/, train/, gui/ to rtsvc, rtsvc.models, rtsvc.train, rtsvc.gui.

Builds the wheel from this checkout, installs it (without dependencies) into a fresh virtual
environment, and imports every module from there. The fresh environment reaches the test
environment's dependencies (torch, numpy, ...) through a path entry, but not the editable rtsvc,
so a module missing from the wheel fails here. It also checks that no generic top-level name
(``models``, ``train``, ``gui``) lands in site-packages.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import importlib, pkgutil, sys
from pathlib import Path
venv = Path(sys.argv[1]).resolve()
import rtsvc
assert Path(rtsvc.__file__).resolve().is_relative_to(venv), rtsvc.__file__
names = []
for top in ("rtsvc", "rtsvc.models", "rtsvc.train", "rtsvc.gui"):
    mod = importlib.import_module(top)
    assert Path(mod.__file__).resolve().is_relative_to(venv), (top, mod.__file__)
    names.append(top)
    for info in pkgutil.walk_packages(mod.__path__, top + "."):
        if info.name.endswith(".__main__"):
            continue  # running it would start the CLI
        importlib.import_module(info.name)
        names.append(info.name)
for generic in ("models", "train", "gui"):
    try:
        importlib.import_module(generic)
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError(f"a top-level '{generic}' package is importable")
print("\n".join(names))
"""


def test_wheel_installs_all_four_import_names(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True, cwd=tmp_path,
    )
    wheel = next(dist.glob("rtsvc-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops <= {"rtsvc", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops

    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(vpy), "install", "-q", "--no-deps", str(wheel)], check=True
    )
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # Dependencies only: the test environment's site-packages, after the wheel's own.
    (Path(site) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run([str(vpy), "-c", CHECK, str(venv)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = set(out.stdout.split())
    assert {"rtsvc", "rtsvc.models", "rtsvc.train", "rtsvc.gui", "rtsvc.cli", "rtsvc.engine"} <= imported
