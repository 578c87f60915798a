"""Masking an API key, and every prefix of it of 8+ characters, in text or in bytes.

Shared by the REST client (its errors and logs: ``api_http.redact_key``) and the recorder
(every line it writes: ``core.recording``): a server, a proxy or a tool that echoes a
truncated key must not leak most of it. Pure: no I/O.
"""

from __future__ import annotations

from typing import AnyStr

#: The shortest prefix of a key that is masked on its own.
MIN_SECRET_PREFIX = 8


def mask_key_prefixes(data: AnyStr, hay: AnyStr, key: AnyStr, mask: AnyStr) -> AnyStr:
    """Replace each run of ``data`` that starts like ``key`` for 8+ characters with ``mask``.

    A run is as long as it keeps matching ``key``: the whole key, or the longest prefix of
    it (at least :data:`MIN_SECRET_PREFIX` long, or the whole key when it is shorter) found
    at that place.

    Args:
        data: The text or bytes to scrub.
        hay: ``data`` with ASCII letters lowered (the same length and offsets as ``data``).
        key: The key, lowered the same way.
        mask: What replaces each run.

    Returns:
        ``data`` with every run replaced (``data`` itself when there is none).
    """
    head = key[:MIN_SECRET_PREFIX]
    start = hay.find(head)
    if start < 0:
        return data
    out: list[AnyStr] = []
    done = 0
    while start >= 0:
        end = start + len(head)
        limit = min(len(hay), start + len(key))
        while end < limit and hay[end] == key[end - start]:
            end += 1
        out += (data[done:start], mask)
        done = end
        start = hay.find(head, end)
    out.append(data[done:])
    return data[:0].join(out)


__all__ = ["MIN_SECRET_PREFIX", "mask_key_prefixes"]
