"""Griffe extension: render fdl's docstrings as the Google style mkdocstrings expects.

fdl's docstrings are Google style with a few habits of Sphinx/Napoleon that griffe reads differently; this
rewrites them before they are parsed (the source files are not touched):

* reStructuredText roles, ``:func:`~fdl.fit```, become inline code (```fit```; the full path without ``~``);
* an argument line naming several parameters, ``X_train, y_train: ...``, becomes one entry per name with the
  same description (Napoleon accepts the combined form, griffe does not);
* in ``Raises:``, an entry written ``ValueError when ...`` becomes ``ValueError: when ...``, and a line at the
  entries' indentation that does not start with an exception name is read as the previous entry's
  continuation;
* ``a[i]["key"]`` outside code, which Markdown would read as a reference link, is escaped.

The lead's request file lists the docstrings these rules currently rewrite, so they can be fixed at the source.
"""

from __future__ import annotations

import re

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Raises|Returns|Yields|Examples?|Notes?):\s*$")
NAMES = re.compile(r"^(\w+(?:, \w+)+):(.*)$")
EXCEPTION = re.compile(r"^([A-Z]\w*(?:Error|Exception|Warning|Exit))(:?)\s*(.*)$")
REFLINK = re.compile(r"\]\[")


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _outside_code(text: str, fix) -> str:
    parts = re.split(r"(``?[^`]+``?)", text)
    return "".join(part if part.startswith("`") else fix(part) for part in parts)


def normalise(doc: str) -> str:
    doc = ROLE.sub(_plain, doc)
    out, section, indent = [], None, None
    for line in doc.splitlines():
        header = SECTION.match(line)
        if header:
            section, indent = header.group(2), None
            out.append(line)
            continue
        stripped = line.lstrip()
        depth = len(line) - len(stripped)
        if section is not None and stripped:
            if indent is None:
                indent = depth
            elif depth < indent:
                section = None
        if section is not None and stripped and depth == indent:
            pad = " " * depth
            names = NAMES.match(stripped)
            if section in ("Args", "Arguments", "Parameters", "Attributes") and names:
                out.extend(f"{pad}{name}:{names.group(2)}" for name in names.group(1).split(", "))
                continue
            if section == "Raises":
                exc = EXCEPTION.match(stripped)
                if exc:
                    line = f"{pad}{exc.group(1)}: {exc.group(3)}"
                elif out:
                    line = f"{pad}    {stripped}"
        out.append(_outside_code(line, lambda part: REFLINK.sub(r"]\\[", part)))
    return "\n".join(out)


class RstRoles(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise(obj.docstring.value)
