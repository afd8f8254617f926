"""Import aliases: make ``import kafka`` load ``mqlog.kafka`` (for the pytest plugin).

:class:`ModuleAliases` maps top-level package names to other packages, submodules
included, generically: with ``{"kafka": "mqlog.kafka"}`` active, ``import kafka.errors``
and ``from kafka.admin import NewTopic`` get ``mqlog.kafka.errors`` and
``mqlog.kafka.admin`` — whatever submodules the target grows, without a list here.

How: a finder first on ``sys.meta_path`` claims the aliased names; its loader imports
the target module under its own name and puts that module object into
``sys.modules[alias]`` (the import system returns whatever ``sys.modules`` holds after
``exec_module``, so the target keeps its own ``__name__`` and ``__spec__``). A real
package of the same name, installed or already imported, is hidden meanwhile.

Restoration: activation takes the aliased names' ``sys.modules`` entries out and keeps
them; deactivation removes the finder and every aliased entry, and puts the kept ones
back, so ``sys.modules[name]`` is again the very object it was (real modules included).
The targets (``mqlog.kafka`` ...) stay imported under their own names. References the
code under test took meanwhile (``from kafka import KafkaProducer`` into a module's
globals) are the caller's to drop: the aliases cannot reach them.

Only the standard library is imported here: the pytest plugin loads this module in
every test session that asks for the aliases, and the targets load on first import.

Thread-safety: activation and deactivation are serialised by one lock per instance;
imports are serialised by the import system's own module locks. The aliases are
process-wide while active (``sys.modules`` is), as every import hook is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType

__all__ = ["KAFKA_ALIASES", "ModuleAliases", "kafka_aliases"]

#: The client libraries the pytest plugin stands in for, and their mqlog drop-ins.
KAFKA_ALIASES: Mapping[str, str] = {
    "kafka": "mqlog.kafka",
    "confluent_kafka": "mqlog.confluent",
    "aiokafka": "mqlog.aiokafka",
}


def _top(name: str) -> str:
    return name.partition(".")[0]


class _AliasLoader(importlib.abc.Loader):
    """Loads an aliased name by importing its target and publishing that module."""

    def __init__(self, alias: str, target: str) -> None:
        self.alias = alias
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # default placeholder module; exec_module swaps in the target

    def exec_module(self, module: ModuleType) -> None:
        try:
            target = importlib.import_module(self.target)
        except ModuleNotFoundError as exc:
            # Only a missing target (or a missing parent of it) means "no such module";
            # an import error inside the target is the target's bug: let it through.
            if exc.name is None or not (self.target == exc.name
                                        or self.target.startswith(exc.name + ".")):
                raise
            raise ModuleNotFoundError(
                f"No module named {self.alias!r}: mqlog's fake Kafka maps it to "
                f"{self.target!r}, which this mqlog does not provide (docs/dropin-*.md "
                "list the modules each drop-in covers and what is missing)",
                name=self.alias) from None
        # The import system returns sys.modules[alias] after exec_module: publish the
        # target there instead of filling the placeholder.
        sys.modules[self.alias] = target


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Claims every name under the aliased top-level packages."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self._aliases = dict(aliases)

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        top = _top(fullname)
        base = self._aliases.get(top)
        if base is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(fullname, base + fullname[len(top):]))


class ModuleAliases:
    """Alias top-level package names (and all their submodules) to other packages.

    Activations nest: :meth:`activate` counts, and only the outermost
    :meth:`deactivate` restores ``sys.modules`` and ``sys.meta_path``. Thread-safe.

    Args:
        aliases: ``{alias: target}`` top-level package names, e.g.
            ``{"kafka": "mqlog.kafka"}``.

    Raises:
        ValueError: an alias or target is not a dotted module name, or an alias is
            dotted (only top-level packages can be aliased) or inside a target.
    """

    def __init__(self, aliases: Mapping[str, str]) -> None:
        for alias, target in aliases.items():
            if not (isinstance(alias, str) and alias.isidentifier()):
                raise ValueError(f"alias {alias!r} must be a top-level module name such "
                                 "as 'kafka' (submodules are aliased with it)")
            if not (isinstance(target, str) and target
                    and all(part.isidentifier() for part in target.split("."))):
                raise ValueError(f"target {target!r} of alias {alias!r} must be a dotted "
                                 "module name such as 'mqlog.kafka'")
            if _top(target) == alias:
                raise ValueError(f"alias {alias!r} -> {target!r} would map the package "
                                 "onto itself: pick a target outside it")
        self.aliases: dict[str, str] = dict(aliases)
        self._finder = _AliasFinder(self.aliases)
        # Guards _depth and _saved (activation state), not imports.
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: dict[str, ModuleType] = {}

    def __repr__(self) -> str:
        state = f"active (depth {self._depth})" if self._depth else "inactive"
        return f"<ModuleAliases {self.aliases!r} {state}>"

    @property
    def active(self) -> bool:
        """Whether the aliases are in effect."""
        return self._depth > 0

    def _owned(self, name: str) -> bool:
        return _top(name) in self.aliases

    def activate(self) -> None:
        """Put the aliases in effect (or deepen an active activation)."""
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            self._saved = {name: mod for name, mod in list(sys.modules.items())
                           if self._owned(name)}
            for name in self._saved:
                del sys.modules[name]
            sys.meta_path.insert(0, self._finder)

    def deactivate(self) -> None:
        """Undo one :meth:`activate`; the outermost one restores the import state.

        Raises:
            RuntimeError: the aliases are not active.
        """
        with self._lock:
            if self._depth == 0:
                raise RuntimeError("deactivate() without a matching activate()")
            self._depth -= 1
            if self._depth:
                return
            try:
                sys.meta_path.remove(self._finder)
            except ValueError:  # someone rebuilt sys.meta_path meanwhile
                pass
            for name in [n for n in list(sys.modules) if self._owned(n)]:
                del sys.modules[name]
            sys.modules.update(self._saved)
            self._saved = {}

    @contextmanager
    def active_in(self) -> Iterator[ModuleAliases]:
        """The aliases in effect inside the ``with`` block."""
        self.activate()
        try:
            yield self
        finally:
            self.deactivate()


_kafka: ModuleAliases | None = None
_kafka_lock = threading.Lock()


def kafka_aliases() -> ModuleAliases:
    """The process-wide :data:`KAFKA_ALIASES` instance (shared so activations nest)."""
    global _kafka
    with _kafka_lock:
        if _kafka is None:
            _kafka = ModuleAliases(KAFKA_ALIASES)
        return _kafka
