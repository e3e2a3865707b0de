"""A search's report: optuna's plots of the study, as plotly figures in one interactive HTML page that
needs no network and as PNG files under a Markdown page, each with the leaderboard."""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.study import store
from hpsearch.study.leaderboard import html_table, markdown_table

PAGE = "report.md"
INTERACTIVE_PAGE = "report.html"


@dataclass
class Plot:
    """One of optuna's plots of the study: the function of that name in `optuna.visualization` (plotly)
    and in `optuna.visualization.matplotlib`, with its arguments."""

    name: str  # its file's and its section's name
    function: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").capitalize()

    def draw(self, library: Any, study: Any) -> Any:
        """The figure; raises `NotDrawn` where optuna would draw an empty one (it only logs why)."""
        said = _Said()
        logger = logging.getLogger("optuna.visualization")
        level, propagate = logger.level, logger.propagate
        logger.addHandler(said)
        logger.setLevel(logging.WARNING)  # heard whatever optuna's verbosity; said on the page instead
        logger.propagate = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
                figure = getattr(library, self.function)(study, **self.options)
        finally:
            logger.removeHandler(said)
            logger.setLevel(level)
            logger.propagate = propagate
        if said.messages:
            raise NotDrawn(" ".join(said.messages))
        return figure


class NotDrawn(Exception):
    """A plot the study cannot have yet (no completed trial, no intermediate values)."""


class _Said(logging.Handler):
    """The warnings optuna's plot functions log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def plots(study: Any) -> list[Plot]:
    """The plots that explain a study; with several objectives, the Pareto front and each objective's own."""
    directions = study.directions
    if len(directions) == 1:
        return [
            Plot("optimization_history", "plot_optimization_history"),
            Plot("intermediate_values", "plot_intermediate_values"),
            Plot("parameter_importances", "plot_param_importances"),
            Plot("parallel_coordinates", "plot_parallel_coordinate"),
            Plot("slices", "plot_slice"),
        ]
    per_objective = []
    for i in range(len(directions)):
        target = {"target": _objective(i), "target_name": f"objective {i}"}
        per_objective += [
            Plot(f"optimization_history_{i}", "plot_optimization_history", target),
            Plot(f"slices_{i}", "plot_slice", target),
        ]
    front = [Plot("pareto_front", "plot_pareto_front"), Plot("parameter_importances", "plot_param_importances")]
    return front + per_objective


def _objective(i: int) -> Callable[[Any], float]:
    return lambda trial: trial.values[i]


def _header(study: Any, records: list[Any]) -> tuple[str, str]:
    directions = ", ".join(store.study_directions(study))
    return f"hpsearch report: study {study.study_name}", f"{len(records)} trials, direction {directions}."


def write_report(study: Any, out_dir: str | Path) -> list[Path]:
    """Write the report of `study` in `out_dir`: `report.html`, the plots as interactive plotly figures
    (plotly.js inline: opens offline), and the same plots as PNG files under a Markdown page, `report.md`.

    A plot the study cannot have (too few completed trials, no intermediate values) is named on
    the pages with the reason instead. Returns every file written: the HTML page, the Markdown page, the PNGs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = store.records(study)
    directions = store.study_directions(study)
    chosen = plots(study)
    title, summary = _header(study, records)
    sections = [f"# {title}", "", f"{summary} Interactive plots: [{INTERACTIVE_PAGE}]({INTERACTIVE_PAGE}).", ""]
    sections += ["## Leaderboard", "", markdown_table(records, directions), ""]
    pngs = []
    for plot, drawn in zip(chosen, _draw_png(study, chosen, out)):
        body = f"![{plot.title}]({plot.name}.png)" if drawn is None else f"Not drawn: {drawn}"
        sections += [f"## {plot.title}", "", body, ""]
        pngs += [out / f"{plot.name}.png"] if drawn is None else []
    (out / PAGE).write_text("\n".join(sections))
    _write_interactive(study, out / INTERACTIVE_PAGE, records, directions, chosen)
    return [out / INTERACTIVE_PAGE, out / PAGE, *pngs]


def _draw_png(study: Any, chosen: list[Plot], out: Path) -> list[str | None]:
    """Save each plot as `<name>.png`; per plot, None or why it could not be drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as library

    reasons: list[str | None] = []
    for plot in chosen:
        try:
            axes = plot.draw(library, study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            figure.savefig(out / f"{plot.name}.png", dpi=110)
            reasons.append(None)
        except Exception as e:  # a plot the study cannot have; the page says why
            reasons.append(str(e))
        finally:
            plt.close("all")
    return reasons


def _write_interactive(study: Any, path: Path, records: list[Any], directions: list[str], chosen: list[Plot]) -> None:
    """One HTML file: the leaderboard and each plot as a plotly figure, with one inline copy of plotly.js."""
    import plotly.io
    import plotly.offline
    from optuna import visualization as library

    title, summary = _header(study, records)
    parts = []
    for plot in chosen:
        try:
            figure = plot.draw(library, study)
            body = plotly.io.to_html(figure, full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        except Exception as e:  # a plot the study cannot have; the page says why
            body = f"<p>Not drawn: {html.escape(str(e))}</p>"
        parts.append(f"<h2>{html.escape(plot.title)}</h2>\n{body}")
    plots_html = "\n".join(parts)
    path.write_text(
        f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>
<h2>Leaderboard</h2>
{html_table(records, directions)}
{plots_html}
</body></html>
"""
    )
