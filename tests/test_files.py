"""write_atomic: whole files only, the mode asked for, links replaced and never followed."""

from __future__ import annotations

import os
import stat

import pytest

from assistant.files import write_atomic


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, tmp_path / "out.txt")
    write_atomic(tmp_path / "out.txt", "new", mode=0o600)
    assert victim.read_text() == "untouched"
    assert not (tmp_path / "out.txt").is_symlink() and (tmp_path / "out.txt").read_text() == "new"
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    (tmp_path / "out.txt").write_text("old")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "out.txt", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert (tmp_path / "out.txt").read_text() == "old"
