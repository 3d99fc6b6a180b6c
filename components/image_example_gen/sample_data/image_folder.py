"""A PetImages-like class-per-folder tree, with every format and broken file."""

import dataclasses
import io
import pathlib
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from image_example_gen import rejects

from image_example_gen.sample_data import common

CLASS_NAMES = tuple(f'digit_{d}' for d in range(10))
SPLIT_FOLDER_NAMES = ('train', 'val', 'test')

# ---------------------------------------------------------------------------
# Image folder.


@dataclasses.dataclass(frozen=True)
class FolderImage:
  """One good image file of the folder sample.

  Attributes:
    rel_path: path relative to the sample root, '/' separated.
    class_name: its top-level class folder (below the split folder, if any).
    label: index of `class_name` in the sample's `class_names`.
    stored_format: 'jpeg' or 'png': how the ExampleGen stores it (JPEG and
      PNG bytes unchanged; anything else, CMYK and EXIF-rotated JPEGs
      re-encoded as PNG).
    split: 'train', 'val' or 'test' with split folders, else None.
    source_format: what the bytes are: 'jpeg', 'png', 'bmp', 'gif', 'webp' or
      'tiff' (whatever the extension says).
    index: the `render_digit` index of its pixels (upright, after EXIF).
  """
  rel_path: str
  class_name: str
  label: int
  stored_format: str
  split: Optional[str]
  source_format: str
  index: int


@dataclasses.dataclass(frozen=True)
class ImageFolderSample:
  """What `make_image_folder` wrote.

  Attributes:
    root: the sample's root folder (the ExampleGen's input_base).
    class_names: the sorted class folders holding good images (all of
      `CLASS_NAMES`, label = digit, unless n_images is too small for every
      digit to occur).
    images: the good files, in index order.
    rejects: rel_path -> the reason (`image_example_gen.rejects`) each broken
      file is expected to be rejected for.
    skips: rel_path -> the reason each junk file is expected to be skipped
      for.
  """
  root: pathlib.Path
  class_names: List[str]
  images: List[FolderImage]
  rejects: Dict[str, str]
  skips: Dict[str, str]


@dataclasses.dataclass(frozen=True)
class FolderVariant:
  """How one image file is written."""
  extension: str
  pil_format: str
  mode: str
  stored_format: str
  exif_orientation: Optional[int] = None
  nested: bool = False


_SAVE_OPTIONS = {'JPEG': {'quality': 95}, 'WEBP': {'lossless': True}}
_COMMON_FOLDER_VARIANTS = (
    FolderVariant('.jpg', 'JPEG', 'RGB', 'jpeg'),
    FolderVariant('.jpg', 'JPEG', 'L', 'jpeg'),
    FolderVariant('.png', 'PNG', 'L', 'png'),
    FolderVariant('.png', 'PNG', 'RGB', 'png'),
)
_SPECIAL_FOLDER_VARIANTS = (
    FolderVariant('.jpg', 'BMP', 'RGB', 'png'),  # a BMP named .jpg
    FolderVariant('.gif', 'GIF', 'L', 'png'),
    FolderVariant('.webp', 'WEBP', 'RGB', 'png'),
    FolderVariant('.tif', 'TIFF', 'RGB', 'png'),
    FolderVariant('.JPG', 'JPEG', 'RGB', 'jpeg'),
    FolderVariant('.PNG', 'PNG', 'L', 'png'),
    FolderVariant('.jpg', 'JPEG', 'CMYK', 'png'),
    FolderVariant('.jpg', 'JPEG', 'RGB', 'png', exif_orientation=6),
    FolderVariant('.png', 'PNG', 'L', 'png', nested=True),  # <class>/extra/
    FolderVariant('.jpeg', 'JPEG', 'L', 'jpeg'),
)
_NESTED_FOLDER = 'extra'
_APPLE_DOUBLE = b'\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x00'
_DS_STORE = b'\x00\x00\x00\x01Bud1' + bytes(24)
_NOTES = b'Scanned handwritten digits, one folder per digit.\n'
_TRUNCATED_FRACTION = 0.6


def _folder_variant(i: int) -> FolderVariant:
  """Image i's variant: the special ones at odd i < 20, then every 10th."""
  if i % 2 == 1 and i // 2 < len(_SPECIAL_FOLDER_VARIANTS):
    return _SPECIAL_FOLDER_VARIANTS[i // 2]
  if i >= 2 * len(_SPECIAL_FOLDER_VARIANTS) and i % 10 == 5:
    return _SPECIAL_FOLDER_VARIANTS[(i // 10) % len(_SPECIAL_FOLDER_VARIANTS)]
  return _COMMON_FOLDER_VARIANTS[(i // 2) % len(_COMMON_FOLDER_VARIANTS)]


def _split_of(i: int) -> str:
  """train/val/test, 14/3/3 in every 20 images."""
  position = i % 20
  if position in (3, 10, 17):
    return 'val'
  if position in (6, 13, 19):
    return 'test'
  return 'train'


def encode_image(intensity: np.ndarray, variant: FolderVariant) -> bytes:
  """The file bytes of an intensity image ([0, 1]) in the variant's format.

  With an EXIF orientation the stored pixels are rotated so that applying
  the orientation (as `PIL.ImageOps.exif_transpose` does) shows the digit
  upright.
  """
  image = Image.fromarray(np.rint(intensity * 255).astype(np.uint8), mode='L')
  image = image.convert(variant.mode)
  options = dict(_SAVE_OPTIONS.get(variant.pil_format, {}))
  if variant.exif_orientation == 6:  # Displayed = stored turned 90° clockwise.
    image = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = variant.exif_orientation  # Orientation
    options['exif'] = exif.tobytes()
  buffer = io.BytesIO()
  image.save(buffer, variant.pil_format, **options)
  return buffer.getvalue()


def make_image_folder(out_dir: common.PathLike,
                      n_images: int = 60,
                      size: int = 64,
                      seed: int = 0,
                      split_folders: bool = False,
                      broken_files: bool = True) -> ImageFolderSample:
  """Writes a PetImages-like class-per-folder tree of digit images.

  Layout: `out_dir/digit_<d>/<i>.<ext>` (or `out_dir/<split>/digit_<d>/...`
  with `split_folders`). Mostly RGB and grayscale JPEGs and PNGs; odd images
  below 20 (and every tenth after) are the special cases: a BMP named .jpg,
  GIF, WebP, TIFF, upper-case .JPG/.PNG, CMYK JPEG, EXIF-rotated JPEG, a file
  in a sub-folder `digit_<d>/extra/`, a .jpeg. Besides them (with
  `broken_files`), in class folders of the first images: an empty .jpg and a
  truncated JPEG (rejects), an AppleDouble `._0.jpg`, a `.DS_Store` and a
  `notes.txt` (junk, skipped).

  Args:
    out_dir: a new or empty folder.
    n_images: number of good images; every variant occurs for n_images >= 20.
    size: width and height of every image.
    seed: everything derives from it.
    split_folders: put the class folders under train/ val/ test/ (14/3/3 of
      every 20 images).
    broken_files: also write the broken and junk files.

  Returns:
    What was written, and how each file is expected to end.
  """
  if n_images < 1:
    raise ValueError(f'n_images must be positive, got {n_images}.')
  root = common.empty_dir(out_dir)
  written = []
  for i in range(n_images):
    intensity, digit = common.render_digit(i, size, seed)
    variant = _folder_variant(i)
    split = _split_of(i) if split_folders else None
    class_name = CLASS_NAMES[digit]
    folder = '/'.join(filter(None, (
        split, class_name, _NESTED_FOLDER if variant.nested else None)))
    rel_path = f'{folder}/{i}{variant.extension}'
    common.write(root, rel_path, encode_image(intensity, variant))
    written.append((rel_path, class_name, split, variant, i))

  class_names = sorted({class_name for _, class_name, *_ in written})
  images = [
      FolderImage(rel_path=rel_path, class_name=class_name,
                  label=class_names.index(class_name),
                  stored_format=variant.stored_format, split=split,
                  source_format=variant.pil_format.lower(), index=i)
      for rel_path, class_name, split, variant, i in written]

  def folder_of(k: int) -> str:
    """The class folder (with split) of good image k (mod n)."""
    image = images[k % n_images]
    return '/'.join(filter(None, (image.split, image.class_name)))

  truncated, _ = common.render_digit(n_images + 1, size, seed)
  truncated_jpeg = encode_image(truncated, _COMMON_FOLDER_VARIANTS[0])
  broken = {
      f'{folder_of(1)}/{n_images}.jpg': (b'', rejects.EMPTY_FILE),
      f'{folder_of(2)}/{n_images + 1}.jpg': (
          truncated_jpeg[:int(len(truncated_jpeg) * _TRUNCATED_FRACTION)],
          rejects.TRUNCATED),
  } if broken_files else {}
  junk = {
      f'{folder_of(0)}/._0.jpg': (_APPLE_DOUBLE, rejects.HIDDEN_FILE),
      f'{folder_of(0)}/.DS_Store': (_DS_STORE, rejects.HIDDEN_FILE),
      f'{folder_of(3)}/notes.txt': (_NOTES, rejects.NON_IMAGE_FILE),
  } if broken_files else {}
  for rel_path, (data, _) in {**broken, **junk}.items():
    common.write(root, rel_path, data)
  return ImageFolderSample(
      root=root, class_names=class_names, images=images,
      rejects={rel_path: reason for rel_path, (_, reason) in broken.items()},
      skips={rel_path: reason for rel_path, (_, reason) in junk.items()})

