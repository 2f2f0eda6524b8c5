from __future__ import annotations

import pytest

from movielens_assets.core.data.atomic import atomic_path, atomic_write_text


def test_file_replaced_only_on_success(tmp_path):
    target = tmp_path / "a" / "out.txt"
    atomic_write_text(target, "v1")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "v1"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_directory_replaced_atomically(tmp_path):
    target = tmp_path / "d"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
