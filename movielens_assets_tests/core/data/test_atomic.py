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


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "d"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".d.tmp-{int(dead.stdout)}-deadbeef"
    stale.mkdir()
    (stale / "half").write_text("x")
    live = tmp_path / ".d.tmp-1-cafebabe"  # pid 1 is alive
    live.mkdir()
    with atomic_path(target) as tmp:
        tmp.mkdir()
    assert not stale.exists() and live.exists() and target.is_dir()


def test_concurrent_directory_writers_both_publish_one_complete_result(tmp_path):
    """Many threads replacing one directory: every write succeeds, the result is one writer's complete output."""
    import threading

    target = tmp_path / "d"
    errors = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                with atomic_path(target) as tmp:
                    tmp.mkdir()
                    for j in range(3):
                        (tmp / f"f{j}").write_text(str(i))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in target.iterdir()) == ["f0", "f1", "f2"]
    assert len({(target / f"f{j}").read_text() for j in range(3)}) == 1  # not interleaved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_disk_full_keeps_the_previous_version_and_names_the_path(tmp_path, kind):
    import errno

    target = tmp_path / "out"
    with atomic_path(target) as tmp:
        if kind == "file":
            tmp.write_text("v1")
        else:
            tmp.mkdir()
            (tmp / "part-0").write_text("v1")
    with pytest.raises(OSError) as err, atomic_path(target) as tmp:
        if kind == "file":
            tmp.write_text("half")
        else:
            tmp.mkdir()
            (tmp / "part-0").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.errno == errno.ENOSPC
    assert "No space left on device" in str(err.value) and str(target) in str(err.value)
    assert "previous version" in str(err.value)
    assert (target.read_text() if kind == "file" else (target / "part-0").read_text()) == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
