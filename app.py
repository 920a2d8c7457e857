"""AIGC Gallery: `python app.py [--host H] [--port P] [--share] [--device auto|cuda|mps|cpu]`.

Hugging Face Spaces runs this file. Environment hygiene (analytics off, Hub offline when it
cannot be reached) is applied before gradio is imported.
"""

from aigc_demo.environment import configure_environment

configure_environment()

from aigc_demo.settings import parse_serve_args  # noqa: E402
from aigc_demo.ui.launch import serve  # noqa: E402

if __name__ == "__main__":
    serve(parse_serve_args())
