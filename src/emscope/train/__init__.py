"""emscope.train"""
