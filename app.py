"""AIGC Gallery: `python app.py [--host H] [--port P] [--share] [--device auto|cuda|mps|cpu]`.

Hugging Face Spaces runs this file. Environment hygiene (analytics off, Hub offline when it
cannot be reached) is applied before gradio is imported.

The app's imports stay under `__main__`: every job and model-server process re-imports this
file (as `__mp_main__`, multiprocessing's forkserver does so), and gradio with the whole UI
imported there cost each of them about 115 MB of its own memory.
"""

from aigc_demo.environment import configure_environment

configure_environment()

if __name__ == "__main__":
    from aigc_demo.services.job_process import start_fork_server_here

    start_fork_server_here()  # first: before gradio and any thread (see its docstring)
    from aigc_demo.settings import parse_serve_args
    from aigc_demo.ui.launch import serve

    serve(parse_serve_args())
