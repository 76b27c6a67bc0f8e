"""TFLite metadata inside every ``.tflite`` a run ships: what the file is, how to feed it, its labels."""
