"""Report sections an analysis stores on disk: prose, table CSVs and figure PNGs, listed in
``run_dir/analyses/sections.json`` so the report can be rewritten from the run alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from emscope.report.render import ReportFigure, ReportSection

ANALYSES_DIR = "analyses"
SECTIONS_FILE = "sections.json"


class SectionSpec(BaseModel):
    """A stored section: ``tables`` as (title, CSV), ``figures`` as (name, caption, PNG); the
    paths are relative to ``run_dir/analyses``."""

    title: str
    paragraph: str
    tables: list[tuple[str, str]]
    figures: list[tuple[str, str, str]]


class SectionFiles:
    """Tables and figures of one report section, saved under ``out`` as they are added."""

    def __init__(self, root: Path, out: Path, prefix: str = "") -> None:
        # ``prefix`` keeps figure names unique when several families each have a section.
        self.root, self.out, self.prefix = root, out, f"{prefix}_" if prefix else ""
        self.tables: list[tuple[str, str]] = []
        self.figures: list[tuple[str, str, str]] = []
        out.mkdir(parents=True, exist_ok=True)

    def table(self, title: str, table: pd.DataFrame, file_name: str) -> None:
        table.to_csv(self.out / file_name, index=False)
        self.tables.append((title, (self.out / file_name).relative_to(self.root).as_posix()))

    def figure(self, file_name: str, caption: str, png: bytes) -> None:
        file_name = self.prefix + file_name
        (self.out / file_name).write_bytes(png)
        path = (self.out / file_name).relative_to(self.root).as_posix()
        self.figures.append((file_name, caption, path))

    def spec(self, title: str, paragraph: str) -> SectionSpec:
        return SectionSpec(
            title=title, paragraph=paragraph, tables=self.tables, figures=self.figures
        )


def write_sections(run_dir: Path, specs: list[SectionSpec]) -> None:
    root = run_dir / ANALYSES_DIR
    root.mkdir(parents=True, exist_ok=True)
    data = [spec.model_dump(mode="json") for spec in specs]
    (root / SECTIONS_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def analysis_sections(run_dir: Path) -> list[ReportSection]:
    """The report sections the run's analyses stored (none if none)."""
    root = run_dir / ANALYSES_DIR
    path = root / SECTIONS_FILE
    if not path.is_file():
        return []
    sections = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        spec = SectionSpec.model_validate(raw)
        tables = {
            name: pd.read_csv(root / csv, dtype=str, keep_default_na=False)
            for name, csv in spec.tables
        }
        figures = [
            ReportFigure(name, caption, (root / png).read_bytes())
            for name, caption, png in spec.figures
        ]
        sections.append(ReportSection(spec.title, spec.paragraph, figures, tables))
    return sections
