"""The shape rules of DESIGN.md, checked on the source (issue #11): small modules, no classes inside
functions, configuration read in one place, imports pointing down, light modules imported at the top."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aigc_demo"
MAX_LINES = 500
HEAVY = ("torch", "transformers", "diffusers", "gradio", "accelerate", "peft", "safetensors", "numpy",
         "PIL", "scipy", "huggingface_hub", "openai", "httpx", "matplotlib")
ENV_READERS = {"settings.py", "environment.py"}  # the settings object and process hygiene
# layer -> the project's packages/modules it must never import (DESIGN.md: imports point down)
FORBIDDEN = {
    "evaluation": {"training", "services", "ui", "hub", "catalog", "engines"},
    "training": {"services", "ui"},
    "generation": {"services", "ui", "training", "evaluation", "hub", "catalog"},
    "models": {"services", "ui", "training", "evaluation", "generation", "hub", "catalog"},
    "data": {"services", "ui", "training", "evaluation", "generation", "models"},
    "hub": {"services", "ui"},
    "catalog": {"services", "ui"},
    "loading": {"services", "ui"},
    "engines": {"services", "ui"},
    "services": {"ui"},
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def module_path(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:  # the package itself (`from aigc_demo import hub`)
        return PACKAGE / "__init__.py"
    rel = Path(*parts)
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def top_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in tree(path).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def is_heavy(path: Path) -> bool:
    """A module that pulls a heavy library at import time (so importing it lazily is legitimate)."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        tops = top_imports(current)
        if tops & set(HEAVY):
            return True
        for node in tree(current).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aigc_demo"):
                target = module_path(node.module)
                if target:
                    todo.append(target)
                for alias in node.names:  # `from aigc_demo.x import submodule`
                    sub = module_path(f"{node.module}.{alias.name}")
                    if sub:
                        todo.append(sub)
    return False


def own_imports(path: Path, inside_functions: bool) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree(path)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and inside_functions:
            continue
        scope = ast.walk(node) if inside_functions else [node]
        for sub in scope:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("aigc_demo"):
                found += [(sub.lineno, f"{sub.module}.{a.name}" if module_path(f"{sub.module}.{a.name}")
                           else sub.module) for a in sub.names]
            elif isinstance(sub, ast.Import):
                found += [(sub.lineno, a.name) for a in sub.names if a.name.startswith("aigc_demo")]
    return found


def test_no_module_over_500_lines() -> None:
    big = {str(p.relative_to(PACKAGE)): n for p in modules() if "locales" not in p.parts
           and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, big


def test_no_class_defined_inside_a_function() -> None:
    nested = [f"{p.relative_to(PACKAGE)}:{sub.lineno} {sub.name}" for p in modules() for node in ast.walk(tree(p))
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node) if isinstance(sub, ast.ClassDef)]
    assert not nested, nested


def test_environment_is_read_only_by_the_settings_and_hygiene_modules() -> None:
    readers = []
    for p in modules():
        if p.relative_to(PACKAGE).as_posix() in ENV_READERS:
            continue
        for node in ast.walk(tree(p)):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                readers.append(f"{p.relative_to(PACKAGE)}:{node.lineno}")
    assert not readers, readers


@pytest.mark.parametrize("source_layer", sorted(FORBIDDEN))
def test_imports_point_down(source_layer: str) -> None:
    wrong = []
    for p in modules():
        if layer(p) != source_layer:
            continue
        for line, name in own_imports(p, inside_functions=False) + own_imports(p, inside_functions=True):
            target = name.split(".")[1] if "." in name else name
            if target in FORBIDDEN[source_layer]:
                wrong.append(f"{p.relative_to(PACKAGE)}:{line} imports {name}")
    assert not wrong, sorted(set(wrong))


def test_nothing_below_ui_imports_gradio() -> None:
    wrong = [str(p.relative_to(PACKAGE)) for p in modules() if layer(p) != "ui"
             and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "gradio" in
                     ([a.name.split(".")[0] for a in n.names] if isinstance(n, ast.Import)
                      else [(n.module or "").split(".")[0]]) for n in ast.walk(tree(p)))]
    assert not wrong, wrong


def test_light_project_modules_are_imported_at_the_top() -> None:
    """A function-level import of the project's own module is only for one that pulls torch & co."""
    lazy_light = []
    for p in modules():
        for line, name in own_imports(p, inside_functions=True):
            target = module_path(name)
            if target and not is_heavy(target):
                lazy_light.append(f"{p.relative_to(PACKAGE)}:{line} {name}")
    assert not lazy_light, sorted(set(lazy_light))


def _module_level_targets(path: Path) -> set[Path]:
    """The project modules `path` imports outside functions (also under `if TYPE_CHECKING:`)."""
    targets: set[Path] = set()
    todo: list[ast.AST] = list(tree(path).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aigc_demo"):
            for alias in node.names:
                target = module_path(f"{node.module}.{alias.name}") or module_path(node.module)
                if target and target != path:
                    targets.add(target)
        elif isinstance(node, ast.Import):
            targets |= {t for a in node.names if a.name.startswith("aigc_demo") and (t := module_path(a.name))}
        else:
            todo += list(ast.iter_child_nodes(node))
    return targets


def import_circles(graph: dict[Path, set[Path]]) -> list[str]:
    """Every module that reaches itself through `graph`'s import edges, as a readable trail."""
    circles = []
    for start in graph:
        todo, seen = [(start, [start])], set()
        while todo:
            current, trail = todo.pop()
            for target in graph.get(current, ()):
                if target == start:
                    circles.append(" -> ".join(str(p.relative_to(PACKAGE)) for p in [*trail, start]))
                elif target not in seen:
                    seen.add(target)
                    todo.append((target, [*trail, target]))
    return circles


def test_no_import_circles_between_modules() -> None:
    """Imports point one way down: no module reaches itself through module-level imports (the
    engines' connection <-> registry circle of issue 22 was one, hidden behind TYPE_CHECKING)."""
    graph = {path: _module_level_targets(path) for path in modules()}
    circles = import_circles(graph)
    assert not circles, circles[:5]


def test_no_import_circles_even_through_lazy_imports() -> None:
    """A lazy (function-level) import is still an edge: the fine-tune circle of issue 21
    (finetune.py -> finetune_tasks.py -> finetune_diffusion.py -> finetune.py) ran through one."""
    graph = {}
    for path in modules():
        names = own_imports(path, inside_functions=False) + own_imports(path, inside_functions=True)
        graph[path] = {target for _, name in names if (target := module_path(name)) is not None}
    circles = import_circles(graph)
    assert not circles, circles[:5]
