"""The reference models again, trained with Keras and converted by
TensorFlow's own TFLite converter (full int8 quantization from a
representative dataset): the optional ``edgefw[tf]`` path.

    pip install 'edgefw[tf]'
    python -m edgefw.build.models_tf OUT_DIR

writes ``OUT_DIR/tf_dense.tflite`` (the 6 window features -> Dense 12
RELU -> Dense 1), ``OUT_DIR/tf_conv.tflite`` (raw windows -> Conv2D 1x9,
4 filters, RELU -> global average pool -> Dense 1 -> sigmoid), both with
int8 input and output, and ``OUT_DIR/tf_float_io.tflite`` (features ->
Dense 8 RELU -> Dense 2 -> softmax, float input and output as the
converter leaves them by default), on the data edgefw/build/models.py
generates. What the converter emits (its op
versions, per-channel scales, MEAN for the pool, LOGISTIC at the end) is
what the micro interpreter has to read; tests/data/tf/ keeps one
conversion of each so the parity tests run them without TensorFlow.
"""

import sys
from pathlib import Path

import numpy as np

from edgefw.build.models import WINDOW, raw_windows, windows


def _convert(tf, model, calib, int8_io=True):
    def representative():
        for row in calib[:300]:
            yield [row[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def build(out_dir, seed=0):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    x, y = windows(2000, rng)
    x = x.astype(np.float32)
    dense = tf.keras.Sequential([tf.keras.Input((x.shape[1],)), tf.keras.layers.Dense(12, activation="relu"), tf.keras.layers.Dense(1)])
    dense.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    dense.fit(x, y, epochs=30, batch_size=64, verbose=0)
    acc_dense = dense.evaluate(x, y, verbose=0)[1]
    (out / "tf_dense.tflite").write_bytes(_convert(tf, dense, x))

    r, y2 = raw_windows(2000, rng)
    r = r.astype(np.float32).reshape(-1, 1, WINDOW, 1)
    conv = tf.keras.Sequential(
        [
            tf.keras.Input((1, WINDOW, 1)),
            tf.keras.layers.Conv2D(4, (1, 9), activation="relu"),
            tf.keras.layers.GlobalAveragePooling2D(),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    conv.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    conv.fit(r, y2, epochs=20, batch_size=64, verbose=0)
    acc_conv = conv.evaluate(r, y2, verbose=0)[1]
    (out / "tf_conv.tflite").write_bytes(_convert(tf, conv, r))

    # the converter's default: float in and out, QUANTIZE and DEQUANTIZE
    # at the edges of an int8 body
    probs = tf.keras.Sequential(
        [tf.keras.Input((x.shape[1],)), tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(2), tf.keras.layers.Softmax()]
    )
    probs.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    probs.fit(x, y, epochs=20, batch_size=64, verbose=0)
    acc_probs = probs.evaluate(x, y, verbose=0)[1]
    (out / "tf_float_io.tflite").write_bytes(_convert(tf, probs, x, int8_io=False))
    return {
        "tf_dense_accuracy": round(float(acc_dense), 3),
        "tf_conv_accuracy": round(float(acc_conv), 3),
        "tf_float_io_accuracy": round(float(acc_probs), 3),
        "tensorflow": tf.__version__,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m edgefw.build.models_tf OUT_DIR", file=sys.stderr)
        return 2
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("edgefw.build.models_tf: TensorFlow is not installed: pip install 'edgefw[tf]'", file=sys.stderr)
        return 2
    print(build(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
