"""The package's layers point down: a module imports only from its own layer or those below it
(docs/architecture.md). Read statically, from every file's imports, as `mudiff.sources` reads them."""

from __future__ import annotations

from mudiff.sources import PACKAGE_ROOT, _imports

# Each room of the package (its top-level module or subpackage) and its layer, lowest first.
LAYER = {
    **dict.fromkeys(("options", "io", "device", "sources", "deviations", "jobclock"), 0),  # leaves
    "sections": 1,  # typed config sections
    **dict.fromkeys(("data", "models"), 2),
    "training": 3,
    **dict.fromkeys(("bank", "scores", "forget_sets", "methods", "metrics"), 4),  # the science
    "analysis": 5,
    "report": 6,  # rendering reads analysis, never the reverse
    "tracking": 7,
    **dict.fromkeys(("stages", "__main__", "forkserver"), 8),  # forkserver: runs __main__ in warm workers
    **dict.fromkeys(("config", "tuning", "audit"), 9),  # commands: validation knows every registry
}


def module_name(path, root=PACKAGE_ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["mudiff", *parts])


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports(root=PACKAGE_ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        if not room(module):
            continue  # the package's own __init__
        for target in _imports(path, module):
            if room(target) and LAYER[room(target)] > LAYER[room(module)]:
                found.append(f"{module} imports {target}")
    return sorted(set(found))


def test_every_room_has_a_layer():
    rooms = {room(module_name(p)) for p in PACKAGE_ROOT.rglob("*.py")} - {""}
    assert rooms <= set(LAYER), sorted(rooms - set(LAYER))


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check can fail: a method importing a stage, and an analysis importing the report, are found."""
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "__init__.py").write_text("from mudiff.stages import device_of\n")
    (tmp_path / "analysis.py").write_text("import mudiff.report.markdown\nfrom mudiff import training\n")
    assert upward_imports(tmp_path) == [
        "mudiff.analysis imports mudiff.report.markdown",
        "mudiff.methods imports mudiff.stages",
        "mudiff.methods imports mudiff.stages.device_of",
    ]
