"""Which modules mypyc compiles (setup.py), and running them as plain Python instead.

The ingest hot path is compiled to C extensions that sit beside their sources, and the
same .py files stay the source of truth. They are all imported from source instead when
BRIEFBOT_PURE=1, or in a source checkout whose compiled modules are older than their
sources (edited since the last `make install`). All of them or none: compiled modules
call one another directly, so a mix would still run the stale code.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

# Pure, typed modules that run for every stored entry: parsing, tagging, signatures,
# summaries, claims. Listed callees first.
MODULES = (
    "bot.caches",
    "bot.spaces",
    "bot.htmltext",
    "bot.feedxml",
    "bot.parse",
    "bot.normalise",
    "bot.tagger",
    "bot.summarise",
    "bot.cluster",
    "bot.claims.figures",
    "bot.claims.query",
    "bot.claims.extract",
    "bot.claims.link",
)
GROUP = "briefbot"  # mypyc's name for the shared library: briefbot__mypyc.*.so
ROOT = Path(__file__).resolve().parents[1]


def source_path(module: str) -> str:
    """The module's source, relative to the checkout (as setup.py and make name it)."""
    return module.replace(".", "/") + ".py"


def source_of(module: str) -> Path:
    return ROOT / source_path(module)


def built_library() -> Path | None:
    """The shared library holding the compiled code of every module, if it was built (each
    module's own extension is a stub that loads it)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        built = ROOT / f"{GROUP}__mypyc{suffix}"
        if built.exists():
            return built
    return None


def by_fields(obj: Any) -> tuple[type[Any], tuple[object, ...]]:
    """__reduce__ for a frozen dataclass that crosses to or from the parse workers: rebuilt
    from its init fields. Compiled, a frozen class lacks the __setstate__ that pickle's
    default way needs."""
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init)


def is_compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


def stale() -> list[str]:
    """Compiled modules older than their source, in a source checkout (an installed
    package's files carry install times, which say nothing)."""
    built = built_library()
    if built is None or not (ROOT / ".git").exists():
        return []
    at = built.stat().st_mtime
    return [module for module in MODULES if source_of(module).stat().st_mtime > at]


class _FromSource:
    """A meta path finder that imports the compiled modules from their .py files."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def use_sources_if_needed() -> None:
    if any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        return
    if os.environ.get("BRIEFBOT_PURE") == "1":
        sys.meta_path.insert(0, _FromSource())
        return
    if outdated := stale():
        warnings.warn(
            f"compiled modules older than their sources ({', '.join(outdated)}): running "
            "them as plain Python; `make install` rebuilds them",
            RuntimeWarning,
            stacklevel=2,
        )
        sys.meta_path.insert(0, _FromSource())
