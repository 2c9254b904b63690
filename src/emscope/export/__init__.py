"""Exports of a run to other tools' formats (Inspect AI logs)."""
