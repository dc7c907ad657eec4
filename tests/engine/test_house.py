"""The engine's house rules (docs/engine_modules.md): imports run one way, from a higher floor to a
lower one, with no circle, counting imports inside functions too; the engine never imports Qt."""
import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "spectramorph_engine"
FLOORS = ("core", "io", "sensors", "quality", "methods", "run", "scale", "cli")


def _modules() -> dict:
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = ("spectramorph_engine",) + path.relative_to(ENGINE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _arrows(mods: dict) -> set:
    """(importer, imported) for every import of an engine module, at any depth of the file."""
    def target(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    arrows = set()
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[:len(up) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" for a in node.names]
            for name in names:
                t = target(name) if name.startswith("spectramorph_engine") else ""
                if t and t != mod:
                    arrows.add((mod, t))
    return arrows


def _floor(mod: str):
    parts = mod.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def test_imports_run_down_the_floors_and_never_in_a_circle():
    mods = _modules()
    arrows = _arrows(mods)
    upward = sorted((a, b) for a, b in arrows
                    if _floor(a) is not None and _floor(b) is not None and _floor(b) > _floor(a))
    assert not upward, f"imports going up a floor ({' < '.join(FLOORS)}): {upward}"
    graph = {}
    for a, b in arrows:
        graph.setdefault(a, set()).add(b)
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph.get(m, ())):
            visit(n)
        path.pop()
        done.add(m)

    for m in sorted(mods):
        visit(m)


def test_every_engine_module_lives_on_a_floor_and_no_module_imports_qt():
    mods = _modules()
    loose = sorted(m for m in mods if _floor(m) is None
                   and m not in ("spectramorph_engine", "spectramorph_engine.__main__"))
    assert not loose, f"engine modules outside the floors {FLOORS}: {loose}"
    qt = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "spectramorph_gui")
    for path in mods.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not [n for n in names if n.split(".")[0] in qt], f"{path}:{node.lineno} imports Qt"
