"""emscope.study"""
