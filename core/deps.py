"""Optional Python packages: which are missing, and how to install them into *this* QGIS's Python.

QGIS does not ship scikit-learn or onnxruntime. When one is missing the plugin shows the exact
command that installs it for the interpreter QGIS runs, into the user's site folder, and never
lets pip replace the distribution's numpy or GDAL: the command pins numpy to the version QGIS
has loaded (GDAL's Python bindings are built against it; another numpy breaks them).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
import sysconfig
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

#: Import name → name on PyPI, where they differ.
PIP_NAMES: dict[str, str] = {"sklearn": "scikit-learn"}


def missing_packages(names: Iterable[str]) -> list[str]:
    """Import names among ``names`` that cannot be imported, in the given order.

    A package that is installed but fails on import (e.g. built for numpy 2) counts as
    missing too: it is just as unusable.

    >>> missing_packages(["json", "surely_not_a_module_2718"])
    ['surely_not_a_module_2718']
    """
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - ImportError, or a broken build raising anything else
            missing.append(name)
    return missing


@dataclass(frozen=True)
class PythonEnv:
    """What the install command depends on; :func:`current_python` describes the running one."""

    platform: str  # sys.platform: "linux", "win32", "darwin"
    executable: str  # the Python to run pip with (never qgis.bin / qgis-bin.exe)
    numpy_version: Optional[str] = None
    externally_managed: bool = False  # PEP 668 marker (Debian 12): pip needs --break-system-packages
    in_venv: bool = False  # a virtualenv: no --user there
    has_pip: bool = True

    @property
    def windows(self) -> bool:
        return self.platform.startswith("win")


def python_executable(
    executable: str = sys.executable,
    exec_prefix: str = sys.exec_prefix,
    platform: str = sys.platform,
    version: Sequence[int] = tuple(sys.version_info[:2]),
) -> str:
    """The Python interpreter behind the running process, even when that process is QGIS.

    Inside QGIS ``sys.executable`` is ``/usr/bin/qgis.bin`` (Linux), ``QGIS.app/Contents/MacOS/QGIS``
    or ``qgis-bin.exe``; pip must be run with the Python QGIS embeds instead. On Windows the answer
    is ``python`` as typed in the OSGeo4W Shell that comes with QGIS, whose PATH selects QGIS's Python.
    """
    if os.path.basename(executable).lower().startswith("python"):
        return executable
    if platform.startswith("win"):
        return "python"
    versioned = f"python{version[0]}.{version[1]}"
    for folder in (os.path.join(exec_prefix, "bin"), os.path.join(os.path.dirname(executable), "bin")):
        exact = os.path.join(folder, versioned)
        if os.path.exists(exact):
            friendly = os.path.join(folder, "python3")  # /usr/bin/python3 reads better, if it is the same
            if os.path.exists(friendly) and os.path.realpath(friendly) == os.path.realpath(exact):
                return friendly
            return exact
    return "python3"


def current_python() -> PythonEnv:
    """Describe the interpreter this code runs in."""
    try:
        import numpy

        numpy_version: Optional[str] = numpy.__version__
    except ImportError:
        numpy_version = None
    in_venv = sys.prefix != sys.base_prefix
    marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    return PythonEnv(
        platform=sys.platform,
        executable=python_executable(),
        numpy_version=numpy_version,
        externally_managed=os.path.exists(marker) and not in_venv,
        in_venv=in_venv,
        has_pip=importlib.util.find_spec("pip") is not None,
    )


def pip_names(missing: Iterable[str]) -> list[str]:
    """PyPI names for import names, without duplicates (``sklearn`` → ``scikit-learn``)."""
    out: list[str] = []
    for name in missing:
        pip_name = PIP_NAMES.get(name, name)
        if pip_name not in out:
            out.append(pip_name)
    return out


def pip_command(missing: Iterable[str], env: PythonEnv) -> list[str]:
    """The pip command, as an argument list, that installs ``missing`` for ``env``."""
    cmd = [env.executable, "-m", "pip", "install"]
    if not env.in_venv:
        cmd.append("--user")
        if env.externally_managed:
            cmd.append("--break-system-packages")
    cmd += pip_names(missing)
    if env.numpy_version:
        # Exactly the numpy QGIS has loaded: pip then picks versions of the packages built for it, instead
        # of installing a newer numpy into the user's site folder that shadows QGIS's (and breaks GDAL).
        cmd.append(f"numpy=={env.numpy_version}")
    return cmd


def _shell_line(cmd: Sequence[str], windows: bool) -> str:
    if not windows:
        return shlex.join(cmd)
    # cmd.exe: quote what contains spaces or redirection characters (numpy<2, numpy==1.24.2 is safe).
    return " ".join(f'"{a}"' if any(c in a for c in ' <>|&^') else a for a in cmd)


def install_hint(missing: Sequence[str], env: Optional[PythonEnv] = None) -> str:
    """A message telling a QGIS user how to install ``missing`` (import names) for this QGIS.

    Returns ``""`` when nothing is missing.

    >>> env = PythonEnv("linux", "/usr/bin/python3", "1.24.2", externally_managed=True)
    >>> print(install_hint(["sklearn"], env).splitlines()[2])
        /usr/bin/python3 -m pip install --user --break-system-packages scikit-learn numpy==1.24.2
    """
    if not missing:
        return ""
    env = env or current_python()
    names = ", ".join(pip_names(missing))
    cmd = pip_command(missing, env)
    lines = [f"Missing Python packages (not installed, or broken): {names}."]
    if env.windows:
        lines.append("Close QGIS, open the 'OSGeo4W Shell' installed with this QGIS (Start menu) and run:")
    elif env.in_venv:
        lines.append("Run, in a terminal, with the Python environment QGIS uses:")
    else:
        lines.append("Close QGIS, open a terminal and run, with the Python that QGIS uses:")
    if not env.has_pip:
        lines.append(
            "    sudo apt install python3-pip    (Debian/Ubuntu: pip is not installed yet)"
            if env.platform.startswith("linux")
            else f"    {env.executable} -m ensurepip --user    (pip is not installed yet)"
        )
    lines.append(f"    {_shell_line(cmd, env.windows)}")
    if env.externally_managed and not env.in_venv:
        lines.append(
            "--break-system-packages only lets pip write to your home folder (~/.local); "
            "no system package is changed."
        )
    if env.numpy_version:
        lines.append(
            f"'numpy=={env.numpy_version}' keeps the numpy QGIS loads (GDAL and QGIS are built against it). "
            "Never upgrade numpy or GDAL with pip."
        )
    lines.append("Then start QGIS again.")
    return "\n".join(lines)
