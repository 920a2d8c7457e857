"""AIGC Gallery: generative models side by side in one Gradio page."""

__version__ = "0.1.0"
