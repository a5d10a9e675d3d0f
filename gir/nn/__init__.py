"""Model registry: generators and discriminators chosen by name from params.yaml.

As BasicSR does with ``type:``, each architecture registers itself with a decorator in its
own module; every module in this package is imported on first lookup, so adding a generator
is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from gir.errors import GirError

GENERATORS: dict[str, Callable] = {}
DISCRIMINATORS: dict[str, Callable] = {}
_loaded = False


def register_generator(name: str) -> Callable:
    def deco(cls):
        GENERATORS[name] = cls
        return cls

    return deco


def register_discriminator(name: str) -> Callable:
    def deco(cls):
        DISCRIMINATORS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True


def _build(table: dict, kind: str, name: str, kwargs: dict):
    _load_all()
    if name not in table:
        raise GirError(f"model.{kind}: unknown {kind} {name!r} (known: {', '.join(sorted(table))})")
    try:
        return table[name](**(kwargs or {}))
    except TypeError as exc:
        raise GirError(f"model.{kind}_args: {exc}") from None


def build_generator(name: str, args: dict | None = None):
    """A generator nn.Module by registered name; args are its constructor's keywords."""
    return _build(GENERATORS, "generator", name, args or {})


def build_discriminator(name: str, args: dict | None = None):
    """A discriminator nn.Module by registered name."""
    return _build(DISCRIMINATORS, "discriminator", name, args or {})


def for_inference(generator):
    """The generator in the form inference runs: the same function re-arranged to run faster
    where its architecture knows how (a ``for_inference()`` method), else the generator itself.
    The CLI, web page, REST, evaluation, ONNX export and `gir bench` all time and run this form."""
    fold = getattr(generator, "for_inference", None)
    return fold() if callable(fold) else generator


def generator_names() -> list[str]:
    _load_all()
    return sorted(GENERATORS)
