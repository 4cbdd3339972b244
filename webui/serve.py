"""Run the app's server with the library's heavy imports (torch, diffusers) and the default model loaded before it
listens, so that a newcomer's first page does not wait seconds for them (Streamlit runs each page script in the
server's own process, where they are then already imported).

  python -m webui.serve app.py [streamlit run options]      # what scripts/app runs
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from explorer.models import DEFAULT_MODEL, load_model

    load_model(DEFAULT_MODEL)  # imports torch, diffusers and the model kinds; loads the first page's model
    import plotly.graph_objects  # noqa: F401  (the pages' charts)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", *args]
    return cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
