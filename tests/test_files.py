"""write_atomic: whole files only, the mode asked for, links replaced and never followed."""

from __future__ import annotations

import os
import stat

import pytest

from assistant.files import read_text, write_atomic


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


def test_read_text_bounds_what_it_reads_and_names_the_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes(b"x" * 11)
    with pytest.raises(ValueError, match=r"t.yaml: larger than 10 bytes"):
        read_text(path, ValueError, limit=10)
    assert read_text(path, ValueError, limit=11) == "x" * 11
    with pytest.raises(ValueError, match=r"zero: larger than 1,000 bytes"):  # never read whole
        read_text(os.devnull.replace("null", "zero"), ValueError, limit=1000)
    path.write_bytes(b"ok \xe9t\xe9")
    with pytest.raises(ValueError, match=r"t.yaml: not UTF-8 text \(byte 3 is 0xe9\)"):
        read_text(path, ValueError)
