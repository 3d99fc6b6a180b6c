"""Captioned images: a Hugging Face imagefolder with a metadata.jsonl."""

import dataclasses
import json
import pathlib
from typing import List, Tuple

import numpy as np


from image_example_gen.sample_data import common
from image_example_gen.sample_data import image_folder

# ---------------------------------------------------------------------------
# Captioned images (Hugging Face `imagefolder` with metadata.jsonl).

METADATA_FILE = 'metadata.jsonl'
CAPTIONED_IMAGES_FOLDER = 'images'
# Class name of each digit, as metadata.jsonl's `label` column says it.
DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
               'eight', 'nine')
# What a description says of digit d: its parity, whether it exceeds four
# and whether three divides it, each in one of a few phrasings. Together they
# name 0, 1, 3, 6, 8 and 9 and leave two pairs (2/4, 5/7) to the image; the
# noisy image alone confuses other digits (1/7, 3/8, 4/9).
_PARITY_PHRASES = (('an even number', 'even', 'a multiple of two'),
                   ('an odd number', 'odd'))
_MAGNITUDE_PHRASES = (('less than five', 'at most four', 'a small digit'),
                      ('greater than four', 'more than four',
                       'a large digit'))
_THREE_PHRASES = (('not a multiple of three', 'not divisible by three'),
                  ('a multiple of three', 'divisible by three'))
# Neutral words: drawn independently of the digit.
_OPENERS = ('A', 'One', 'This is a', 'Here is a')
_ADJECTIVES = ('scanned', 'handwritten', 'faded', 'smudged', 'pencil',
               'blurry')
_NOUNS = ('digit', 'numeral', 'figure', 'character')
# Harder than `render_digit` alone: contrast down to this fraction, and
# Gaussian noise of this sigma, so that the image alone is often ambiguous.
_CAPTIONED_MIN_CONTRAST = 0.4
_CAPTIONED_NOISE = 0.6
_CAPTIONED_VARIANT = image_folder.FolderVariant('.png', 'PNG', 'L', 'png')


@dataclasses.dataclass(frozen=True)
class CaptionedImage:
  """One image of the captioned sample and its metadata.jsonl row.

  Attributes:
    file_name: path relative to the sample root, as in metadata.jsonl.
    class_name: the row's `label`, one of `DIGIT_NAMES`.
    label: index of `class_name` in the sample's sorted `class_names`.
    description: the row's `description`, an English sentence.
    index: the `render_digit` index of its pixels.
  """
  file_name: str
  class_name: str
  label: int
  description: str
  index: int


@dataclasses.dataclass(frozen=True)
class CaptionedSample:
  """What `make_captioned_images` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    metadata_path: `root/metadata.jsonl`, one JSON object per image.
    class_names: the sorted class names that occur (label = index).
    images: every image, in index order (the order of metadata.jsonl).
  """
  root: pathlib.Path
  metadata_path: pathlib.Path
  class_names: List[str]
  images: List[CaptionedImage]


def describe_digit(index: int, digit: int, seed: int = 0) -> str:
  """The description of image `index`, of digit `digit`.

  Says, in random order and phrasing, whether the digit is even, whether it
  is greater than four and whether three divides it, among neutral words;
  e.g. 'A smudged numeral, a large digit, divisible by three and odd.'
  """
  rng = np.random.default_rng([seed, 5, index])
  pick = lambda options: options[rng.integers(len(options))]
  facts = [pick(_PARITY_PHRASES[digit % 2]),
           pick(_MAGNITUDE_PHRASES[int(digit > 4)]),
           pick(_THREE_PHRASES[int(digit % 3 == 0)])]
  first, second, third = rng.permutation(facts)
  return (f'{pick(_OPENERS)} {pick(_ADJECTIVES)} {pick(_NOUNS)}, {first}, '
          f'{second} and {third}.')


def render_noisy_digit(index: int, size: int = 32,
                       seed: int = 0) -> Tuple[np.ndarray, int]:
  """`render_digit` at a random lower contrast under strong noise."""
  intensity, digit = common.render_digit(index, size, seed)
  rng = np.random.default_rng([seed, 6, index])
  intensity = intensity * rng.uniform(_CAPTIONED_MIN_CONTRAST, 1.0)
  intensity = intensity + rng.normal(0.0, _CAPTIONED_NOISE, intensity.shape)
  return np.clip(intensity, 0.0, 1.0).astype(np.float32), digit


def make_captioned_images(out_dir: common.PathLike,
                          n_images: int,
                          size: int = 32,
                          seed: int = 0) -> CaptionedSample:
  """Writes digit images with a Hugging Face style metadata.jsonl.

  Layout: `out_dir/images/<nnnnn>.png` (grayscale, `render_noisy_digit`) and
  `out_dir/metadata.jsonl` with one line per image, in index order:
  `{"file_name": "images/00000.png", "label": "seven", "description": "..."}`
  (`file_name` relative to the folder of metadata.jsonl). The label is the
  digit's English name; the description (`describe_digit`) carries part of
  the signal: a model of image and text beats either alone.

  Args:
    out_dir: a new or empty folder.
    n_images: number of images.
    size: width and height of every image.
    seed: everything derives from it.

  Returns:
    What was written.
  """
  if n_images < 1:
    raise ValueError(f'n_images must be positive, got {n_images}.')
  root = common.empty_dir(out_dir)
  rows = []
  for i in range(n_images):
    intensity, digit = render_noisy_digit(i, size, seed)
    file_name = f'{CAPTIONED_IMAGES_FOLDER}/{i:05d}.png'
    common.write(root, file_name,
                 image_folder.encode_image(intensity, _CAPTIONED_VARIANT))
    rows.append((file_name, DIGIT_NAMES[digit], describe_digit(i, digit, seed),
                 i))
  metadata_path = root / METADATA_FILE
  with open(metadata_path, 'w', encoding='utf-8') as f:
    for file_name, class_name, description, _ in rows:
      f.write(json.dumps({'file_name': file_name, 'label': class_name,
                          'description': description}) + '\n')
  class_names = sorted({class_name for _, class_name, _, _ in rows})
  return CaptionedSample(
      root=root, metadata_path=metadata_path, class_names=class_names,
      images=[CaptionedImage(file_name=file_name, class_name=class_name,
                             label=class_names.index(class_name),
                             description=description, index=i)
              for file_name, class_name, description, i in rows])

