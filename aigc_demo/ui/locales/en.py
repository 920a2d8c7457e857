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
}
