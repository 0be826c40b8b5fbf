"""The layout's rules, checked on the sources of ``git ls-files`` (issue 17): the engine knows
no task, a task is a package nothing else imports, no import cycle, small modules, package data.
"""

import ast
import json
import re
import shutil
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest

from inpainting import tasks

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("inpainting", "masks")
# the engine, the run set-up (engine/run.py), the base config and the optimizer code
ENGINE = "inpainting.engine"
CLASSIFICATION = "inpainting.tasks.classification"
TASK_PACKAGES = ("inpainting.tasks.inpainting", CLASSIFICATION)


def _sources() -> dict[str, Path]:
    """module name -> file, for the tracked Python files of the packages."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    modules = {}
    for name in files:
        path = Path(name)
        if path.parts[0] not in PACKAGES:
            continue
        parts = list(path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = ROOT / path
    return modules


SOURCES = _sources()


def _imports(module: str, tree: ast.AST) -> list[tuple[str, ast.stmt]]:
    """Every project module ``module`` imports, type-only and function-level ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                package = module.split(".")
                if not SOURCES[module].name == "__init__.py":
                    package = package[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child if child in SOURCES else base, node))
    return [(name, node) for name, node in found if name in SOURCES]


TREES = {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in SOURCES.items()}
GRAPH = {module: {name for name, _ in _imports(module, tree)} for module, tree in TREES.items()}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_1_the_engine_names_no_task_and_never_branches_on_it():
    names = set(tasks.names())
    word = re.compile(r"\b(" + "|".join(names) + r")\b")
    problems = []
    for module, tree in TREES.items():
        if not _in(module, ENGINE):
            continue
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings:
                text = re.sub(r"\binpainting(\.\w+)+", "", node.value)  # module paths
                if word.search(text):
                    problems.append(f"{module}:{node.lineno} says {node.value!r}")
            if isinstance(node, (ast.Name, ast.Attribute, ast.FunctionDef, ast.ClassDef)):
                identifier = getattr(node, "id", None) or getattr(node, "attr", None) or node.name
                if re.search(r"inpaint|classif", identifier, re.IGNORECASE):
                    problems.append(f"{module}:{node.lineno} names {identifier}")
            if isinstance(node, ast.Compare) and any(
                    isinstance(side, ast.Attribute) and side.attr == "task"
                    for side in [node.left, *node.comparators]):
                problems.append(f"{module}:{node.lineno} compares a .task")
    assert problems == []


def test_2_nothing_outside_a_task_imports_it_and_the_engine_imports_no_library():
    outside = {m: sorted(n for n in deps if _in(n, CLASSIFICATION))
               for m, deps in GRAPH.items() if not _in(m, CLASSIFICATION)}
    assert {m: d for m, d in outside.items() if d} == {}
    scripts = [ROOT / "train.py", ROOT / "evaluate.py"]
    for script in scripts:
        assert CLASSIFICATION not in script.read_text(encoding="utf-8")
    engine = {m: sorted(n for n in deps if not (_in(n, ENGINE) or n == "inpainting.tasks"))
              for m, deps in GRAPH.items() if _in(m, ENGINE)}
    assert {m: d for m, d in engine.items() if d} == {}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for child in sorted(GRAPH[module]):
            if state.get(child) == 1:
                return stack[stack.index(child):] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_3_no_import_cycle_and_no_lazy_import_for_layering():
    assert _cycle() is None
    workaround = re.compile(r"sits above|above (this|the)|circular|cycle|layer", re.IGNORECASE)
    lazy = []
    for module, tree in TREES.items():
        lines = SOURCES[module].read_text(encoding="utf-8").splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    nearby = " ".join(lines[node.lineno - 2:node.end_lineno])
                    if workaround.search(nearby):
                        lazy.append(f"{module}:{node.lineno}")
    assert lazy == []


def _loaded(statement: str) -> list[str]:
    code = (f"import sys; {statement}; print(__import__('json').dumps(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('inpainting', 'masks'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_4_the_trainer_loads_few_modules_and_one_task_nothing_of_another():
    trainer = _loaded("import inpainting.engine.trainer")
    assert len(trainer) <= 15, trainer
    assert not [m for m in trainer if _in(m, "inpainting.tasks") and m != "inpainting.tasks"]
    for task, other in (TASK_PACKAGES, TASK_PACKAGES[::-1]):
        name = task.rsplit(".", 1)[1]
        loaded = _loaded(f"from inpainting import tasks; tasks.get({name!r})")
        assert task in loaded and not [m for m in loaded if _in(m, other)], (name, loaded)


def test_7_few_top_level_modules_small_modules_names_by_meaning():
    top = [p.name for p in (ROOT / "inpainting").iterdir()
           if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").is_file())]
    assert len(top) <= 10, sorted(top)
    long = {m: n for m, path in SOURCES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
    defined: dict[str, list[str]] = {}
    for module, tree in TREES.items():
        if not _in(module, "inpainting"):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                defined.setdefault(node.name, []).append(module)
    for name in ("evaluate_checkpoint", "load_model_from_checkpoint", "format_table"):
        assert len(defined.get(name, [])) == 1, (name, defined.get(name))
    text = "\n".join(path.read_text(encoding="utf-8") for path in SOURCES.values())
    assert "best_psnr" not in text


def test_8_files_read_at_run_time_are_package_data_in_the_wheel(tmp_path):
    for module, path in SOURCES.items():
        assert "parents[" not in path.read_text(encoding="utf-8"), module
    config = ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = {(package, name.strip())
                for package, names in config["options.package_data"].items()
                for name in names.split(",")}
    assert declared
    for package, name in declared:
        assert (ROOT / package.replace(".", "/") / name).is_file()
    # build from a copy of the tracked files, so that no build/ folder lands in the checkout
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        if name.startswith(("inpainting/", "masks/")) or name in ("setup.cfg", "pyproject.toml",
                                                                    "README.md"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(source)], check=True, capture_output=True,
                   timeout=300)
    [wheel] = tmp_path.glob("*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    for package, name in declared:
        assert f"{package.replace('.', '/')}/{name}" in inside


@pytest.mark.parametrize("module", ["inpainting.tasks.classification.padding_demo",
                                    "inpainting.tasks.classification.padding_report.runs"])
def test_8_package_data_is_found_from_the_package(module):
    found = _loaded(f"import {module} as m; assert m.__dict__.get('CONFIG', None) is None or "
                    "m.CONFIG.is_file(); assert getattr(m, 'PUBLISHED_CSV', m.__file__) and "
                    "(not hasattr(m, 'PUBLISHED_CSV') or m.PUBLISHED_CSV.is_file())")
    assert module in found


def test_the_readme_is_a_short_guide_whose_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert readme.splitlines()[0].startswith("# ") and "make demo" in readme[:800] \
        and "make test" in readme[:800]
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target
