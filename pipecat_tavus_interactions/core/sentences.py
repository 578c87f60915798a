"""Sentence boundaries in streamed LLM text, for echo text (pure: no framework imports).

Echo text reaches the replica one completed sentence at a time, so this module owns the one
question that needs: where does the first complete sentence of a buffer end? It answers
for text that is still growing, token by token, so an end mark is only taken when nothing
that may follow could change its meaning ("3." may become "3.5", "Mr." is not an end, ".."
may grow into an ellipsis, ``'Hello.' she said`` goes on after the quote).

Why not Pipecat's ``match_endofsentence`` (sentencex): compared on a table of cases
(``tests/test_core_sentences.py``), it splits where a streamed buffer ends ("It costs 3."
before the "5" arrives, "Ask Mr."), inside markup (``**Note.**``), and misses "(mostly.) Try
it."; the core is also pure, with no Pipecat import. Where it was right and this module was
not (a quotation going on in lowercase, a numbered list, "etc." or "Inc." ending a sentence
before a capital, Devanagari, Arabic and other scripts' end marks), this module now agrees.

:func:`find_sentence_end` is the whole interface; the stream around it lives in
:mod:`~pipecat_tavus_interactions.core.echo`.
"""

from __future__ import annotations

_LATIN_ENDS = frozenset(".!?…")
_CJK_ENDS = frozenset("。！？｡")
# Unambiguous end marks of other scripts (followed by a space, like "!"): Devanagari danda
# and double danda, Arabic question mark, Urdu full stop, Myanmar, Khmer, Armenian, Ethiopic.
_OTHER_ENDS = frozenset("।॥؟۔။។៕։።፧")
_ENDS = _LATIN_ENDS | _CJK_ENDS | _OTHER_ENDS
_CLOSERS = frozenset("\"'”’)]}»」』）】")
_OPENERS = "\"'“‘([{«「『（【"
# Words that end with "." without ending a sentence. Missing one only delays an echo
# until the next boundary; splitting after one would make the replica pause mid-sentence.
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "vs",
        "etc",
        "no",
        "nos",
        "fig",
        "approx",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "est",
        "gen",
        "gov",
        "sen",
        "rep",
        "rev",
        "capt",
        "col",
        "lt",
        "sgt",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "a.m",
        "p.m",
        "e.g",
        "i.e",
        "cf",
        "al",
        "viz",
    }
)


# Abbreviations that also end a sentence when the next word is capitalised ("... etc. Do").
_MAY_END = frozenset({"etc", "inc", "ltd", "corp"})


def _word_before(text: str, dot: int) -> tuple[int, str]:
    k = dot
    while k > 0 and not text[k - 1].isspace():
        k -= 1
    return k, text[k:dot].lstrip(_OPENERS).casefold()


def _is_list_marker(text: str, dot: int) -> bool:
    """Tell whether the ``.`` at ``text[dot]`` closes a list number ("1." at a line start)."""
    k, word = _word_before(text, dot)
    if not (word.isdigit() and len(word) <= 3):
        return False
    while k > 0 and text[k - 1] in " \t":
        k -= 1
    return k == 0 or text[k - 1] in "\n:"


def _decide(text: str, i: int, j: int, single_dot: bool) -> bool | None:
    """Whether the end mark run ``text[i:j]``, followed by a space, ends a sentence.

    ``None`` when the word after it decides and has not arrived yet.
    """
    n = len(text)
    k = j
    while k < n and text[k].isspace():
        k += 1
    after = text[k] if k < n else ""
    if text[j - 1] in _CLOSERS:  # the mark is inside quotes or brackets
        if not after:
            return None
        if after.islower():
            return False  # 'Hello.' she said
    if not single_dot:
        return True
    dot = text.rindex(".", i, j)
    if _is_list_marker(text, dot):
        return False
    if not _is_abbreviation(text, dot):
        return True
    if _word_before(text, dot)[1] not in _MAY_END:
        return False
    return after.isupper() if after else None


def _is_abbreviation(text: str, dot: int) -> bool:
    """Tell whether the ``.`` at ``text[dot]`` closes an abbreviation or an initial."""
    word = _word_before(text, dot)[1]
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return True
    if "." in word and word.replace(".", "").isalpha():  # "U.S.", "e.g."
        return True
    return word in _ABBREVIATIONS


def find_sentence_end(text: str, start: int = 0) -> tuple[int, int]:
    """Find the first sentence end in ``text`` at or after ``start``.

    A sentence ends with ``.``, ``!``, ``?`` or ``…`` (or another script's end mark, plus
    any closing quotes or brackets) followed by whitespace, or with a CJK full stop,
    exclamation or question mark. It does not end at an abbreviation or initial ("Mr.",
    "e.g.", "J."; "etc." and "Inc." only before a capital), a list number ("Steps: 1."),
    or a quotation that goes on in lowercase (``"Why?" she asked``). At the very end of the
    text an end mark counts at once unless it could still be something else: a ``.`` after
    a digit ("3." may become "3.5") or an abbreviation, a run of dots that may grow into an
    ellipsis, or a closing quote or bracket (the next word decides).

    Args:
        text: The buffered, not yet sent text.
        start: Where to start looking.

    Returns:
        ``(end, resume)``: ``end`` is the index just past the sentence (or -1 when there is
        none yet); ``resume`` is where the next search should start (an undecided
        candidate at the end of the text is searched again when more text arrives).
    """
    n = len(text)
    i = start
    while i < n:
        if text[i] not in _ENDS:
            i += 1
            continue
        j = i + 1
        while j < n and (text[j] in _ENDS or text[j] in _CLOSERS):
            j += 1
        run = text[i:j]
        if any(c in _CJK_ENDS for c in run):
            return j, j
        only_dots = all(c == "." or c in _CLOSERS for c in run)
        single_dot = only_dots and run.count(".") == 1
        if j < n:
            if text[j].isspace():
                verdict = _decide(text, i, j, single_dot)
                if verdict is None:
                    return -1, i
                if verdict:
                    return j, j
            i = j  # "3.5", "e.g. ", "Hello.World": not a boundary
            continue
        # The end mark is the last thing buffered: decide now if it is unambiguous.
        if run[-1] in _CLOSERS:
            return -1, i
        if not only_dots:
            return j, j
        if not single_dot or (i > 0 and text[i - 1].isdigit()) or _is_abbreviation(text, i):
            return -1, i
        return j, j
    return -1, n


__all__ = ["find_sentence_end"]
