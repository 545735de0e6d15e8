"""The house is one-way (docs/ARCHITECTURE.md): below, models, data, the config, the evaluation loop and the run
folder; above them, training and analysis side by side, neither importing the other; the command line on top. Every import is read from
the source, those inside functions included."""

import ast
from pathlib import Path

import papernets

PACKAGE_ROOT = Path(papernets.__file__).parent

# package -> packages it must never import
FORBIDDEN_IMPORTS = {
    "papernets.training": ("papernets.analysis", "papernets.cli"),
    "papernets.analysis": ("papernets.training", "papernets.cli"),
    "papernets.runs": ("papernets.training", "papernets.analysis", "papernets.export", "papernets.cli"),
    "papernets.models": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.data",
                         "papernets.export", "papernets.cli"),
    "papernets.data": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.models",
                       "papernets.export", "papernets.cli"),
    "papernets.export": ("papernets.training", "papernets.analysis", "papernets.cli"),
    "papernets.config": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.cli"),
    "papernets.evaluation": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.cli"),
    "papernets.distributed": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.cli"),
    "papernets.hardware": ("papernets.training", "papernets.analysis", "papernets.runs", "papernets.cli"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str) -> set[str]:
    """Every absolute module an `import` or `from ... import` statement names, at any depth of the code."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def back_edges() -> list[str]:
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        for package, forbidden in FORBIDDEN_IMPORTS.items():
            if not within(importer, package):
                continue
            for imported in sorted(imported_modules(path.read_text())):
                if any(within(imported, target) for target in forbidden):
                    found.append(f"{importer} imports {imported}")
    return found


def test_no_package_imports_a_package_above_or_beside_it():
    assert back_edges() == []


def test_imports_inside_functions_are_seen():
    source = "import os\n\ndef late():\n    from papernets.analysis.report import write_report\n"
    assert "papernets.analysis.report" in imported_modules(source)
    assert "papernets.analysis.report.write_report" in imported_modules(source)


def test_relative_imports_are_not_used():
    """Relative imports would slip past the check above, so the package spells every import in full."""
    relative = [module_name(path) for path in PACKAGE_ROOT.rglob("*.py")
                if any(isinstance(node, ast.ImportFrom) and node.level > 0
                       for node in ast.walk(ast.parse(path.read_text())))]
    assert relative == []
