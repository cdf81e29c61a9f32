"""Page furniture that is not content: contents pages.

Running headers, footers and page numbers are recognised line by line in corpus/segment.py;
a contents page needs the lines around it ("Contents <tab> Page", then entries ending in a page
number, some wrapped onto a second line), so it is found here as a block. Its lines never become
passages: a contents entry such as "Conclusions and Recommendations <tab> 41" would otherwise be
quoted as a recommendation.
"""

from __future__ import annotations

import re

_CONTENTS_HEAD = re.compile(r"^\W*(?:table\s+of\s+)?contents\W*(?:\s+page)?\W*$", re.I)
#: An entry: some words, then a tab, a dotted leader or wide spacing, then a page number.
CONTENTS_ENTRY = re.compile(
    r"^[^\t\n]{0,12}?\S[^\n]{1,140}?(?:\t+|\s*\.{3,}\s*|…+\s*|\s{3,})(?:page\s*\t?\s*)?\d{1,3}\s*$",
    re.I,
)
#: How far into the document (as a share of its lines) a contents page may start.
CONTENTS_SEARCH_SHARE = 0.2
MAX_GAP = 2
_TAG = re.compile(r"</?\w+>")


def contents_lines(lines: list[str]) -> set[int]:
    """Indices of the lines that make up the document's contents page(s), if it has one.

    The block starts at a "Contents" line near the beginning and runs over entries; a short
    line without a page number (a wrapped entry, "Appendices:", a rule) belongs to it only when
    another entry follows within ``MAX_GAP`` non-blank lines.
    """
    limit = max(40, int(len(lines) * CONTENTS_SEARCH_SHARE))
    start = next(
        (i for i, line in enumerate(lines[:limit]) if _CONTENTS_HEAD.match(_TAG.sub("", line))),
        None,
    )
    if start is None:
        return set()
    found = {start}
    pending: list[int] = []
    for index in range(start + 1, len(lines)):
        line = lines[index].strip()
        if not line:
            continue
        if CONTENTS_ENTRY.match(line):
            found.update(pending)
            found.add(index)
            pending = []
        elif len(line) <= 70 and not line.endswith(".") and len(pending) < MAX_GAP:
            pending.append(index)
        else:
            break
    return found if len(found) >= 3 else set()
