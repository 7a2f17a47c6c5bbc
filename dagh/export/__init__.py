"""Export (torch -> ONNX, FP16 ONNX, parity reports, TensorRT engines)."""
