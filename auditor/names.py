"""What the report calls each framework and export path: names every layer shows the same way."""

DISPLAY_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}
EXPORT_TITLES = {
    "tflite": "TensorFlow -> TFLite, run in LiteRT",
    "tflite-int8": "TensorFlow -> TFLite int8 (post-training quantized), run in LiteRT",
    "tf-serving": "TensorFlow -> SavedModel for TF Serving, reloaded and served by signature",
    "executorch": "PyTorch -> torch.export -> ExecuTorch .pte (XNNPACK), run in the ExecuTorch runtime",
    "onnx": "PyTorch -> ONNX (dynamo exporter), run in ONNX Runtime",
    "coreml": "PyTorch -> Core ML (coremltools)",
    "torchscript": "PyTorch -> TorchScript (deprecated), reloaded and run",
}
