"""The TensorFlow paths: tflite (float), tflite-int8 (full integer quantization) and
tf-serving (a SavedModel with a serving signature). Runs only inside a child process.

One TensorFlow import serves all three. The .tflite models run in LiteRT (the
ai-edge-litert package), where TensorFlow Lite's interpreter lives now; without it they
fall back to tf.lite.Interpreter, which still runs them but is deprecated.
"""

from __future__ import annotations

import shutil
import tempfile

from auditor.probes.exports.common import (DISTRIBUTIONS, FLOAT_TOLERANCE, INPUT_NHWC, NotInstalled, PathCheck,
                                           distribution_version, import_modules, import_or_missing,
                                           noticed_warnings, requested, tiny_input_nhwc, tiny_weights, version_of)

PATHS = ("tflite", "tflite-int8", "tf-serving")
# int8 has 256 levels per tensor: the input, the convolution's output and the model's
# output are each rounded to about 0.4% of their range, and the errors add up through the
# layers (about 1% here). A quantizer with a wrong scale or zero point is off by tens of
# percent, so 5% separates the two.
INT8_TOLERANCE = 0.05
# Said when TensorFlow does not warn about its interpreter itself.
DEPRECATED_INTERPRETER = "tf.lite.Interpreter is deprecated in favour of the LiteRT interpreter (ai-edge-litert)"
SIGNATURE = "serving_default"  # the signature TF Serving calls when a request names none


def collect() -> dict:
    wanted = requested(PATHS)
    if not wanted:
        return {"paths": {}}
    imported = import_modules("tensorflow")
    return {"paths": {name: CHECKS[name](imported) for name in wanted}}


def check_tflite(imported) -> dict:
    return _check_tflite("tflite", imported, quantized=False)


def check_tflite_int8(imported) -> dict:
    return _check_tflite("tflite-int8", imported, quantized=True)


def _check_tflite(name: str, imported, quantized: bool) -> dict:
    check = PathCheck(name, source="tensorflow", tolerance=INT8_TOLERANCE if quantized else FLOAT_TOLERANCE)
    with check.running():
        (tf,) = check.shared_import(imported)
        model, x = _tiny_model(tf), tiny_input_nhwc()
        reference = model.serve(tf.constant(x)).numpy()
        with check.stage("convert"):
            converter = tf.lite.TFLiteConverter.from_concrete_functions([model.serve.get_concrete_function()], model)
            if quantized:
                _quantize_to_int8(tf, converter)
            flatbuffer = converter.convert()
        check.path.details["model_bytes"] = str(len(flatbuffer))
        with check.stage("load"):
            interpreter = _load_interpreter(tf, check, flatbuffer)
            interpreter.allocate_tensors()
        with check.stage("run"):
            output = _invoke(interpreter, x, check.path.details)
        check.compare(output, reference)
    return check.result()


def _quantize_to_int8(tf, converter) -> None:
    """Full integer quantization, int8 in and out: what microcontrollers and NPUs need. The
    ranges come from a seeded representative dataset drawn like the test input."""
    import numpy as np

    rng = np.random.default_rng(7)
    samples = [rng.standard_normal(INPUT_NHWC, dtype=np.float32) for _ in range(16)]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8


def _load_interpreter(tf, check: PathCheck, flatbuffer: bytes):
    """LiteRT's interpreter, or TensorFlow's deprecated one when LiteRT cannot be imported."""
    litert, missing = import_or_missing("ai_edge_litert.interpreter")
    if litert is not None:
        check.use_tool("ai_edge_litert")
        check.path.runtime = f"ai_edge_litert {version_of('ai_edge_litert')}"
        return litert.Interpreter(model_content=flatbuffer)
    if not hasattr(tf.lite, "Interpreter"):  # removed from TensorFlow: LiteRT is the only runtime left
        check.not_installed([missing])
    check.path.runtime = f"tf.lite.Interpreter (tensorflow {version_of('tensorflow')})"
    check.path.details["ai_edge_litert"] = ("not installed" if missing == DISTRIBUTIONS["ai_edge_litert"]
                                            else f"not importable: needs {missing}, which is not installed")
    with noticed_warnings() as noticed:
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    check.path.deprecated = next((line for line in noticed if "Interpreter is deprecated" in line),
                                 DEPRECATED_INTERPRETER)
    return interpreter


def _invoke(interpreter, x, details: dict):
    """Run once. An int8 model takes and gives integers: the input is quantized and the
    output dequantized with each tensor's own (scale, zero point)."""
    import numpy as np

    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    details["input_dtype"], details["output_dtype"] = np.dtype(source["dtype"]).name, np.dtype(target["dtype"]).name
    if source["dtype"] == np.int8:
        scale, zero_point = source["quantization"]
        x = np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    output = interpreter.get_tensor(target["index"])
    if target["dtype"] == np.int8:
        scale, zero_point = target["quantization"]
        output = (output.astype(np.float32) - zero_point) * scale
    return output


def check_tf_serving(imported) -> dict:
    """Save a SavedModel with a serving signature, load it back and call the signature, as
    TF Serving would. The model server itself is a detail: a check elsewhere reports it."""
    check = PathCheck("tf-serving", source="tensorflow")
    with check.running():
        (tf,) = check.shared_import(imported)
        check.path.runtime = f"tf.saved_model (tensorflow {version_of('tensorflow')})"
        check.path.details.update(_serving_tools())
        model, x = _tiny_model(tf), tiny_input_nhwc()
        reference = model.serve(tf.constant(x)).numpy()
        with tempfile.TemporaryDirectory() as directory:
            with check.stage("save"):
                tf.saved_model.save(model, directory, signatures={SIGNATURE: model.serve})
            with check.stage("load"):
                signature = tf.saved_model.load(directory).signatures.get(SIGNATURE)
                if signature is None:
                    raise LookupError(f"the SavedModel has no {SIGNATURE} signature")
            inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
            check.path.details["signature_inputs"] = _describe(inputs)
            check.path.details["signature_outputs"] = _describe(outputs)
            with check.stage("run"):
                output = next(iter(signature(**{name: tf.constant(x) for name in inputs}).values())).numpy()
        check.compare(output, reference)
    return check.result()


def _serving_tools() -> dict:
    try:
        api = distribution_version("tensorflow-serving-api")
    except NotInstalled:
        api = "not installed"
    return {"tensorflow_model_server": shutil.which("tensorflow_model_server") or "not on PATH",
            "tensorflow-serving-api": api}


def _describe(specs: dict) -> str:
    """'x: float32 [2, 8, 8, 3]' for each tensor of a signature."""
    return ", ".join(f"{name}: {spec.dtype.name} {spec.shape.as_list()}" for name, spec in sorted(specs.items()))


def _tiny_model(tf):
    """The shared tiny model as a tf.Module whose `serve` function has a fixed input
    signature, which both the TFLite converter and a serving signature need."""
    model = tf.Module()
    for name, value in tiny_weights().items():
        setattr(model, name, tf.Variable(value, name=name))

    def forward(x):
        hidden = tf.nn.relu(tf.nn.conv2d(x, model.conv_kernel, strides=1, padding="SAME") + model.conv_bias)
        return tf.matmul(tf.reduce_mean(hidden, axis=[1, 2]), model.dense_kernel) + model.dense_bias

    # autograph=False: there is no Python control flow to convert.
    model.serve = tf.function(forward, input_signature=[tf.TensorSpec(INPUT_NHWC, tf.float32, name="x")],
                              autograph=False)
    return model


CHECKS = {"tflite": check_tflite, "tflite-int8": check_tflite_int8, "tf-serving": check_tf_serving}
