"""Which source files a stage runs: Snakemake lists them as inputs, so code changes rerun it.

Snakemake sees the files a rule names, not the modules its command imports. This walks the
import graph of a module inside the `mudiff` package (static, through `ast`, so nothing is
imported) and returns every package file it reaches. Registries name their members as
strings, so a stage depends on the one method or model it runs, not on all of them.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name
# A registry's name -> module table: data only, read by entry (tracked as a rule's params).
REGISTRY_TABLE = "registry"


def is_registry_table(module: str) -> bool:
    return module.rpartition(".")[2] == REGISTRY_TABLE


def module_of(entry: str) -> str:
    """The module a registry entry names (`pkg.mod` or `pkg.mod:attr`)."""
    return entry.partition(":")[0]


def module_path(module: str) -> Path:
    parts = module.split(".")
    assert parts[0] == PACKAGE, module
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    raise ModuleNotFoundError(module)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


@functools.cache
def module_files(module: str) -> tuple[str, ...]:
    """Every file of the package that `module` imports, directly or not, itself included; registry
    tables left out (a job depends on the entries it reads, not on the table)."""
    seen: dict[str, Path] = {}
    todo = [module, PACKAGE]
    while todo:
        mod = todo.pop()
        if mod in seen or is_registry_table(mod):
            continue
        try:
            path = module_path(mod)
        except ModuleNotFoundError:
            continue  # `from pkg import name` where name is not a module
        seen[mod] = path
        parents = mod.split(".")
        todo.extend(".".join(parents[:i]) for i in range(1, len(parents)))
        todo.extend(_imports(path, mod))
    return tuple(sorted(str(p) for p in set(seen.values())))
