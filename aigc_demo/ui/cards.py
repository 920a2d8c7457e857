"""The gallery's cards as one HTML string: a filter change is then a single cheap update of one
component, where rendering each card as Gradio components froze the page.

Every value that comes from a model card (or a visitor's saved model) is escaped; sample images
are inlined as small data URIs, so no server path or session folder reaches the page. Each card
is a <details> element: open on a wide screen, closed on a phone (see GALLERY_JS), so the page
stays short there. Buttons carry `data-tab`; GALLERY_JS turns a click into a tab switch.
"""

from __future__ import annotations

import html
from pathlib import Path

from aigc_demo.catalog import TASKS, Metric, ModelSpec, format_parameters, hub_entry
from aigc_demo.services.availability import hub_page
from aigc_demo.services.gallery import thumbnail_data_uri
from aigc_demo.ui.strings import t

# Runs once when the gallery's gr.HTML mounts (Gradio passes `element`, `trigger` and `watch`).
# A filter change only hides and shows cards that are already in the page (no server round trip,
# so it answers at once however busy the server is); the count line is rewritten from its
# data-some / data-none templates. A click on a card's button asks the server to switch tabs.
# Cards are folded on a phone-width screen after each update.
GALLERY_JS = """
const narrow = () => window.matchMedia('(max-width: 640px)').matches;
const fold = () => { if (narrow()) element.querySelectorAll('details.model-card[open]')
                                          .forEach((card) => card.removeAttribute('open')); };
const apply = () => {
  const task = element.dataset.task || 'all', source = element.dataset.source || 'all';
  let shown = 0;
  element.querySelectorAll('#gallery-cards > .model-card').forEach((card) => {
    const match = (task === 'all' || card.dataset.task === task) &&
                  (source === 'all' || card.dataset.source === source);
    card.style.display = match ? '' : 'none';
    if (match) shown += 1;
  });
  const line = element.querySelector('#gallery-count');
  if (line) line.textContent = shown ? line.dataset.some.replace('{count}', String(shown)) : line.dataset.none;
};
window.aigcGalleryFilter = (task, source) => {
  element.dataset.task = task || 'all';
  element.dataset.source = source || 'all';
  apply();
};
element.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-tab]');
  if (!button) return;
  event.preventDefault();
  trigger('click', {tab: button.dataset.tab, part: button.dataset.part || ''});
});
fold();
apply();
watch('value', () => { fold(); apply(); });
"""
# The filters' change event runs this in the browser only.
FILTER_JS = "(task, source) => { if (window.aigcGalleryFilter) window.aigcGalleryFilter(task, source); }"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def metric_badge(metric: Metric) -> str:
    arrow = {True: " ↓", False: " ↑", None: ""}[metric.lower_is_better]
    title = esc(metric.note or ("lower is better" if metric.lower_is_better else ""))
    unit = f" {esc(metric.unit)}" if metric.unit else ""
    return (f'<span class="metric-badge" title="{title}">{esc(metric.name)} '
            f"<b>{metric.value:.4g}</b>{unit}{esc(arrow)}</span>")


def download_gb(spec: ModelSpec) -> float | None:
    """What downloading a curated hub model fetches (None for other models)."""
    entry = hub_entry(spec.id) if spec.source == "hub" else None
    return entry.download_gb if entry and entry.download_gb else None


def hub_needs(spec: ModelSpec) -> list[str]:
    """What a hub model asks of this machine: memory, the device it suits, its download size."""
    parts = [t("gallery.memory", memory=spec.memory_gb)] if spec.memory_gb else []
    parts.append(t(f"gallery.suits.{spec.suits}") if spec.suits in ("any", "cuda") else spec.suits)
    size = download_gb(spec)
    if size:
        parts.append(t("gallery.download", download=size))
    return parts


def availability_chip(spec: ModelSpec) -> str:
    """'downloaded' or 'not downloaded · 5.2 GB' for hub models; the server and whether it answers
    for a remote engine's models; '' for local ones."""
    if spec.source == "remote":
        ready = "avail-ready" if spec.reachable else "avail-missing"
        state = t("gallery.reachable" if spec.reachable else "gallery.unreachable")
        return f'<span class="avail {ready}">{esc(spec.server)} · {esc(state)}</span>'
    if spec.source != "hub":
        return ""
    if spec.cached:
        return f'<span class="avail avail-ready">{esc(t("gallery.cached"))}</span>'
    size = download_gb(spec)
    text = t("gallery.not_downloaded_size", size=size) if size else t("gallery.not_downloaded")
    return f'<span class="avail avail-missing">{esc(text)}</span>'


def size_line(spec: ModelSpec) -> str:
    if spec.source == "remote":  # the engine knows its size; the app does not ask
        parts = [t("gallery.source.remote")]
    elif spec.source == "hub":
        parts = [t("gallery.params_published", params=format_parameters(spec.parameters)), *hub_needs(spec)]
        if spec.device_map_auto:
            parts.append(t("gallery.device_map_auto"))
    else:
        parts = [t("gallery.params", params=format_parameters(spec.parameters))]
        if spec.size_mb is not None:
            parts.append(t("gallery.size", size=spec.size_mb))
    if spec.license:
        parts.append(t("gallery.license", license=spec.license))
    return " · ".join(parts)


def open_button(spec: ModelSpec, tab_ids: list[str]) -> str:
    if not spec.tab:
        return ""
    label = _tab_label(spec.tab)
    if spec.tab not in tab_ids:
        return f'<p class="card-note"><i>{esc(t("gallery.no_tab", tab=label))}</i></p>'
    return (f'<button type="button" class="card-open" data-tab="{esc(spec.tab)}" data-part="{esc(spec.family)}">'
            f'{esc(t("gallery.open", tab=label))}</button>')


def _tab_label(tab: str) -> str:
    """The tab's name in the page; a card may name a tab this build does not have."""
    try:
        return t(f"tab.{tab}")
    except KeyError:
        return tab


def summary_html(spec: ModelSpec, button: str = "") -> str:
    """What a card shows even when folded: title, task, family, origin, availability, its button."""
    origin = t(f"gallery.source.{spec.source}")
    return (f'<summary><span class="card-title">{esc(spec.title)}</span>'
            f'<span class="card-kind"><code>{esc(task_label(spec))}</code> · <code>{esc(spec.family)}</code>'
            f" · {esc(origin)}</span>{availability_chip(spec)}{button}</summary>")


def card_html(spec: ModelSpec, tab_ids: list[str]) -> str:
    """One model as a collapsible card."""
    body: list[str] = []
    if spec.error:
        error = spec.error.replace(str(Path(spec.folder).parent), "…") if spec.folder else spec.error
        body.append(f'<p class="card-error">{esc(t("gallery.card_error", error=error))}</p>')
        return (f'<details class="model-card card-broken" open>{summary_html(spec)}'
                f'<div class="card-body">{"".join(body)}</div></details>')
    body.append(f'<p class="card-size">{esc(size_line(spec))}</p>')
    if spec.source == "hub":
        state = t("gallery.cached") if spec.cached else t("gallery.not_cached")
        body.append(f'<p class="card-state">{esc(state)}</p>')
    if spec.description:
        body.append(f'<p class="card-desc">{esc(spec.description)}</p>')
    if spec.sample_image:
        uri = thumbnail_data_uri(spec.sample_image)
        if uri:
            body.append(f'<img class="card-sample" src="{uri}" alt="{esc(t("gallery.sample_alt", title=spec.title))}">')
    if spec.sample_text:
        body.append(f'<pre class="card-code"><code>{esc(spec.sample_text)}</code></pre>')
    if spec.metrics:
        body.append('<div class="card-metrics">' + "".join(metric_badge(m) for m in spec.metrics) + "</div>")
    elif spec.source not in ("hub", "remote"):
        body.append(f'<p class="card-note"><i>{esc(t("gallery.no_metrics"))}</i></p>')
    if spec.source == "hub" and spec.repo_id:
        body.append(f'<p class="card-link"><a href="{esc(hub_page(spec.repo_id))}" target="_blank" '
                    f'rel="noopener noreferrer">{esc(t("gallery.hub_page"))}</a></p>')
    return (f'<details class="model-card" open data-task="{esc(spec.task)}" data-source="{esc(spec.source)}">'
            f'{summary_html(spec, open_button(spec, tab_ids))}<div class="card-body">{"".join(body)}</div></details>')


def gallery_html(specs: list[ModelSpec], tab_ids: list[str]) -> str:
    """The count line and every card: what the gallery's one HTML component shows (the page
    hides the cards that the filters leave out)."""
    count = t("gallery.count", count=len(specs)) if specs else t("gallery.empty")
    cards = "".join(card_html(spec, tab_ids) for spec in specs)
    return (f'<p id="gallery-count" data-some="{esc(t("gallery.count", count="{count}"))}" '
            f'data-none="{esc(t("gallery.empty"))}">{esc(count)}</p><div id="gallery-cards">{cards}</div>')


def task_label(spec: ModelSpec) -> str:
    """The card's task in the visitor's language (the catalog's English label for unknown tasks)."""
    return t(f"task.{spec.task}") if spec.task in TASKS else spec.task_label
