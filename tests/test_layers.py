"""The layers stay one-way: pages (app_pages/) → the app package (webui/) → the library (explorer/). The library never
imports Streamlit or the app, holds no ``app_*`` module and never mentions session state or page paths."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "explorer").rglob("*.py"))
FORBIDDEN_IMPORTS = ("streamlit", "webui", "app_pages", "app")
FORBIDDEN_TEXT = re.compile(r"session_state|session state|app_pages|\.streamlit|st\.Page|url_path|switch_page",
                            re.IGNORECASE)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_library_never_imports_the_app_or_streamlit():
    assert LIBRARY, "no library modules found"
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] in FORBIDDEN_IMPORTS)
           for p in LIBRARY}
    assert not {k: v for k, v in bad.items() if v}


def test_no_app_modules_or_app_words_in_the_library():
    assert not [p.name for p in LIBRARY if p.name.startswith("app_")]
    hits = [f"{p.relative_to(ROOT)}:{i + 1}" for p in LIBRARY
            for i, line in enumerate(p.read_text().splitlines()) if FORBIDDEN_TEXT.search(line)]
    assert not hits


def test_importing_the_library_loads_no_streamlit():
    code = ("import sys, explorer, explorer.cli, explorer.views.precompute, explorer.views.memorization; "
            "import explorer.views.image_geodesics, explorer.commands.precompute; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'webui')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_guard_itself_catches_a_violation(tmp_path):
    """The scan is not vacuous: a module importing streamlit is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom streamlit import session_state\nimport webui.query\n")
    assert {"streamlit", "webui.query"} <= imported_modules(bad)
    assert FORBIDDEN_TEXT.search(bad.read_text())
