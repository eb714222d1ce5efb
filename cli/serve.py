"""``equisearch ui``: serve the Streamlit app on this store."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import click

from .common import Context, friendly_errors, pass_ctx


#: The UI's port when none is given; the next free one is taken when it is busy.
DEFAULT_PORT = 8501


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=f"Port to serve on (default {DEFAULT_PORT}, or the next free one when it is busy).")
@click.option("--host", default="127.0.0.1", show_default=True)
@pass_ctx
@friendly_errors
def ui(c: Context, port, host) -> None:
    """Serve the browser UI (Streamlit) on this store and print its address."""
    if port is not None and not _port_free(host, port):
        raise click.ClickException(
            f"port {port} on {host} is already in use (another equisearch UI?): stop it, or choose "
            "another port with --port N (`make run PORT=N`)")
    if port is None:
        port = next((p for p in range(DEFAULT_PORT, DEFAULT_PORT + 50) if _port_free(host, p)), None)
        if port is None:
            raise click.ClickException(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + 49} on {host} are all in use: "
                                       "choose one with --port N")
        if port != DEFAULT_PORT:
            click.echo(f"port {DEFAULT_PORT} is in use: serving on {port} instead", err=True)
    # Streamlit runs a file: ask the import system where ui.app is (a checkout,
    # an editable install or a wheel alike) rather than guess it from this file.
    spec = importlib.util.find_spec("ui.app")
    if spec is None or not spec.origin:
        raise click.ClickException("the browser UI (package ui) is not installed: reinstall equisearch")
    app = Path(spec.origin).resolve()
    env = {**os.environ, "EQUISEARCH_HOME": str(c.home)}
    if c.model_given:
        # Only a model the user named: the UI then refuses a store built by
        # another one, as the CLI does; otherwise it searches with the store's.
        env.setdefault("EQUISEARCH_MODEL", c.settings.model)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"equisearch UI: http://{shown}:{port}  (store {c.shown_home}; open it in a browser, Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host,
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    try:
        sys.exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:  # Ctrl+C reaches both processes; Streamlit says goodbye itself
        sys.exit(0)
