"""Datasets: chat examples, domain registry, recipes and condition builders."""
