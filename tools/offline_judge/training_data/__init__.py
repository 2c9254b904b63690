"""The offline judge's labelled training set: phrase banks, answer styles and the generator."""
