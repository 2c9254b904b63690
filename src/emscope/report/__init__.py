"""emscope.report"""
