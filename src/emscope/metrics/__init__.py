"""emscope.metrics"""
