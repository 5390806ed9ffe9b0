"""Lazy package exports (PEP 562): a package names what it exports and from which module, and each
module is imported at the first use of one of its names, so that ``import sb3_llmae`` (and the CLI's
``--help``) does not pay for torch, SB3 or datasets until something needs them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

IMITATION_MISSING = (
    "sb3_llmae needs the 'imitation' package, installed without its stale pins "
    "(they would pull stable-baselines3 2.2 and gymnasium 0.29): pip install --no-deps imitation==1.0.1"
)


def require_imitation() -> None:
    """
    :raises ImportError: naming the install command, if ``imitation`` cannot be imported
    """
    # find_spec answers without importing (imitation pulls torch and SB3); it is None when the
    # package is missing or blocked (sys.modules["imitation"] = None)
    try:
        found = importlib.util.find_spec("imitation") is not None
    except ValueError:  # in sys.modules without a spec
        found = "imitation" in sys.modules and sys.modules["imitation"] is not None
    if not found:
        raise ImportError(IMITATION_MISSING, name="imitation")


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """
    Make a package's module-level ``__getattr__`` and ``__dir__``.

    :param package: the package's ``__name__``
    :param exports: per module (absolute name), the names the package re-exports from it
    :return: ``(__getattr__, __dir__)`` for the package's namespace; ``__getattr__`` also imports the
        package's submodules by name (``package.ppo`` without ``import package.ppo``)
    """
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module_name = module_of.get(name)
        if module_name is None:
            if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        require_imitation()
        value = getattr(importlib.import_module(module_name), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return __getattr__, __dir__
