"""Build hook: compiles the ingest hot path with mypyc (see "Compiled modules" in README.md).

Everything else is declared in pyproject.toml. The list of modules is bot/compiled.py's.
Set BRIEFBOT_COMPILE=0, or build where mypyc is not installed, to get pure Python.
"""

from __future__ import annotations

import os
import runpy

from setuptools import setup


def ext_modules() -> list[object]:
    if os.environ.get("BRIEFBOT_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # an isolated build without mypy: pure Python
        return []
    # Read as a file: importing the bot package would run its import-time set-up.
    compiled = runpy.run_path("bot/compiled.py")
    paths = [compiled["source_path"](module) for module in compiled["MODULES"]]
    return list(mypycify(paths, opt_level="3", group_name=compiled["GROUP"]))


setup(ext_modules=ext_modules())
