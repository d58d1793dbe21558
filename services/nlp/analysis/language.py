"""Offline language identification, careful with the short texts reviews often are.

Only English is scored: a text in another language gets the status
``unsupported_language`` instead of a confident wrong label.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0  # langdetect samples at random; a seed makes it repeatable

SUPPORTED: Final = frozenset({"en"})
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Frequent English words: a few of them settle a short text that n-grams cannot.
_ENGLISH_WORDS = """a about after again all also am an and any are as at be because been but by
can could did do does don't for from get got had has have he her him his how i i'm i've if in
is it it's its just like me my no not now of on one only or our out so some than that the
their them then there they this to too up us very was we were what when which who why will
with would you your good great bad love nice thanks thank"""
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
# Letters of a script tell the language outright when no Latin text is around them.
_SCRIPTS: Final = (
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("CJK", "zh"),
    ("CYRILLIC", "ru"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("GREEK", "el"),
    ("THAI", "th"),
    ("DEVANAGARI", "hi"),
)


def _script_language(text: str) -> str | None:
    counts: dict[str, int] = {}
    letters = 0
    for char in text:
        if not char.isalpha():
            continue
        letters += 1
        name = unicodedata.name(char, "")
        for script, language in _SCRIPTS:
            if name.startswith(script):
                counts[language] = counts.get(language, 0) + 1
                break
    if not counts:
        return None
    language, n = max(counts.items(), key=lambda item: item[1])
    return language if n * 2 >= letters else None


def detect_language(text: str) -> str | None:
    """An ISO 639-1 code, or None when the text has no words to go by."""
    if script := _script_language(text):
        return script
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return None
    english = sum(w in _ENGLISH for w in words) / len(words)
    if english >= 0.2:
        return "en"
    try:
        guesses = detect_langs(text)
    except LangDetectException:
        return None
    best = guesses[0]
    if best.lang == "en" or best.prob < 0.8:
        return "en"  # unsure: the model's own confidence then carries the doubt
    return str(best.lang).split("-")[0]


def is_supported(language: str | None) -> bool:
    return language is None or language in SUPPORTED
