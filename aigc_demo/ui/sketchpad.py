"""A digit sketchpad that draws on first contact: a plain <canvas> in gr.HTML.

Why not gr.Sketchpad: in Gradio 6.31 it starts with no tool selected (a stroke draws nothing until
the visitor finds the Brush), and inside a Row its drawing area is laid out narrower than its canvas,
so strokes near the sides are lost. This canvas is square, always in pen mode, works with a mouse,
a pen or a finger, and hands the drawing over as a PNG data URL (the component's value), which
services/digits_sketch.py reads like any other image. An empty string means: nothing drawn.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

import html

from aigc_demo.ui.strings import LANGS, text

CANVAS_PX = 280  # drawing resolution: 10x MNIST
PEN_PX = 22  # stroke width at that resolution (MNIST strokes are ~2-3 px of 28)

_TEMPLATE = """
<div class="aigc-sketch">
  <div class="aigc-sketch-label" {label}>{label_en}</div>
  <canvas width="{size}" height="{size}" aria-label="{label_en}" data-testid="sketch-canvas"></canvas>
  <div class="aigc-sketch-bar">
    <span class="aigc-sketch-hint" {hint}>{hint_en}</span>
    <button type="button" class="aigc-sketch-undo" {undo}>{undo_en}</button>
    <button type="button" class="aigc-sketch-clear" {clear}>{clear_en}</button>
  </div>
</div>
"""

# Shows the sketchpad's own words in the page's language: ?lang= first, then the browser's.
_LANG_JS = """
const wanted = (new URLSearchParams(location.search).get('lang') || navigator.language || 'en').toLowerCase();
const lang = wanted.startsWith('zh') ? 'zh' : 'en';
element.querySelectorAll('[data-' + lang + ']').forEach((node) => { node.textContent = node.dataset[lang]; });
"""

# Runs once per render. Strokes are kept as point lists so Undo can redraw; the value is set
# (and 'change' triggered) when a stroke ends, so the server sees whole strokes only. When the
# server sets the value to "" (after Add, or Clear), the canvas is wiped to match.
_JS = """
const canvas = element.querySelector('canvas');
const ctx = canvas.getContext('2d');
const PEN = %(pen)d;
let strokes = [];
let current = null;
function paint() {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#000000'; ctx.fillStyle = '#000000';
  ctx.lineWidth = PEN; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  for (const s of strokes) {
    if (s.length === 1) { ctx.beginPath(); ctx.arc(s[0][0], s[0][1], PEN / 2, 0, 2 * Math.PI); ctx.fill(); continue; }
    ctx.beginPath(); ctx.moveTo(s[0][0], s[0][1]);
    for (const p of s.slice(1)) { ctx.lineTo(p[0], p[1]); }
    ctx.stroke();
  }
}
function at(ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}
function publish() {
  const url = strokes.length ? canvas.toDataURL('image/png') : '';
  element.dataset.ink = strokes.length ? '1' : '0';
  props.value = url;
  trigger('change');
}
canvas.addEventListener('pointerdown', (ev) => {
  ev.preventDefault();
  canvas.setPointerCapture(ev.pointerId);
  current = [at(ev)]; strokes.push(current); paint();
});
canvas.addEventListener('pointermove', (ev) => {
  if (!current) return;
  ev.preventDefault();
  current.push(at(ev)); paint();
});
const end = (ev) => { if (!current) return; current = null; publish(); };
canvas.addEventListener('pointerup', end);
canvas.addEventListener('pointercancel', end);
element.querySelector('.aigc-sketch-clear').addEventListener('click', () => { strokes = []; paint(); publish(); });
element.querySelector('.aigc-sketch-undo').addEventListener('click', () => { strokes.pop(); paint(); publish(); });
watch('value', () => { if (!props.value && strokes.length) { strokes = []; paint(); element.dataset.ink = '0'; } });
element.dataset.ink = '0';
paint();
"""


def _localized(key: str) -> dict[str, str]:
    """`data-en`/`data-zh` attributes (the page script picks the visitor's language: gr.I18n
    translates component labels, not text inside an HTML template) and the English default."""
    attrs = " ".join(f'data-{lang}="{html.escape(text(key, lang), quote=True)}"' for lang in LANGS)
    return {"": attrs, "_en": html.escape(text(key, "en"))}


def digit_sketchpad(label_key: str, elem_id: str) -> gr.HTML:
    """A square pen canvas whose value is the drawing as a PNG data URL ('' when blank)."""
    parts = {"label": label_key, "hint": "sketch.hint", "undo": "sketch.undo", "clear": "sketch.clear"}
    values = {name + suffix: value for name, key in parts.items() for suffix, value in _localized(key).items()}
    template = _TEMPLATE.format(size=CANVAS_PX, **values)
    return gr.HTML("", html_template=template, js_on_load=(_LANG_JS + _JS) % {"pen": PEN_PX}, elem_id=elem_id,
                   elem_classes=["aigc-sketchpad"], apply_default_css=True)


def has_ink(value: Any) -> bool:
    """Whether the sketchpad's value holds a drawing (the canvas sends '' when blank)."""
    return isinstance(value, str) and value.startswith("data:image/")


def gate(value: Any) -> Any:
    """Enable a button only while there is ink on the sketchpad."""
    return gr.Button(interactive=has_ink(value))
