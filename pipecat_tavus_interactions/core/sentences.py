"""Sentence boundaries in streamed LLM text, for echo text (pure: no framework imports).

Echo text reaches the replica one completed sentence at a time, so this module owns the one
question that needs: where does the first complete sentence of a buffer end? It answers
for text that is still growing, token by token, so an end mark at the very end of the buffer
is only taken when nothing that may follow could change its meaning ("3." may become "3.5",
"Mr." is not an end, ".." may grow into an ellipsis); otherwise the first sentence leaves
with its last token instead of waiting for the next one.

:func:`find_sentence_end` is the whole interface; the stream around it lives in
:mod:`~pipecat_tavus_interactions.core.echo`.
"""

from __future__ import annotations

_LATIN_ENDS = frozenset(".!?…")
_CJK_ENDS = frozenset("。！？｡")
_ENDS = _LATIN_ENDS | _CJK_ENDS
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


def _is_abbreviation(text: str, dot: int) -> bool:
    """Tell whether the ``.`` at ``text[dot]`` closes an abbreviation or an initial."""
    k = dot
    while k > 0 and not text[k - 1].isspace():
        k -= 1
    word = text[k:dot].lstrip(_OPENERS).casefold()
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return True
    if "." in word and word.replace(".", "").isalpha():  # "U.S.", "e.g."
        return True
    return word in _ABBREVIATIONS


def find_sentence_end(text: str, start: int = 0) -> tuple[int, int]:
    """Find the first sentence end in ``text`` at or after ``start``.

    A sentence ends with ``.``, ``!``, ``?`` or ``…`` (plus any closing quotes or brackets)
    followed by whitespace, or with a CJK full stop, exclamation or question mark. At the
    very end of the text an end mark counts at once unless it could still be something
    else: a ``.`` after a digit ("3." may become "3.5"), after an abbreviation or initial
    ("Mr.", "e.g."), or a run of dots that may grow into an ellipsis. This is what lets
    the first sentence leave with its last token instead of waiting for the next one.

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
        last_dot = i + run.rfind(".") if only_dots else -1
        single_dot = only_dots and run.count(".") == 1
        if j < n:
            if text[j].isspace() and not (single_dot and _is_abbreviation(text, last_dot)):
                return j, j
            i = j  # "3.5", "e.g. ", "Hello.World": not a boundary
            continue
        # The end mark is the last thing buffered: decide now if it is unambiguous.
        if not only_dots:
            return j, j
        if not single_dot or (i > 0 and text[i - 1].isdigit()) or _is_abbreviation(text, i):
            return -1, i
        return j, j
    return -1, n


__all__ = ["find_sentence_end"]
