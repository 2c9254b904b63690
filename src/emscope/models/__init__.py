"""Model references and local model loading."""

from emscope.models.refs import ModelRef, parse_model_ref

__all__ = ["ModelRef", "parse_model_ref"]
