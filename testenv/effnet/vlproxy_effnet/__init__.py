"""Local EfficientNet-Lite0 + RapidOCR model server for vlproxy's tests (no torch)."""
