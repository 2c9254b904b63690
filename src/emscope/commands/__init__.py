"""Command-line sub-apps, one module per command group; ``emscope.cli`` registers them."""
