"""Every module and public name in the package has a docstring.

Public means: a module-level class or function whose name does not start with ``_``, and
the methods of such a class whose names do not start with ``_``. The source is read with
``ast``, so nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "pipecat_tavus_interactions"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

FILES = sorted(PACKAGE_DIR.rglob("*.py"))
IDS = [str(p.relative_to(PACKAGE_DIR)) for p in FILES]

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_overload(node: ast.AST) -> bool:
    # typing.overload stubs carry no docstring; the implementation does.
    return any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in getattr(node, "decorator_list", ())
    )


def missing_docstrings(source: str) -> list[str]:
    """Return the public names in ``source`` that have no docstring ("<module>" included)."""
    tree = ast.parse(source)
    missing = [] if ast.get_docstring(tree) else ["<module>"]
    for node in tree.body:
        if not isinstance(node, _DEFS) or node.name.startswith("_") or _is_overload(node):
            continue
        if not ast.get_docstring(node):
            missing.append(node.name)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if (
                    isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not member.name.startswith("_")
                    and not _is_overload(member)
                    and not ast.get_docstring(member)
                ):
                    missing.append(f"{node.name}.{member.name}")
    return missing


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_public_names_have_docstrings(path):
    missing = missing_docstrings(path.read_text(encoding="utf-8"))
    assert not missing, f"{path.relative_to(PACKAGE_DIR)}: add Google-style docstrings to {missing}"


def test_the_check_finds_missing_docstrings():
    source = '''
def public(): pass

def _private(): pass

async def documented():
    """Yes."""

class Thing:
    """A thing."""

    def method(self): pass

    def _hidden(self): pass

    def __init__(self): pass

    @property
    def value(self):
        """The value."""

class _Internal:
    def anything(self): pass
'''
    assert missing_docstrings(source) == ["<module>", "public", "Thing.method"]


def test_the_package_is_found():
    assert any(p.name == "protocol.py" for p in FILES)
