"""Number words, in a module of their own so corpus/ can parse "three-week-old" without
importing spaCy (and with it torch): every process that loads kb.models used to pay ~150 MB for
them, search workers included."""

from __future__ import annotations

#: Number words as they appear in ages and counts ("a three-week-old", "five referrals"); shared
#: by the age rules in nlp.rules and the metadata / case-list parsing in corpus/.
NUMBER_WORDS: dict[str, int] = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
