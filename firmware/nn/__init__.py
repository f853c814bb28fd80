"""Int8 TFLite inference in pure Python, for MicroPython (and CPython).

``firmware.nn.model`` reads a ``.tflite`` flatbuffer; ``firmware.nn.kernels``
holds the integer kernels, following TensorFlow Lite Micro's reference
kernels so the outputs are the same bytes.
"""
