"""MkDocs hook: the benchmark's plots (`bench/*.png`, beside the results they draw) and its history
(`BENCHMARKS-history.md`) join the site, so that BENCHMARKS.md, included in benchmarks.md, shows and links them at
the paths it names. Run as a script (`make docs` does), it writes the command line's reference, docs/cli.md, from
each command's `--help`."""

import contextlib
import io
import os
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 100  # the help's line width, the same wherever it is written
CLI_INTRO = """# Command line

`hpsearch`, installed with hpsearch, reads any study any backend recorded (its `output_dir`, or a storage URL where
the command says so), and runs the demo. Each command's `--help`, as it prints it (this page is written from them by
`make docs`):
"""


def on_files(files, config):
    for plot in sorted((ROOT / "bench").glob("*.png")):
        files.append(File(f"bench/{plot.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    files.append(File("BENCHMARKS-history.md", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def cli_reference() -> str:
    """docs/cli.md: `hpsearch --help`, then each command's, in the order `hpsearch --help` lists them."""
    import click

    from hpsearch.tools.cli import main

    root = click.Context(main, info_name="hpsearch", terminal_width=WIDTH, max_content_width=WIDTH)
    sections = [CLI_INTRO, _section("hpsearch", main.get_help(root))]
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        context = click.Context(command, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH)
        sections.append(_section(f"hpsearch {name}", _demo_help() if name == "demo" else command.get_help(context)))
    return "\n".join(sections)


def _demo_help() -> str:
    """`hpsearch demo --help`: the demo's own options (argparse's), which `hpsearch demo` passes on."""
    from hpsearch.tools import demo

    out, columns = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            demo.parse_args(["--help"])
    finally:
        os.environ.pop("COLUMNS") if columns is None else os.environ.update(COLUMNS=columns)
    return out.getvalue()


def _section(title: str, help_text: str) -> str:
    return f"## `{title}`\n\n```text\n{help_text.rstrip()}\n```\n"


if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(cli_reference())
