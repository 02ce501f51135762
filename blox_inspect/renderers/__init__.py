"""Renderers: turn finished reports into text, tables, markdown or files. They never trace a model."""
