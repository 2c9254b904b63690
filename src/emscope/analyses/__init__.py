"""emscope.analyses"""
