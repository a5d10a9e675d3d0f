"""The rectifier core: blur detection, tiled inference, ONNX runtime, rectify.

Code here takes a loaded model; where a model comes from is decided in gir.tracking.runs.resolve."""
