"""The day's report: Markdown and self-contained HTML pages with SVG charts, every number from the warehouse."""
