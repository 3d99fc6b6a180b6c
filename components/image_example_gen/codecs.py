"""PNG encoding shared by both ExampleGens (TensorFlow's codec).

TensorFlow's encoder is the one the Trainer's decoder is tested against, and
it writes 16-bit grayscale PNGs, which DICOM needs.
"""

import numpy as np
import tensorflow as tf

# zlib's default level: lossless either way; higher levels cost much more CPU
# for a few percent of bytes.
PNG_COMPRESSION = 6


def encode_png(pixels: np.ndarray) -> bytes:
  """PNG bytes of a HxW or HxWxC uint8/uint16 array (C in 1, 3, 4)."""
  if pixels.dtype not in (np.uint8, np.uint16):
    raise ValueError(f'PNG needs uint8 or uint16 pixels, got {pixels.dtype}.')
  if pixels.ndim == 2:
    pixels = pixels[..., np.newaxis]
  if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
    raise ValueError(f'PNG needs HxW or HxWxC pixels, got {pixels.shape}.')
  return tf.io.encode_png(pixels, compression=PNG_COMPRESSION).numpy()
