"""PNG encoding shared by both ExampleGens (TensorFlow's codec).

TensorFlow's encoder is the one the Trainer's decoder is tested against, and
it writes 16-bit grayscale PNGs, which DICOM needs. TensorFlow is imported
on the first encode, not with this module: a worker converting a folder of
JPEG and PNG files stored unchanged never pays its ~3 CPU-second import.
"""

import numpy as np

# zlib level 1: lossless either way. Measured on a 2048x1664 12-bit mammogram
# (benchmarks/dicom.py --decoders): level 6 costs 2.2x the CPU of level 1 for
# the same size at the default 16-bit windowed rendering, and 8-10x for
# 7-14% smaller files with 8-bit or unwindowed output.
PNG_COMPRESSION = 1


def encode_png(pixels: np.ndarray) -> bytes:
  """PNG bytes of a HxW or HxWxC uint8/uint16 array (C in 1, 3, 4)."""
  if pixels.dtype not in (np.uint8, np.uint16):
    raise ValueError(f'PNG needs uint8 or uint16 pixels, got {pixels.dtype}.')
  if pixels.ndim == 2:
    pixels = pixels[..., np.newaxis]
  if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
    raise ValueError(f'PNG needs HxW or HxWxC pixels, got {pixels.shape}.')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.encode_png(pixels, compression=PNG_COMPRESSION).numpy()
