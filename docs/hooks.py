"""MkDocs hook: the benchmark's plots (`bench/*.png`, beside the results they draw) and its history
(`BENCHMARKS-history.md`) join the site, so that BENCHMARKS.md, included in benchmarks.md, shows and links them at
the paths it names."""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def on_files(files, config):
    for plot in sorted((ROOT / "bench").glob("*.png")):
        files.append(File(f"bench/{plot.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    files.append(File("BENCHMARKS-history.md", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
