"""The turn timeline as one self-contained HTML page (inline CSS and SVG, no script, no network).

One row per turn: on the left what was said (the replica's intended reply with the part it
never said struck through), the tool calls and the latency; on the right the turn's spans on
the conversation's time axis: user speech, replica speech (a red end where it was cut), tool
calls with their durations, interruptions, and ticks for the messages sent.
"""

from __future__ import annotations

import json
from html import escape

from .timeline import Span, Timeline, TurnRow, cut_point, error_lines

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;
background:#fff}
h1{font-size:20px;margin:0 0 4px}.sub{color:#5b6473;margin:0 0 16px}
table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:8px 10px;
border-top:1px solid #e3e6eb}td.txt{width:46%}.turn{font-weight:600;color:#5b6473}
.u{color:#1f5fbf}.r{color:#16794a}.cut{color:#b3261e;text-decoration:line-through}
.tool{color:#9a5b00}.lat{color:#5b6473;font-size:12px}.err{color:#b3261e}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;
height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
"""

_COLORS = {"user": "#4a86e8", "replica": "#2e9e63", "tool": "#e69b00", "cut": "#d93025"}


def _x(t: float, duration: float, width: int) -> float:
    return 0.0 if duration <= 0 else round(t / duration * width, 1)


def _rect(span: Span, y: int, h: int, color: str, duration: float, width: int, tip: str) -> str:
    end = span.end if span.end is not None else duration
    x0, x1 = _x(span.start, duration, width), _x(end, duration, width)
    w = max(x1 - x0, 2.0)
    out = (
        f'<rect x="{x0}" y="{y}" width="{w}" height="{h}" rx="2" fill="{color}">'
        f"<title>{escape(tip)}</title></rect>"
    )
    if span.cut:
        out += f'<rect x="{x0 + w - 3}" y="{y}" width="3" height="{h}" fill="{_COLORS["cut"]}"/>'
    return out


def _axis(duration: float, width: int) -> str:
    step = next((s for s in (0.5, 1, 2, 5, 10, 30, 60, 120, 300) if duration / s <= 12), 600)
    parts = []
    t = 0.0
    while t <= duration + 1e-9:
        x = _x(t, duration, width)
        anchor = "start" if t == 0 else "middle"
        parts.append(
            f'<line x1="{x}" y1="14" x2="{x}" y2="20" stroke="#9aa3b0"/>'
            f'<text x="{x}" y="11" font-size="10" fill="#5b6473" text-anchor="{anchor}">'
            f"{t:g} s</text>"
        )
        t += step
    return f'<svg width="{width}" height="22" role="img">{"".join(parts)}</svg>'


def _svg(row: TurnRow, duration: float, width: int) -> str:
    parts = [f'<line x1="0" y1="23" x2="{width}" y2="23" stroke="#eef0f3"/>']
    for span in row.user:
        parts.append(_rect(span, 4, 10, _COLORS["user"], duration, width, "user speaking"))
    for span in row.replica:
        tip = "replica speaking (cut)" if span.cut else "replica speaking"
        parts.append(_rect(span, 18, 10, _COLORS["replica"], duration, width, tip))
    for tool in row.tools:
        took = (
            "" if tool.span.end is None else f" {1000 * (tool.span.end - tool.span.start):.0f} ms"
        )
        tip = f"{tool.name}: {tool.status}{took}, {tool.delivery or '-'}"
        parts.append(_rect(tool.span, 32, 8, _COLORS["tool"], duration, width, tip))
        end = tool.span.end if tool.span.end is not None else duration
        x = _x(end, duration, width) + 4
        anchor = "start" if x < width * 0.7 else "end"
        x = x if anchor == "start" else _x(tool.span.start, duration, width) - 4
        parts.append(
            f'<text x="{x}" y="40" font-size="10" fill="#9a5b00" text-anchor="{anchor}">'
            f"{escape(tool.name)}{escape(took)} ({escape(tool.status)})</text>"
        )
    for t, who in row.interruptions:
        x = _x(t, duration, width)
        parts.append(
            f'<path d="M{x - 5},0 L{x + 5},0 L{x},8 Z" fill="{_COLORS["cut"]}">'
            f"<title>interrupted ({who}) at {t:.2f} s</title></path>"
        )
    for t, kind in row.sent:
        x = _x(t, duration, width)
        parts.append(
            f'<line x1="{x}" y1="40" x2="{x}" y2="46" stroke="#5b6473">'
            f"<title>sent {escape(kind)} at {t:.2f} s</title></line>"
        )
    return f'<svg width="{width}" height="46" role="img">{"".join(parts)}</svg>'


def _text(row: TurnRow) -> str:
    rec = row.record
    out = [f'<div class="turn">Turn {row.turn_idx}</div>']
    if rec is not None and rec.user_text:
        who = "respond" if rec.user_injected else "user"
        out.append(f'<div class="u"><b>{who}:</b> {escape(rec.user_text)}</div>')
    for tool in row.tools:
        took = (
            "" if tool.span.end is None else f", {1000 * (tool.span.end - tool.span.start):.0f} ms"
        )
        args = escape(json.dumps(tool.arguments, default=repr))
        result = escape(repr(tool.result))
        out.append(
            f'<div class="tool"><b>tool:</b> {escape(tool.name)}({args}) &rarr; {result} '
            f"[{escape(tool.status)}{took}, {escape(tool.delivery or '-')}]</div>"
        )
    if rec is not None and (rec.replica_spoken_text or rec.replica_intended_text):
        said, cut = cut_point(rec.replica_intended_text, rec.replica_spoken_text)
        cut_html = f' <span class="cut">{escape(cut)}</span>' if cut else ""
        out.append(f'<div class="r"><b>replica:</b> {escape(said)}{cut_html}</div>')
    notes = []
    if row.latency_s is not None:
        notes.append(f"latency {row.latency_s * 1000:.0f} ms (user stop &rarr; replica start)")
    if rec is not None and rec.response_latency_s is not None:
        notes.append(f"Tavus clock {rec.response_latency_s * 1000:.0f} ms")
    for t, who in row.interruptions:
        notes.append(f"interrupted at {t:.2f} s ({'user barge-in' if who == 'user' else 'local'})")
    if notes:
        out.append(f'<div class="lat">{"; ".join(notes)}</div>')
    return "".join(out)


def render_html(timeline: Timeline, *, width: int = 560, title: str | None = None) -> str:
    """Render ``timeline`` as a complete HTML document.

    Args:
        timeline: The timeline.
        width: Width of the time axis in pixels.
        title: The page title (default: the conversation).
    """
    title = title or f"Tavus conversation {timeline.conversation_id or ''}".strip()
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{name}</span>'
        for name, c in (
            ("user speaking", _COLORS["user"]),
            ("replica speaking", _COLORS["replica"]),
            ("tool call", _COLORS["tool"]),
            ("cut / interruption", _COLORS["cut"]),
        )
    )
    rows = "".join(
        f'<tr><td class="txt">{_text(r)}</td><td>{_svg(r, timeline.duration, width)}</td></tr>'
        for r in timeline.rows
    )
    errors = "".join(f'<div class="err">{escape(line)}</div>' for line in error_lines(timeline))
    if errors:
        errors = f"<h2>Dropped messages (protocol errors)</h2>{errors}"
    dropped = (
        f'<p class="err">The recorder dropped {timeline.dropped} line(s).</p>'
        if timeline.dropped
        else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_CSS}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="sub">{escape(timeline.summary())}</p><p class="legend">{legend}</p>'
        f"{dropped}<table><tr><td></td><td>{_axis(timeline.duration, width)}</td></tr>{rows}"
        f"</table>{errors}</body></html>\n"
    )


__all__ = ["render_html"]
