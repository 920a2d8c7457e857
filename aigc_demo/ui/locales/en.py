"""Every user-facing string of the web UI, in English. A second language is a copy of this file
(same keys) named after its code, e.g. `fr.py`, chosen with AIGC_LANG=fr."""

STRINGS: dict[str, str] = {
    # shell
    "app.title": "AIGC Gallery",
    "app.tagline": (
        "Generative models side by side: small GANs, VAEs and GPTs trained here, beside "
        "well-known Hugging Face models. Pick a model in the gallery, or open a tab."
    ),
    "app.device_loading": "Checking the hardware…",
    "app.device_badge": "Running on **{device}**",
    # tabs
    "tab.gallery": "Gallery",
    "tab.digits": "Digits",
    "tab.text": "Text",
    "tab.code": "Code",
    "tab.image": "Image",
    "tab.finetune": "Fine-tune",
    "tab.system": "System",
    # gallery
    "gallery.intro": (
        "One card per model this app knows. **Shipped** models were trained for this app and "
        "come with it; **hub** models are downloaded from Hugging Face on first use. Every "
        "metric shown was measured by the project's `eval` command and recorded in the model card."
    ),
    "gallery.filter_task": "Task",
    "gallery.filter_source": "Source",
    "gallery.all": "All",
    "gallery.refresh": "Refresh",
    "gallery.count": "{count} model(s)",
    "gallery.empty": "No model matches this filter.",
    "gallery.source.shipped": "shipped with the app",
    "gallery.source.user": "saved by you",
    "gallery.source.hub": "Hugging Face Hub",
    "gallery.cached": "downloaded",
    "gallery.not_cached": "not downloaded: it is fetched on first use (needs internet)",
    "gallery.params": "{params} parameters",
    "gallery.memory": "needs ~{memory:g} GB of memory",
    "gallery.download": "{download:g} GB download",
    "gallery.suits.any": "runs on CPU, faster on a GPU",
    "gallery.suits.cuda": "needs a CUDA GPU",
    "gallery.device_map_auto": "needs device_map auto (spread over the GPUs present)",
    "gallery.params_published": "~{params} parameters (published)",
    "gallery.size": "{size} MB on disk",
    "gallery.license": "license: {license}",
    "gallery.no_metrics": "No measured metrics recorded yet.",
    "gallery.open": "Open in the {tab} tab",
    "gallery.no_tab": "Runs in the {tab} tab, which is not part of this build yet.",
    "gallery.card_error": "This model's card could not be read: {error}",
    # system
    "system.intro": "What this server runs on, what is loaded, and whether the Hugging Face Hub can be reached.",
    "system.refresh": "Refresh",
    "system.device": "Device",
    "system.libraries": "Libraries",
    "system.loaded": "Loaded models",
    "system.none_loaded": "No model is loaded. Models load on first use and stay loaded for the next user.",
    "system.unload_pick": "Model to unload",
    "system.unload": "Unload",
    "system.unload_all": "Unload all",
    "system.hub": "Hugging Face Hub",
    "system.hub_reachable": "reachable: hub models can be downloaded on first use",
    "system.hub_offline": "offline mode: only models already in the local cache can load ({detail})",
    "system.hub_user": "offline mode set by HF_HUB_OFFLINE ({detail})",
    "system.hub_online_user": "online (HF_HUB_OFFLINE is set off by the user)",
    "system.nothing_to_unload": "Pick a loaded model first.",
    # digits
    "digits.intro": (
        "Handwritten digits from models trained for this app on MNIST. A **GAN** is two networks "
        "in a contest: the *generator* turns random noise (and the digit you ask for) into an "
        "image, the *discriminator* learns to tell its images from real ones, and each gets "
        "better by beating the other. A **VAE** is an *encoder* that squeezes an image into a few "
        "numbers (its latent code) and a *decoder* that draws it back; a KL penalty keeps those "
        "codes close to a simple bell curve, so every point of the latent space decodes to a digit."
    ),
    "digits.models": "Models",
    "digits.role.gan": "GAN (generator)",
    "digits.role.vae": "VAE (for walks)",
    "digits.role.vae2d": "2-D VAE (sketch and map)",
    "digits.role.classifier": "Classifier",
    "digits.no_model": "No {role} model is available: train one (see README) or pick another in Models.",
    "digits.grid": "Generate",
    "digits.grid_help": (
        "The generator gets one noise vector per digit plus the digit's label. **Truncation** "
        "scales the noise: below 1 gives neat, typical digits; above 1 gives wilder ones. The same "
        "seed always gives the same grid."
    ),
    "digits.which": "Digits",
    "digits.which_info": "None ticked: random digits",
    "digits.count": "How many",
    "digits.count_info": "1 to {max}",
    "digits.truncation": "Truncation",
    "digits.truncation_info": "noise scale: < 1 neater, > 1 wilder",
    "digits.seed": "Seed",
    "digits.random_seed": "New random seed each time",
    "digits.random_seed_info": "untick to reuse the seed shown",
    "digits.generate": "Generate",
    "digits.grid_out": "Generated digits",
    "digits.write": "Write digits",
    "digits.write_help": (
        "Type a number and the GAN writes it. Every digit gets the **same noise vector** and only "
        "the label changes, so the whole line shares one handwriting style: the noise holds the "
        "style, the label holds the digit. Change the style number for another hand."
    ),
    "digits.text": "Digits to write",
    "digits.text_info": "digits 0-9 and . - , or spaces; at most {max} characters",
    "digits.style": "Style (seed)",
    "digits.write_button": "Write",
    "digits.write_out": "Handwriting",
    "digits.download": "Download PNG",
    "digits.walk": "Latent walk",
    "digits.walk_help": (
        "Walk in a straight line through a model's latent space and decode each step. For the GAN "
        "the digit stays the same while the noise moves from seed A to seed B (the style morphs). "
        "For the VAE the walk goes from the code of one digit to the code of another, and you see "
        "one digit turn into the other through shapes in between."
    ),
    "digits.walk_kind": "Model",
    "digits.walk_gan": "GAN: one digit, seed A to seed B",
    "digits.walk_vae": "VAE: digit A to digit B",
    "digits.seed_a": "Seed A",
    "digits.seed_b": "Seed B",
    "digits.walk_digit": "Digit (GAN)",
    "digits.digit_a": "Digit A (VAE)",
    "digits.digit_b": "Digit B (VAE)",
    "digits.steps": "Steps",
    "digits.walk_button": "Walk",
    "digits.walk_gif": "Animation",
    "digits.walk_strip": "Every step",
    "digits.draw": "Draw a digit",
    "digits.draw_help": (
        "Pick the **brush** in the sketchpad's toolbar, draw a digit, then press Read. The drawing "
        "is scaled to 28x28 like MNIST; the 2-D VAE's encoder maps it to a point on its latent map "
        "(the cross on the scatter of test digits), the decoder draws that point back, and the "
        "classifier says which digit it sees."
    ),
    "digits.sketch": "Your digit",
    "digits.read": "Read my digit",
    "digits.classifier_says": "The classifier says",
    "digits.sketch_where": "Latent code: ({x:.2f}, {y:.2f}); the classifier reads a **{best}**.",
    "digits.sketch_best": "The classifier reads a **{best}**.",
    "digits.seen": "What the models see (28x28)",
    "digits.reconstruction": "VAE reconstruction",
    "digits.scatter": "Test digits in the 2-D latent space",
    "digits.map": "Latent map",
    "digits.map_help": (
        "The 2-D VAE's whole latent space at a glance: each cell decodes one point of a grid "
        "spread over the bell curve. Neighbouring points give similar digits, which is what the KL "
        "term buys: a smooth, gap-free space. Compare with the scatter of real test digits."
    ),
    "digits.map_out": "Decoded latent grid",
    # image
    "image.intro": (
        "Type a prompt and press **Generate**. Turbo models make a picture in one to four steps; "
        "with guidance above 1 the negative prompt steers away from what it names. Every PNG keeps "
        "its settings (prompt, model, seed, steps, guidance, size) in its metadata: drop one in "
        "*Load settings from an image* to make it again."
    ),
    "image.model": "Model",
    "image.hub_id": "Another Hugging Face model (text to image)",
    "image.hub_add": "Add to the list",
    "image.hub_added": "Added {repo}: it downloads on first use if the Hub can be reached.",
    "image.prompt": "Prompt",
    "image.prompt_placeholder": "a watercolor fox in a snowy forest",
    "image.negative": "Negative prompt",
    "image.steps": "Steps",
    "image.guidance": "Guidance",
    "image.guidance_info": "0 for turbo models; 5-8 for classic Stable Diffusion",
    "image.count": "Number of images",
    "image.width": "Width",
    "image.height": "Height",
    "image.seed": "Seed",
    "image.random_seed": "Random seed",
    "image.reuse_seed": "Reuse last seed",
    "image.no_seed_yet": "Generate an image first: then its seed can be reused.",
    "image.generate": "Generate",
    "image.results": "Images",
    "image.no_model": "Pick a model first.",
    "image.loading": "Loading the model…",
    "image.step": "Denoising",
    "image.downloading": "Downloading: {detail}",
    "image.caption": "seed {seed} · {seconds} s",
    "image.done": "{count} image(s), **{per_image} s per image**, first seed {seed}, on {device}.",
    "image.loaded_in": "The model loaded in {seconds} s (once; it stays loaded for the next request).",
    "image.load_settings": "Load settings from an image",
    "image.load_settings_file": "A PNG made by this tab",
    "image.settings_loaded": "Settings restored from the image (model {model}, revision {revision}).",
    "image.model_not_listed": "Its model, {model}, is not in the list here: pick one, or add it above.",
    # text and code generation (shared)
    "gen.model": "Model",
    "gen.model_info": ("ours (shipped or saved by you) first, then Hugging Face models (downloaded on first "
                       "use); or type any Hub id of a causal LM, or a local folder"),
    "gen.no_model": "Pick a model first.",
    "gen.loading": "Loading the model…",
    "gen.downloading": "Downloading the model: {detail}",
    "gen.settings": "Sampling settings",
    "gen.max_new_tokens": "Max new tokens",
    "gen.temperature": "Temperature",
    "gen.temperature_info": "0 = greedy (always the likeliest token); higher = more surprising",
    "gen.top_k": "Top-k",
    "gen.top_k_info": "sample only from the k likeliest tokens; 0 = off",
    "gen.top_p": "Top-p",
    "gen.top_p_info": "sample from the smallest set holding this much probability; 1 = off",
    "gen.repetition_penalty": "Repetition penalty",
    "gen.repetition_penalty_info": "> 1 discourages repeating tokens; 1 = off",
    "gen.seed": "Seed",
    "gen.random_seed": "New random seed each time",
    "gen.random_seed_info": "untick to reuse the seed shown (same seed, same text)",
    "gen.generate": "Generate",
    "gen.stop": "Stop",
    "gen.regenerate": "Regenerate",
    "gen.clear": "Clear",
    "gen.examples": "Examples",
    "gen.stats": "{tokens} tokens · {rate:.1f} tokens/s · seed {seed}",
    "gen.ttft": "first token after {seconds:.2f} s",
    "gen.reason.max_new_tokens": "stopped at max new tokens",
    "gen.reason.eos": "the model ended the text",
    "gen.reason.stop_sequence": "stopped at a stop sequence",
    "gen.reason.function_end": "stopped at the end of the function",
    "gen.reason.stopped": "stopped by you",
    # text tab
    "text.intro": (
        "A GPT writes one token at a time: it reads everything so far, gives every possible next "
        "token a probability, and one is drawn (the sampling settings shape that draw). Our "
        "Shakespeare model works on single characters, so you can watch it spell. Models with a "
        "chat template (instruct models) open as a chat."
    ),
    "text.prompt": "Prompt",
    "text.prompt_placeholder": "Start the text; leave empty to let the model begin on its own",
    "text.output": "Continuation",
    "chat.title": "Chat",
    "chat.system": "System prompt",
    "chat.system_default": "You are a helpful assistant.",
    "chat.message": "Message",
    "chat.placeholder": "Ask something",
    "chat.send": "Send",
    "chat.empty": "Type a message first.",
    "chat.no_template": "This model has no chat template: pick it in completion mode.",
    # code tab
    "code.intro": (
        "Code completion is the same next-token game on source code: our Python model was trained "
        "on the Python standard library. Write the start of a function and press Complete. The "
        "result is checked with Python's parser (ast.parse) and never run."
    ),
    "code.editor": "Python",
    "code.complete": "Complete",
    "code.function_end": "Stop at end of function",
    "code.function_end_info": "stop when a new top-level line starts after the body",
    "code.instruction": "Complete this Python code. Reply with the code that follows it only.\n\n```python\n{code}\n```",
    # look inside
    "inside.heading": "Look inside",
    "inside.help": (
        "After a generation: pick a position in the text to see the model's 10 likeliest next "
        "tokens there, and how one attention head of one layer spreads each token's attention over "
        "the tokens before it (a row per token; the red line marks the position)."
    ),
    "inside.position": "Position",
    "inside.position_info": "token index; -1 = the last token",
    "inside.layer": "Layer",
    "inside.head": "Head",
    "inside.button": "Look inside",
    "inside.top10": "Next token: top 10",
    "inside.attention": "Attention",
    "inside.attends_to": "attends to (earlier tokens)",
    "inside.token": "token",
    "inside.title": "layer {layer}, head {head}",
    "inside.where": "Position {position} is the token {token!r}; the model has {layers} layers of {heads} heads.",
    # fine-tune
    "finetune.intro": (
        "Teach a small model your own data and watch it learn. Pick a model, give it text (for the "
        "GPTs) or images (for the GAN and the VAEs: upload files or a zip, draw on the sketchpad, or "
        "use a built-in set), press **Start**, and watch the loss curves and samples change. **Stop** "
        "keeps what was learned; **Resume** goes on from there. Save the result to find it in the "
        "gallery and the other tabs (only you see it). This server allows up to {max_steps} steps per "
        "job, uploads up to {max_mb} MB, and {jobs} job(s) training at once; others wait in a queue."
    ),
    "finetune.model": "Model to fine-tune",
    "finetune.model_info": "GAN, VAEs and small GPTs train fully; Hub causal LMs train LoRA adapters.",
    "finetune.source": "Train on",
    "finetune.source.text": "Text",
    "finetune.source.images": "Uploaded images",
    "finetune.source.sketches": "My drawings",
    "finetune.source.builtin": "Built-in set",
    "finetune.data_text": "Text",
    "finetune.data_images": "Images",
    "finetune.data_draw": "Draw",
    "finetune.data_builtin": "Built-in sets",
    "finetune.text": "Paste text",
    "finetune.text_placeholder": "A few paragraphs at least: poems, lyrics, your own code…",
    "finetune.text_file": "…or upload a .txt file",
    "finetune.images_help": (
        "Upload image files or a zip of them (up to {max_mb} MB each). Any size or colour works: each "
        "becomes a 28x28 grayscale digit like MNIST's. Name files `3_anything.png` or put them in a "
        "folder `3/` to tell the GAN which digit they show."
    ),
    "finetune.image_files": "Images or a zip",
    "finetune.images_preview": "What the model will see",
    "finetune.draw_help": "Draw a digit, pick which digit it is, press **Add**; a few dozen drawings are enough to see a GAN or VAE move toward your handwriting.",
    "finetune.sketch": "Draw here",
    "finetune.sketch_digit": "This drawing is the digit",
    "finetune.no_digit": "(not a digit / unknown)",
    "finetune.add_sketch": "Add to my dataset",
    "finetune.clear_sketches": "Clear my drawings",
    "finetune.sketches_none": "No drawings yet.",
    "finetune.sketches_count": "{count} drawing(s) in your dataset.",
    "finetune.builtin_help": "MNIST (handwritten digits) and Fashion-MNIST (clothes), read from the data folder (AIGC_DATA_DIR) or downloaded and checksum-verified when this machine is online.",
    "finetune.dataset": "Built-in set",
    "finetune.builtin_check": "Show a preview",
    "finetune.settings": "Settings",
    "finetune.steps": "Steps",
    "finetune.batch": "Batch size",
    "finetune.lr": "Learning rate",
    "finetune.lr_info": "2e-4 for a GAN, 5e-4 for a VAE, 3e-4 for a GPT, 1e-3 for LoRA",
    "finetune.optimizer": "Optimizer",
    "finetune.seed": "Seed",
    "finetune.gan_loss": "GAN loss",
    "finetune.loss.nsgan": "Non-saturating",
    "finetune.loss.hinge": "Hinge",
    "finetune.loss.wgan-gp": "Wasserstein + gradient penalty",
    "finetune.kl_weight": "VAE KL weight",
    "finetune.kl_info": "Lower: sharper reconstructions, a less regular latent space",
    "finetune.unlabelled_digit": "Digit for unlabelled images (GAN)",
    "finetune.unlabelled_info": "The GAN draws a digit on request: images without one are taught as this digit",
    "finetune.sample_every": "Show a sample every N steps",
    "finetune.block_size": "Context length (tokens, GPT)",
    "finetune.lora_rank": "LoRA rank",
    "finetune.start": "Start",
    "finetune.stop": "Stop",
    "finetune.resume": "Resume",
    "finetune.no_job": "No job yet: choose a model and data, then press Start.",
    "finetune.status_line": "**{status}**: {message} (job `{job}`)",
    "finetune.status.queued": "Queued",
    "finetune.status.starting": "Starting",
    "finetune.status.running": "Training",
    "finetune.status.stopping": "Stopping",
    "finetune.status.stopped": "Stopped",
    "finetune.status.done": "Finished",
    "finetune.status.failed": "Failed",
    "finetune.status.cancelled": "Cancelled",
    "finetune.progress_line": "Step {step} / {total} ({percent:.0f}%) · ETA {eta} · {sps:.2f} steps/s · {ips:,.0f} {unit}/s · device {device}",
    "finetune.tokens": "tokens",
    "finetune.samples": "samples",
    "finetune.losses_line": "Latest losses: {losses}",
    "finetune.queue_line": "Position in the queue: **{position}**",
    "finetune.error_line": "⚠️ {error}",
    "finetune.saved_line": "Saved as: {names}",
    "finetune.data_line": "Base model: {base} · data: {data}",
    "finetune.log_scale": "Log scale",
    "finetune.plot": "Loss curves",
    "finetune.preview": "Latest sample",
    "finetune.preview_text": "Latest text sample",
    "finetune.preview_history": "Samples while training",
    "finetune.step": "step {step}",
    "finetune.sample_at": "[step {step}]",
    "finetune.keep": "Keep the result",
    "finetune.name": "Name for the new model",
    "finetune.save": "Save as a new model",
    "finetune.download": "Download as zip",
    "finetune.zip": "Model zip (Hugging Face layout)",
    "finetune.saved": "Saved as **{name}**: it is in the gallery (press Refresh there) and in the other tabs' model lists, for you only.",
    "finetune.push": "Push to the Hugging Face Hub",
    "finetune.repo": "Repository id",
    "finetune.token": "Your access token (write)",
    "finetune.private": "Private repository",
    "finetune.push_button": "Push",
    "finetune.pushed": "Pushed: {url}",
    "finetune.save_first": "Save the model first, then push it.",
    "finetune.pick_model": "Pick a model from the list.",
    "finetune.pick_source": "Choose what to train on: text, uploaded images, your drawings or a built-in set.",
    "finetune.missing_number": "{name} is empty: type a number.",
    "finetune.whole_number": "{name} must be a whole number (got {value}).",
    # share links (ui/share.py, ui/urlstate.py)
    "share.button": "Share",
    "share.placeholder": "Press Share: a link that makes this exact result again",
    "share.nothing_yet": "Make a result first: the link shares its seed and settings.",
    "share.card_prompt": "“{prompt}”: open the link to make it again.",
    "url.ignored": "Some settings in this link were ignored:",
    "url.reason.unknown": "{name}: not a setting of this tab",
    "url.reason.too_long": "{name}: too long",
    "url.reason.too_many": "too many settings in one link; the rest were ignored",
    "url.reason.bad_text": "{name}: contains characters that are not allowed",
    "url.reason.not_bool": "{name}: use 1 or 0",
    "url.reason.not_choice": "{name}: not one of {limits}",
    "url.reason.unknown_model": "{name}: this model is not offered here",
    "url.reason.not_digits": "{name}: digits 0-9, separated by commas",
    "url.reason.not_int": "{name}: not a whole number",
    "url.reason.not_number": "{name}: not a number",
    "url.reason.out_of_range": "{name}: outside {limits}",
    "url.reason.not_multiple": "{name}: must be a multiple of 8",
    # catalog tasks (gallery filter and cards)
    "task.image-generation": "Image generation",
    "task.text-generation": "Text generation",
    "task.code-generation": "Code generation",
    "task.text-to-image": "Text to image",
    "task.classification": "Classification",
}
