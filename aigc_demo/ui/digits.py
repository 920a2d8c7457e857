"""The Digits tab: the GAN draws digits, the VAE squeezes them through a tiny latent space.

Sections: a grid of generated digits, the diffusion model's digits and its denoising steps
(ui/digits_diffusion.py), typed digits rendered as handwriting, a latent walk, a sketchpad the
VAE reconstructs and places on its 2-D latent map, and that map itself.
"""

from __future__ import annotations

import io
import random
from typing import Any

import gradio as gr

from aigc_demo.data.png import encode_pngs
from aigc_demo.errors import UserError
from aigc_demo.services import digits as svc
from aigc_demo.services import digits_grid, digits_map, digits_sketch, digits_walk
from aigc_demo.services.gallery import models_for_tab
from aigc_demo.services.validate import identifier
from aigc_demo.ui import model_refs, sessions, share
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.digits_diffusion import build_diffusion_part, open_from_card
from aigc_demo.ui.files import serve_bytes
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.sketchpad import digit_sketchpad, gate, has_ink
from aigc_demo.ui.lead import build_help, build_lead
from aigc_demo.ui.strings import t

BATCH = 8  # requests Gradio groups into one forward pass
WALK_SCALE = 10  # the walk's 28-px frames are drawn at 280 px: a GIF large enough to watch


def _latent_dim(ref: str) -> int | None:
    folder = model_refs.resolve_or_none(ref)
    return None if folder is None else svc.latent_dim(folder)


def digit_models(ctx: AppContext) -> dict[str, list[tuple[str, str]]]:
    """Pickers' choices by role, from the catalog (shipped and user folders)."""
    def of(family: str) -> list[tuple[str, str]]:
        return models_for_tab(ctx.settings.weights_dir, "digits", ctx.user_dirs, families=(family,))

    vaes = of("vae")
    return {"gan": of("gan"), "vae": vaes, "vae2d": [c for c in vaes if _latent_dim(c[1]) == 2],
            "classifier": of("classifier")}


def next_seed(seed: float | None, randomize: bool) -> int:
    """A fresh seed when 'random' is ticked, else the one in the box (so a result can be redone)."""
    if randomize or seed is None:
        return random.randint(0, 2**31 - 1)
    return svc.check_seed(seed)


def _required(ref: Any, role: str, *session: str | None) -> str:
    """The folder of the picked model id (only ids the pickers list are accepted), for the current
    visitor or the given one."""
    ref = identifier(ref, t(f"digits.role.{role}"), required=False)
    if not ref:
        raise UserError(t("digits.no_model", role=t(f"digits.role.{role}")))
    return model_refs.resolve(ref, *session)


@user_errors
def grid_batched(digits: list, counts: list, seeds: list, truncations: list, folders: list) -> tuple[list]:
    """Gradio batch handler: requests for the same GAN share one forward pass.

    A request that fails (its checks, or its model failing to load) gets its message when it came
    alone; batched with others (a direct API call with a bad value or an id it may not use) it gets
    an empty result, and the others still get theirs: Gradio fails a whole batch on one exception,
    and one visitor's input must not cost other visitors their grids."""
    images: list[Any] = [None] * len(digits)
    by_folder: dict[str, list[int]] = {}
    owners = sessions.batch_sessions(len(folders))  # each request's own visitor, for `yours/<name>`
    errors: list[UserError] = []
    for index, ref in enumerate(folders):
        try:
            folder = _required(ref, "gan", owners[index])
            digits_grid.grid_request(digits[index] or None, counts[index], seeds[index], truncations[index])
        except UserError as err:
            errors.append(err)
            continue
        by_folder.setdefault(folder, []).append(index)
    for folder, indices in by_folder.items():
        try:
            grids = digits_grid.generate_grid_batched([digits[i] or None for i in indices],
                                                      [counts[i] for i in indices], [seeds[i] for i in indices],
                                                      [truncations[i] for i in indices], folder=folder)
        except UserError as err:  # this model's requests only
            errors.append(err)
            continue
        # Encoded in parallel in memory and written once into Gradio's cache (not by Gradio one by one).
        for i, png in zip(indices, encode_pngs(grids)):
            which = "".join(str(d) for d in svc.parse_digit_choice(digits[i]) or [])
            name = svc.download_name("digits-grid", which, f"seed{int(seeds[i])}")
            images[i] = serve_bytes(png, name)  # downloads as digits-grid-35-seed11.png
    if errors and all(image is None for image in images):
        raise errors[0]
    return (images,)


def grid_single(digits: list, count: float, seed: float, truncation: float, folder: str | None) -> Any:
    """One grid (what a share link's run=1 asks for), through the batch handler."""
    return grid_batched([digits], [count], [seed], [truncation], [folder])[0][0]


@user_errors
def write_digits(text: str, seed: int, truncation: float, folder: str | None) -> tuple[Any, str]:
    image = digits_grid.handwriting(text, seed=seed, truncation=truncation, folder=_required(folder, "gan"))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path = serve_bytes(buffer.getvalue(), svc.download_name("handwriting", svc.check_text(text), f"style{int(seed)}"))
    return path, path


@user_errors
def latent_walk(kind: str, seed_a: float, seed_b: float, digit: int, digit_a: int, digit_b: int,
                steps: int, gan_folder: str | None, vae_folder: str | None) -> tuple[str, Any]:
    if kind == "gan":
        walk = digits_walk.gan_walk(seed_a, seed_b, digit, steps, folder=_required(gan_folder, "gan"), scale=WALK_SCALE)
        stem = svc.download_name("latent-walk-gan", f"digit{int(digit)}", f"seeds{int(seed_a)}-{int(seed_b)}", suffix="")
    else:
        walk = digits_walk.vae_walk(digit_a, digit_b, steps, seed=seed_a, folder=_required(vae_folder, "vae"),
                            gan_folder=_required(gan_folder, "gan"), scale=WALK_SCALE)
        stem = svc.download_name("latent-walk-vae", f"{int(digit_a)}-to-{int(digit_b)}", suffix="")
    strip = io.BytesIO()
    walk.strip.save(strip, format="PNG")
    return serve_bytes(walk.gif, stem + ".gif"), serve_bytes(strip.getvalue(), stem + "-strip.png")


def walk_controls(kind: str) -> tuple[Any, Any, Any]:
    """Show only the chosen walk's controls: the GAN's digit and second seed, or the VAE's two digits."""
    gan = kind == "gan"
    return gr.Number(visible=gan), gr.Dropdown(visible=gan), gr.Row(visible=not gan)


@user_errors  # anything that is not a visitor's message (UserError) is logged and shown generically
def read_sketch(sketch: Any, vae_folder: str | None, classifier_folder: str | None) -> tuple[Any, ...]:
    """Read a drawing; a blank or unreadable one gives one message (in `where`), not an error per output."""
    if not has_ink(sketch):
        return None, None, None, None, t("digits.sketch_blank")
    try:
        result = digits_sketch.reconstruct_sketch(sketch, folder=_required(vae_folder, "vae2d"),
                                                  classifier_folder=_required(classifier_folder, "classifier"))
    except UserError as err:
        return None, None, None, None, t("digits.sketch_problem", problem=str(err))
    best = max(result.probabilities, key=result.probabilities.get)
    where = (t("digits.sketch_where", x=result.latent[0], y=result.latent[1], best=best)
             if result.latent else t("digits.sketch_best", best=best))
    return result.digit, result.reconstruction, result.probabilities, result.scatter, where


@user_errors
def show_latent_map(vae_folder: str | None) -> tuple[Any, Any]:
    folder = _required(vae_folder, "vae2d")
    return digits_map.latent_map(folder), digits_map.scatter_plot(folder)


def _picker(label: str, choices: list[tuple[str, str]], elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(choices, value=choices[0][1] if choices else None, label=label, elem_id=elem_id,
                       allow_custom_value=True)  # a visitor's saved models join after page load


def build_digits_tab(ctx: AppContext) -> None:
    models = digit_models(ctx)
    build_lead("digits")
    with gr.Accordion(t("digits.models"), open=False):
        with gr.Row():
            gan = _picker(t("digits.role.gan"), models["gan"], "digits-gan")
            vae = _picker(t("digits.role.vae"), models["vae"], "digits-vae")
            vae2d = _picker(t("digits.role.vae2d"), models["vae2d"], "digits-vae2d")
            classifier = _picker(t("digits.role.classifier"), models["classifier"], "digits-classifier")
    for role, picker in (("gan", gan), ("vae", vae), ("vae2d", vae2d), ("classifier", classifier)):
        ctx.register_picker(picker, lambda role=role: digit_models(ctx)[role])

    with gr.Tabs(overflow_behavior="wrap") as parts:
        with gr.Tab(t("digits.grid"), id="digits-grid"):
            build_help("digits.grid_lead", "digits.grid_help", "digits-grid")
            with gr.Row():
                with gr.Column(scale=1):
                    chosen = gr.CheckboxGroup([str(d) for d in range(10)], label=t("digits.which"),
                                              info=t("digits.which_info"), elem_id="digits-which")
                    count = gr.Slider(1, svc.MAX_GRID, value=40, step=1, label=t("digits.count"),
                                      info=t("digits.count_info", max=svc.MAX_GRID))
                    truncation = gr.Slider(*svc.TRUNCATION_RANGE, value=1.0, step=0.05,
                                           label=t("digits.truncation"), info=t("digits.truncation_info"))
                    with gr.Row():
                        seed = gr.Number(0, precision=0, minimum=0, maximum=svc.MAX_SEED,
                                         label=t("digits.seed"), elem_id="digits-seed")
                        randomize = gr.Checkbox(True, label=t("digits.random_seed"),
                                                info=t("digits.random_seed_info"))
                    generate = gr.Button(t("digits.generate"), variant="primary", elem_id="digits-generate")
                grid = gr.Image(label=t("digits.grid_out"), type="pil", format="png", height=420,
                                elem_id="digits-grid-out", scale=2, elem_classes=["aigc-out"])
            grid_share = gr.Column()
            grid_inputs = [chosen, count, seed, truncation, gan]
            grid_event = generate.click(next_seed, [seed, randomize], seed, api_visibility="private").then(
                grid_batched, grid_inputs, [grid], batch=True, max_batch_size=BATCH, api_name="digits_grid",
                concurrency_limit=1)  # one group at a time, so waiting requests share a forward pass

        diffusion = build_diffusion_part(ctx, classifier, next_seed)

        with gr.Tab(t("digits.write"), id="digits-write"):
            build_help("digits.write_lead", "digits.write_help", "digits-write")
            with gr.Row():
                with gr.Column(scale=1):
                    text = gr.Textbox("2026", label=t("digits.text"), max_length=svc.MAX_TEXT * 4,
                                      info=t("digits.text_info", max=svc.MAX_TEXT), elem_id="digits-text")
                    style = gr.Number(7, precision=0, minimum=0, maximum=svc.MAX_SEED, label=t("digits.style"))
                    neatness = gr.Slider(*svc.TRUNCATION_RANGE, value=0.8, step=0.05,
                                         label=t("digits.truncation"))
                    write = gr.Button(t("digits.write_button"), variant="primary", elem_id="digits-write-go")
                with gr.Column(scale=2):
                    line = gr.Image(label=t("digits.write_out"), type="pil", format="png",
                                    elem_id="digits-write-out", elem_classes=["aigc-out"])
                    download = gr.File(label=t("digits.download"), elem_id="digits-write-file")
                    write_share = gr.Column()
            gr.Examples([["2026"], ["3.14159"], ["0123456789"], ["1-800-555-0199"]], [text])
            write_events = [
                write.click(write_digits, [text, style, neatness, gan], [line, download], api_name="digits_write"),
                text.submit(write_digits, [text, style, neatness, gan], [line, download], api_visibility="private")]

        with gr.Tab(t("digits.walk"), id="digits-walk"):
            build_help("digits.walk_lead", "digits.walk_help", "digits-walk")
            with gr.Row():
                with gr.Column(scale=1):
                    kind = gr.Radio([(t("digits.walk_gan"), "gan"), (t("digits.walk_vae"), "vae")], value="gan",
                                    label=t("digits.walk_kind"))
                    with gr.Row():
                        seed_a = gr.Number(1, precision=0, minimum=0, maximum=svc.MAX_SEED, label=t("digits.seed_a"))
                        seed_b = gr.Number(2, precision=0, minimum=0, maximum=svc.MAX_SEED, label=t("digits.seed_b"),
                                           elem_id="digits-walk-seed-b")
                    walk_digit = gr.Dropdown(list(range(10)), value=3, label=t("digits.walk_digit"),
                                             elem_id="digits-walk-digit")
                    with gr.Row(visible=False, elem_id="digits-walk-vae-digits") as vae_digits:
                        digit_a = gr.Dropdown(list(range(10)), value=1, label=t("digits.digit_a"))
                        digit_b = gr.Dropdown(list(range(10)), value=7, label=t("digits.digit_b"))
                    steps = gr.Slider(2, svc.MAX_WALK_STEPS, value=16, step=1, label=t("digits.steps"))
                    walk = gr.Button(t("digits.walk_button"), variant="primary", elem_id="digits-walk-go")
                with gr.Column(scale=2):
                    gif = gr.Image(label=t("digits.walk_gif"), type="filepath", elem_id="digits-walk-gif",
                                   elem_classes=["aigc-out"])
                    strip = gr.Image(label=t("digits.walk_strip"), type="pil", format="png",
                                     elem_id="digits-walk-strip", elem_classes=["aigc-out"])
                    walk_share = gr.Column()
            kind.change(walk_controls, kind, [seed_b, walk_digit, vae_digits], queue=False,
                        api_visibility="private")
            walk_inputs = [kind, seed_a, seed_b, walk_digit, digit_a, digit_b, steps, gan, vae]
            walk_event = walk.click(latent_walk, walk_inputs, [gif, strip], api_name="digits_walk")

        with gr.Tab(t("digits.draw"), id="digits-draw"):
            gr.Markdown(t("digits.draw_help"))
            with gr.Row():
                sketch = digit_sketchpad("digits.sketch", "digits-sketch")
                with gr.Column():
                    read = gr.Button(t("digits.read"), variant="primary", elem_id="digits-read", interactive=False)
                    where = gr.Markdown(elem_id="digits-where")
                    probabilities = gr.Label(num_top_classes=3, label=t("digits.classifier_says"),
                                             elem_id="digits-probs")
            with gr.Row():
                seen = gr.Image(label=t("digits.seen"), type="pil", height=200, elem_classes=["aigc-out"])
                reconstruction = gr.Image(label=t("digits.reconstruction"), type="pil", height=200,
                                          elem_id="digits-recon", elem_classes=["aigc-out"])
                scatter = gr.Image(label=t("digits.scatter"), type="pil", height=320, elem_classes=["aigc-out"])
            sketch.change(gate, sketch, read, queue=False, show_progress="hidden", api_visibility="private")
            read.click(read_sketch, [sketch, vae2d, classifier],
                       [seen, reconstruction, probabilities, scatter, where], api_name="digits_sketch")

        with gr.Tab(t("digits.map"), id="digits-map") as map_tab:
            build_help("digits.map_lead", "digits.map_help", "digits-map")
            with gr.Row():
                manifold = gr.Image(label=t("digits.map_out"), type="pil", elem_id="digits-map-out",
                                    elem_classes=["aigc-out"])
                test_scatter = gr.Image(label=t("digits.scatter"), type="pil", elem_classes=["aigc-out"])
            map_tab.select(show_latent_map, [vae2d], [manifold, test_scatter], api_name="digits_map")

    # Share links (ui/share.py): one parameter map per part; `seed` is the part's own seed box.
    part_params = {
        "grid": {"digits": chosen, "count": count, "seed": seed, "truncation": truncation, "model": gan},
        "write": {"text": text, "seed": style, "truncation": neatness, "model": gan},
        "walk": {"walk": kind, "seed": seed_a, "seed_b": seed_b, "digit": walk_digit, "digit_a": digit_a,
                 "digit_b": digit_b, "steps": steps, "model": gan, "vae": vae},
        **diffusion.params,
    }

    def open_part(values: dict[str, Any]) -> dict[Any, Any]:
        part = values.get("part", "grid")
        in_diffusion = part in diffusion.params  # its grid and its denoising share one sub-tab
        updates: dict[Any, Any] = {parts: gr.Tabs(selected="digits-diffusion" if in_diffusion else f"digits-{part}")}
        if part in ("grid", *diffusion.params) and "seed" in values:
            updates[diffusion.randomize if in_diffusion else randomize] = False
        return updates

    link = share.target(ctx, "digits", {}, parts=part_params, part_param="part", default_part="grid",
                        models={"model": lambda: digit_models(ctx)["gan"], "vae": lambda: digit_models(ctx)["vae"],
                                "diffusion": diffusion.choices},
                        extra=open_part, extra_outputs=[parts, randomize, diffusion.randomize])
    link.runners["grid"] = share.Runner(grid_single, grid_inputs, [grid], {"concurrency_limit": 1},
                                        capture=part_params["grid"])
    link.runners["write"] = share.Runner(write_digits, [text, style, neatness, gan], [line, download],
                                         capture=part_params["write"])
    link.runners["walk"] = share.Runner(latent_walk, walk_inputs, [gif, strip], capture=part_params["walk"])
    link.capture(grid_event, part_params["grid"], "grid")
    for event in write_events:
        link.capture(event, part_params["write"], "write")
    link.capture(walk_event, part_params["walk"], "walk")
    link.runners.update(diffusion.runners)
    for event, part in diffusion.events:
        link.capture(event, part_params[part], part)
    if ctx.gallery_view is not None:  # a card's Open goes to its model's part (the diffusion model: Diffusion)
        ctx.gallery_view.click(open_from_card, None, parts, show_progress="hidden", queue=False,
                               api_visibility="private")
    for part, slot in (("grid", grid_share), ("write", write_share), ("walk", walk_share), *diffusion.slots.items()):
        with slot:
            share.share_button(link, part)
