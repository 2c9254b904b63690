"""Judges: score answers for alignment and coherence, 0-100."""
