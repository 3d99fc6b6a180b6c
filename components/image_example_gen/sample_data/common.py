"""What every sample generator shares: deterministic UIDs, digit pixels, folders.

Pixels are scikit-learn's handwritten digits (`load_digits`, shipped with the
package), upscaled to `size` px with a small seeded jitter (scale, shift,
noise), so any number of images can be made and the digit class is the label.
The same arguments give the same bytes on every run: UIDs, ids and fake PHI
derive from the seed, nothing from the clock.
"""

import functools
import os
import pathlib
from typing import Tuple, Union

import numpy as np
from PIL import Image


PathLike = Union[str, os.PathLike]

_UID_NAMESPACE = 'image_example_gen.sample_data'


def uid(seed: int, *parts: str) -> str:
  """A deterministic UID under pydicom's root, from the seed and `parts`."""
  from pydicom import uid as uids  # pylint: disable=g-import-not-at-top
  return uids.generate_uid(
      entropy_srcs=[_UID_NAMESPACE, str(seed), *parts])


@functools.lru_cache(maxsize=None)
def digits() -> Tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits: (1797x8x8 float images in 0..16, labels)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  data = datasets.load_digits()
  return data.images.astype(np.float32), data.target.astype(np.int64)


@functools.lru_cache(maxsize=None)
def sample_order(seed: int) -> np.ndarray:
  """A seeded permutation of the digits, so image i is sample order[i % n]."""
  return np.random.default_rng([seed, 0]).permutation(len(digits()[1]))


def render_digit(index: int, size: int = 64,
                 seed: int = 0) -> Tuple[np.ndarray, int]:
  """Image `index` of the sample: (size x size float32 in [0, 1], digit).

  A bright digit on a dark background: a digits sample upscaled (bicubic) to
  72-84% of `size`, shifted by up to size/64 px and with Gaussian noise
  (sigma 0.02). Mild on purpose: a small CNN trained on 1200 of them scores
  about 0.98 on 400 others (shifts of size/32 cost a point). Depends only on
  (index, size, seed), not on how many images are made.
  """
  if size < 8:
    raise ValueError(f'size must be at least 8 px, got {size}.')
  images, labels = digits()
  sample = sample_order(seed)[index % len(labels)]
  rng = np.random.default_rng([seed, 1, index])
  digit_px = max(2, round(size * 0.8 * rng.uniform(0.9, 1.05)))
  digit = Image.fromarray(images[sample] / 16.0, mode='F').resize(
      (digit_px, digit_px), Image.Resampling.BICUBIC)
  max_shift = size // 64
  top, left = np.clip((size - digit_px) // 2 +
                      rng.integers(-max_shift, max_shift + 1, size=2),
                      0, size - digit_px)
  canvas = np.zeros((size, size), np.float32)
  canvas[top:top + digit_px, left:left + digit_px] = np.asarray(digit)
  canvas += rng.normal(0.0, 0.02, canvas.shape).astype(np.float32)
  return np.clip(canvas, 0.0, 1.0), int(labels[sample])


def empty_dir(out_dir: PathLike) -> pathlib.Path:
  """Creates `out_dir`; raises if it exists and is not empty."""
  root = pathlib.Path(out_dir)
  if root.exists() and any(root.iterdir()):
    raise FileExistsError(
        f'{root} is not empty: sample data is written to a new or empty '
        f'folder so that no stale file changes the expected results.')
  root.mkdir(parents=True, exist_ok=True)
  return root


def write(root: pathlib.Path, rel_path: str, data: bytes) -> None:
  path = root / rel_path
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
