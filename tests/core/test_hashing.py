"""Canonical JSON and code versions: the ingredients of every task key."""

import importlib
import sys
from pathlib import Path

from ehrlab.core.hashing import canonical_json, code_version, hash_value


def test_canonical_json_ignores_key_order_and_whole_floats() -> None:
    assert canonical_json({"b": 1, "a": [1.0, 2.5]}) == canonical_json({"a": [1, 2.5], "b": 1.0})
    assert hash_value({"x": 3}) == hash_value({"x": 3.0})
    assert hash_value({"x": 3}) != hash_value({"x": 3.5})


def test_code_version_changes_when_the_source_changes(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "kindpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "impl.py").write_text("def run(ctx):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    before = code_version(("kindpkg.impl",), "1")
    assert code_version(("kindpkg.impl",), "1") == before
    assert code_version(("kindpkg.impl",), "2") != before      # the hand-bumped version counts
    (package / "impl.py").write_text("def run(ctx):\n    return 2\n")
    code_version.cache_clear()
    assert code_version(("kindpkg.impl",), "1") != before
    (package / "helper.py").write_text("X = 1\n")             # a package version covers all its modules
    whole = code_version(("kindpkg",), "1")
    (package / "helper.py").write_text("X = 2\n")
    code_version.cache_clear()
    assert code_version(("kindpkg",), "1") != whole
    sys.modules.pop("kindpkg", None)
