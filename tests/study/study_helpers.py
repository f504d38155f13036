"""Reading the quick study's Markdown report back (tests/study is on sys.path)."""

from __future__ import annotations


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def cells(section: str, first_cells: tuple[str, ...]) -> list[str]:
    """The cells of the table row that begins with ``first_cells``."""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(cells[: len(first_cells)]) == first_cells:
            return cells
    raise AssertionError(f"no table row starting {first_cells} in:\n{section}")
