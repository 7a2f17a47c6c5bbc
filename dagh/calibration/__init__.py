"""INT8 calibration: calibration data readers, Q/DQ quantization, method selection."""
