"""Text corpora for chapter 6: the shipped Hamlet and arbitrary text files."""

import pytest

from fdl.data import load_text, text


def test_hamlet_is_the_shipped_gutenberg_text():
    hamlet = load_text()
    assert hamlet == load_text("hamlet")
    assert len(hamlet) == 173_942
    assert len(set(hamlet)) == 65
    assert hamlet.startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in hamlet


def test_any_text_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello world\n", encoding="utf-8")
    assert load_text(path) == "hello world\n"
    assert load_text(str(path)) == "hello world\n"


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="hamlet"):  # the message lists the shipped names
        load_text("macbeth")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_text(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_text(empty)
    altered = tmp_path / "hamlet.txt"
    altered.write_text("Something is rotten")
    monkeypatch.setitem(text.SHIPPED_TEXTS, "hamlet", (altered, text.SHIPPED_TEXTS["hamlet"][1]))
    with pytest.raises(ValueError, match="SHA-256"):
        load_text("hamlet")
