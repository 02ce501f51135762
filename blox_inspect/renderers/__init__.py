"""Renderers: each turns a finished Report into one output format; none traces a model."""
