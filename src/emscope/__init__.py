"""emscope: measure how narrow fine-tuning breaks a language model's broad alignment.

The package layout follows the pipeline: ``data`` -> ``train`` -> ``sample`` -> ``judge`` ->
``metrics`` -> ``analyses`` -> ``study`` (runner) -> ``report``.
"""

__version__ = "0.1.0"
