"""``python -m explorer app`` (or ``mri-explorer app``): start the Streamlit app from wherever the package is, with its
own Streamlit settings (read from the app's ``.streamlit/config.toml`` and passed as flags, since Streamlit only looks
in the working directory), so an installed package serves the app from any directory."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib

from explorer import resources

NAME = "app"


def add_parser(sub) -> None:
    """Register the ``app`` sub-command."""
    a = sub.add_parser("app", help="start the Streamlit app (the installed one when run outside a checkout)")
    a.add_argument("--data-dir", default=None, help="folder the app may browse (default: EXPLORER_DATA_DIR, else the "
                   "directory it is started in)")
    a.add_argument("--port", type=int, default=None, help="server port (Streamlit's default: 8501)")
    a.add_argument("--address", default=None, help="server address (e.g. 127.0.0.1)")


def command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line for ``args``."""
    flags = []
    config = resources.streamlit_config()
    if config.is_file():
        for section, values in tomllib.loads(config.read_text()).items():
            for key, value in values.items():
                text = str(value).lower() if isinstance(value, bool) else str(value)
                flags.append(f"--{section}.{key}={text}")
    if args.port is not None:
        flags.append(f"--server.port={args.port}")
    if args.address is not None:
        flags.append(f"--server.address={args.address}")
    cmd = [sys.executable, "-m", "streamlit", "run", str(resources.app_script()), *flags]
    return cmd + (["--", "--data-dir", args.data_dir] if args.data_dir else [])


def run(args: argparse.Namespace) -> int:
    """Run the ``app`` command: this process becomes the Streamlit server (so stopping it stops the server)."""
    cmd = command(args)
    os.execv(cmd[0], cmd)
    return 0  # not reached
