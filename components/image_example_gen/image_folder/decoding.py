"""Decoding and validation of image files for ImageFolderExampleGen.

`convert` turns a file's bytes into what goes into `image/encoded`, or raises
`rejects.RejectError` with a reason from `image_example_gen.rejects`:

* The type is sniffed from the bytes (`sniff_format`), never the extension.
* The header is read first (a JPEG's segments by `jpeg.read_header`, other
  formats by Pillow's `open`; neither allocates pixels): an image that
  declares more than `limits.max_pixels` pixels is rejected `too_large`
  before anything is decoded, and so is one that Pillow's own
  decompression-bomb check refuses. Pillow's warnings are never shown.
* Every image is then decoded once, so that truncated and corrupt files are
  rejected here rather than in the Trainer. A JPEG that is stored unchanged
  is validated by a DCT-scaled decode with libjpeg-turbo (simplejpeg, 1/8
  scale, warnings are errors): every entropy-coded segment is still decoded,
  so truncation and corrupt scans are still found, at less than half the
  cost of a full decode. When libjpeg-turbo reports anything, or for any
  other image, Pillow's full decode decides, as it always did.
* Valid JPEG and PNG files are stored unchanged when the Trainer's decoder
  (`tf.io.decode_image`) reads them as Pillow does: JPEG when Huffman- or
  arithmetic-coded, sequential or progressive, 8-bit, with 1 or 3 components
  (SOF0-2, SOF9-10) and an end-of-image marker; PNG when every chunk's CRC
  holds and IEND is present, which libpng checks and Pillow does not.
* Everything else that Pillow decodes exactly (BMP, the first frame of GIF
  and TIFF, WebP, CMYK and lossless JPEG, Netpbm `.ppm`/`.pgm`/`.pbm`, PCX,
  SGI, QOI, TGA, the largest image of an ICO/CUR, DDS, JPEG 2000) is
  re-encoded as lossless PNG (`codecs.encode_png`): 8-bit, or 16-bit for
  16-bit sources (grayscale, and RGB Netpbm files with a maxval over 255,
  which Pillow would reduce to 8 bits and `_netpbm_rgb16` reads instead).
  Pixels keep their channels: grayscale 1, grayscale+alpha 2, RGB 3, RGBA 4;
  palette images become RGB, or RGBA when they have transparency; CMYK
  becomes RGB. Only the first frame of a GIF or TIFF is ever decoded.
* An EXIF orientation other than 1 is applied (`exif_transpose`, the default,
  like Hugging Face's imagefolder), and images larger than `max_size` are
  downscaled; both store a PNG.

The default `max_pixels` is Pillow's decompression-bomb error threshold,
2 * `PIL.Image.MAX_IMAGE_PIXELS` (about 179 megapixels), which also keeps
pass-through JPEGs within TensorFlow's own JPEG decoding limit of 2**29
samples. Images with a side over 1,000,000 pixels, which TensorFlow's PNG codec
refuses, are rejected as `invalid_image` unless stored as JPEG or downscaled.
Pillow's `ImageFile.LOAD_TRUNCATED_IMAGES` must stay False (its default), or
truncated files would be accepted.
"""

import dataclasses
import io
import re
import warnings
import zlib
from typing import Optional, Tuple

import numpy as np
from PIL import Image
from PIL import ImageOps
import simplejpeg

from image_example_gen import codecs
from image_example_gen import limits as limits_lib
from image_example_gen import rejects
from image_example_gen.image_folder import formats
from image_example_gen.image_folder import jpeg

# A number of a Netpbm header, after whitespace and comments.
_NETPBM_FIELD_RE = re.compile(rb'(?:\s|#[^\r\n]*[\r\n])*(\d+)')

# libjpeg-turbo's DCT scaling for validation: 1/8 of each side. simplejpeg
# scales by the largest factor whose output is at least min_height x
# min_width and that is at least min_factor; without min_height and min_width
# it decodes at full size, whatever min_factor says.
_VALIDATION_SCALE = 8

# PNG colour type (IHDR) -> channels of `tf.io.decode_image`; palette images
# (type 3) have 3, or 4 with a valid tRNS chunk.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_PNG_PALETTE = 3
# libpng's default limit on width and height, in TensorFlow's decoder and
# encoder alike.
_PNG_MAX_SIDE = 1_000_000

_ORIENTATION_TAG = 0x0112
_TRANSPOSED_ORIENTATIONS = (2, 3, 4, 5, 6, 7, 8)
# Pillow applies a TIFF's orientation while decoding it; these undo that.
_UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}

# Pillow modes stored as they are, and conversions for the others.
_PNG_MODES = ('L', 'LA', 'RGB', 'RGBA', 'I;16')
_MODE_CONVERSIONS = {
    '1': 'L', 'La': 'LA', 'PA': 'RGBA', 'RGBa': 'RGBA', 'RGBX': 'RGB',
    'CMYK': 'RGB', 'YCbCr': 'RGB',
}
_UINT16_MODES = ('I', 'I;16B', 'I;16L', 'I;16N')


@dataclasses.dataclass(frozen=True)
class EncodedImage:
  """An image as stored in an Example.

  Attributes:
    encoded: the bytes for `image/encoded`.
    format: 'jpeg' or 'png'.
    height: rows, as `tf.io.decode_image(encoded)` yields them.
    width: columns, likewise.
    channels: 1, 2, 3 or 4, likewise.
  """
  encoded: bytes
  format: str
  height: int
  width: int
  channels: int


def convert(data: bytes, exif_transpose: bool = True,
            max_size: Optional[int] = None,
            limits: limits_lib.SizeLimits = limits_lib.SizeLimits()
           ) -> EncodedImage:
  """Validates an image file and returns what to store for it.

  Args:
    data: the file's bytes.
    exif_transpose: apply an EXIF orientation other than 1 to the pixels (and
      store a PNG), so that they appear as a viewer shows them. With False,
      pixels are kept as stored.
    max_size: if set, images whose longer side exceeds it are downscaled
      (aspect ratio kept, Lanczos filter, 16-bit kept) to that longer side and
      stored as PNG.
    limits: size limits; only `max_pixels` applies to image files.

  Returns:
    The bytes to store: `data` itself for a valid JPEG or PNG that needs no
    change, else a lossless PNG of the decoded pixels.

  Raises:
    rejects.RejectError: the file is empty, not an image, too large,
      truncated, corrupt, or decodes to pixels that cannot be stored.
    ValueError: `max_size` is not a positive integer.
  """
  if max_size is not None and (isinstance(max_size, bool) or
                               not isinstance(max_size, int) or max_size <= 0):
    raise ValueError(f'max_size must be a positive integer, got {max_size!r}.')
  if not data:
    raise rejects.RejectError(rejects.EMPTY_FILE, 'the file has 0 bytes')
  image_format = formats.sniff_format(data[:formats.SNIFF_LENGTH])
  if image_format is None:
    raise rejects.RejectError(
        rejects.NOT_AN_IMAGE, 'the first bytes match no supported image format')
  if image_format == formats.JPEG:
    kept = _kept_jpeg(data, exif_transpose, max_size, limits)
    if kept is not None:
      return kept
  png_channels = _check_png(data) if image_format == formats.PNG else None
  image = _open(data, image_format, limits)
  width, height = image.size
  if image_format == formats.NETPBM:
    rgb16 = _netpbm_rgb16(data)
    if rgb16 is not None:
      return _encode_rgb16(rgb16, max_size)
  image = _load(image, data, image_format, exif_transpose)
  orientation = _orientation(image, exif_transpose)
  if _unchanged(image, orientation, max_size):
    if image_format == formats.PNG:
      _check_png_size(width, height)
      return EncodedImage(data, formats.PNG, height, width, png_channels)
    components = (jpeg.components_for_tf(data, jpeg.read_header(data))
                  if image_format == formats.JPEG else 0)
    if components:
      return EncodedImage(data, formats.JPEG, height, width, components)
  return _reencode(image, orientation, max_size)


def _kept_jpeg(data: bytes, exif_transpose: bool, max_size: Optional[int],
               limits: limits_lib.SizeLimits) -> Optional[EncodedImage]:
  """The JPEG as it is, when its header and a decode at 1/8 scale say so.

  Pillow is not involved unless the orientation is one that only Pillow
  reads. None: the full decode decides (an orientation to apply, a
  downscale, a process or precision TensorFlow does not decode as Pillow
  does, anything libjpeg-turbo reports).
  """
  header = jpeg.read_header(data)
  components = jpeg.components_for_tf(data, header)
  size = jpeg.frame_size(data, header)
  if not components or not size or not all(size):
    return None
  limits.check_pixels(*size)
  if max_size is not None and max(size) > max_size:
    return None
  orientation = jpeg.exif_orientation(data, header) if exif_transpose else 1
  if orientation is None:
    orientation = _orientation(_open(data, formats.JPEG, limits), True)
  if orientation in _TRANSPOSED_ORIENTATIONS:
    return None
  if not _scaled_decode_succeeds(data, components):
    return None
  return EncodedImage(data, formats.JPEG, size[1], size[0], components)


def _unchanged(image: Image.Image, orientation: int,
               max_size: Optional[int]) -> bool:
  """Whether the pixels are stored as they are (no rotation, no downscale)."""
  return orientation == 1 and (max_size is None or max(image.size) <= max_size)


def _open(data: bytes, image_format: str,
          limits: limits_lib.SizeLimits) -> Image.Image:
  """The image's header, read by Pillow; rejects an image over the limits."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data),
                         formats=formats.PIL_FORMATS[image_format])
  except Image.DecompressionBombError as e:
    size = _declared_size(data, image_format)
    if size:
      limits.check_pixels(*size)
    raise rejects.RejectError(
        rejects.TOO_LARGE, f'{e} Raise max_pixels to accept it.') from e
  # Pillow's plugins raise many exception types on corrupt input; any of them
  # means the file cannot be decoded.
  except Exception as e:  # pylint: disable=broad-except
    raise _rejection(data, image_format, e) from e
  limits.check_pixels(*image.size)
  return image


def _scaled_decode_succeeds(data: bytes, components: int) -> bool:
  """Whether libjpeg-turbo decodes the JPEG at 1/8 scale without a warning.

  Entropy decoding is complete at any DCT scale, so this finds what a full
  decode finds: truncation (libjpeg's premature-end warning) and corrupt
  scans (errors, or corrupt-data warnings). False means: let Pillow's full
  decode decide (it accepts files libjpeg only warns about, as it always did).
  """
  try:
    simplejpeg.decode_jpeg(data, colorspace='GRAY' if components == 1 else
                           'RGB', min_height=1, min_width=1,
                           min_factor=_VALIDATION_SCALE, strict=True)
  except ValueError:
    return False
  return True


def _load(image: Image.Image, data: bytes, image_format: str,
          exif_transpose: bool) -> Image.Image:
  """Fully decodes the opened image; rejects it if Pillow cannot.

  The pixels are as stored, except that with `exif_transpose` a TIFF's
  orientation is applied (by Pillow).
  """
  try:
    applied_orientation = (
        image.getexif().get(_ORIENTATION_TAG)
        if image_format == 'tiff' and not exif_transpose else None)
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      image.load()
  except Image.DecompressionBombError as e:
    raise rejects.RejectError(
        rejects.TOO_LARGE, f'{e} Raise max_pixels to accept it.') from e
  except Exception as e:  # pylint: disable=broad-except
    raise _rejection(data, image_format, e) from e
  if applied_orientation in _UNDO_ORIENTATION:
    return image.transpose(_UNDO_ORIENTATION[applied_orientation])
  return image


def _rejection(data: bytes, image_format: str,
               error: Exception) -> rejects.RejectError:
  """Why Pillow failed on `data`: invalid size, truncated, or corrupt."""
  size = _declared_size(data, image_format)
  if size and not all(size):
    return rejects.RejectError(
        rejects.INVALID_IMAGE,
        f'the {image_format} header declares {size[0]}x{size[1]} pixels')
  precision = (jpeg.precision(data, jpeg.read_header(data))
               if image_format == formats.JPEG else 8)
  if precision != 8:
    detail = f'{precision}-bit JPEG: only 8-bit JPEG is supported'
  elif isinstance(error, Image.UnidentifiedImageError):
    detail = f'Pillow cannot parse the {image_format} header'
  else:
    detail = f'{type(error).__name__}: {error}'
  if (isinstance(error, EOFError) or 'truncated' in str(error).lower() or
      _ends_early(data, image_format)):
    return rejects.RejectError(rejects.TRUNCATED, detail)
  return rejects.RejectError(rejects.UNDECODABLE, detail)


def _orientation(image: Image.Image, exif_transpose: bool) -> int:
  """The EXIF orientation to apply: 1 (none) unless `exif_transpose`."""
  if not exif_transpose:
    return 1
  orientation = image.getexif().get(_ORIENTATION_TAG, 1)
  return orientation if orientation in _TRANSPOSED_ORIENTATIONS else 1


def _reencode(image: Image.Image, orientation: int,
              max_size: Optional[int]) -> EncodedImage:
  """A lossless PNG of the decoded image, oriented and downscaled."""
  if orientation != 1:
    image = ImageOps.exif_transpose(image)
  image = _to_png_mode(image)
  if max_size is not None and max(image.size) > max_size:
    image = image.resize(_fit(image.size, max_size), Image.Resampling.LANCZOS)
  _check_png_size(*image.size)
  pixels = np.asarray(image)
  channels = 1 if pixels.ndim == 2 else pixels.shape[2]
  return EncodedImage(codecs.encode_png(pixels), formats.PNG, pixels.shape[0],
                      pixels.shape[1], channels)


def _to_png_mode(image: Image.Image) -> Image.Image:
  """The image in a mode that PNG stores losslessly (see _PNG_MODES)."""
  mode = image.mode
  if mode in _PNG_MODES:
    return image
  if mode == 'P':
    return image.convert('RGBA' if 'transparency' in image.info else 'RGB')
  if mode in _MODE_CONVERSIONS:
    return image.convert(_MODE_CONVERSIONS[mode])
  if mode in _UINT16_MODES:
    pixels = np.asarray(image)
    if pixels.min() >= 0 and pixels.max() <= np.iinfo(np.uint16).max:
      return Image.fromarray(pixels.astype(np.uint16))
    raise rejects.RejectError(
        rejects.INVALID_IMAGE,
        f'{mode} pixels range over [{pixels.min()}, {pixels.max()}], beyond '
        f'16-bit PNG')
  raise rejects.RejectError(rejects.INVALID_IMAGE,
                      f'Pillow mode {mode} has no lossless PNG form')


def _netpbm_rgb16(data: bytes) -> Optional[np.ndarray]:
  """HxWx3 uint16 pixels of an RGB Netpbm file with a maxval over 255.

  Pillow reduces such files (P3, P6) to 8 bits; they are read here instead,
  scaled to the 16-bit range as Pillow scales 16-bit graymaps. None for any
  other Netpbm file, which Pillow reads exactly.

  Raises:
    rejects.RejectError: `truncated` when samples are missing,
      `invalid_image` when a sample exceeds the maxval.
  """
  magic, pos, fields = data[:2], 2, []
  if magic not in (b'P3', b'P6'):
    return None
  for _ in range(3):
    match = _NETPBM_FIELD_RE.match(data, pos)
    if match is None:
      return None  # Pillow has read the header: this does not happen.
    fields.append(int(match.group(1)))
    pos = match.end()
  width, height, maxval = fields
  if maxval <= 255:
    return None
  count = width * height * 3
  if magic == b'P6':
    raw = data[pos + 1:pos + 1 + 2 * count]
    values = np.frombuffer(raw[:len(raw) // 2 * 2], '>u2')
  else:
    values = np.array(data[pos:].split()[:count], dtype=np.int64)
  if values.size < count:
    raise rejects.RejectError(
        rejects.TRUNCATED, f'{values.size} of the {count} samples of a '
        f'{width}x{height} Netpbm pixmap')
  if values.max(initial=0) > maxval:
    raise rejects.RejectError(
        rejects.INVALID_IMAGE, f'a sample exceeds the maxval {maxval}')
  scaled = np.round(values.astype(np.float64) * (65535 / maxval))
  return scaled.astype(np.uint16).reshape(height, width, 3)


def _encode_rgb16(pixels: np.ndarray, max_size: Optional[int]) -> EncodedImage:
  """A 16-bit RGB PNG, downscaled channel by channel beyond `max_size`."""
  height, width = pixels.shape[:2]
  if max_size is not None and max(width, height) > max_size:
    size = _fit((width, height), max_size)
    pixels = np.stack([
        np.asarray(Image.fromarray(pixels[..., c].astype(np.int32), 'I')
                   .resize(size, Image.Resampling.LANCZOS))
        for c in range(3)], axis=-1).clip(0, 65535).astype(np.uint16)
  _check_png_size(pixels.shape[1], pixels.shape[0])
  return EncodedImage(codecs.encode_png(pixels), formats.PNG, pixels.shape[0],
                      pixels.shape[1], 3)


def _fit(size: Tuple[int, int], max_size: int) -> Tuple[int, int]:
  """(width, height) scaled so that the longer side is `max_size`."""
  scale = max_size / max(size)
  return tuple(max(1, round(side * scale)) for side in size)


def _check_png_size(width: int, height: int) -> None:
  """Rejects sizes that TensorFlow's PNG codec (libpng) refuses."""
  if max(width, height) > _PNG_MAX_SIDE:
    raise rejects.RejectError(
        rejects.INVALID_IMAGE,
        f'{width}x{height} pixels: TensorFlow\'s PNG codec takes at most '
        f'{_PNG_MAX_SIDE} per side; set max_size to downscale')


def _check_png(data: bytes) -> int:
  """Checks what libpng checks and Pillow does not; returns TF's channels.

  Walks the chunks to IEND, verifying every CRC. libpng, and so
  `tf.io.decode_image`, fails on a bad CRC in a critical chunk or a missing
  IEND; Pillow reads neither the CRCs of image data nor the chunks after it.

  Raises:
    rejects.RejectError: the file ends before IEND, or a chunk is corrupt.
  """
  view = memoryview(data)
  pos = len(formats.PNG_SIGNATURE)
  color_type = palette_entries = alpha_entries = None
  seen_image_data = False
  while pos + 12 <= len(data):
    length = int.from_bytes(view[pos:pos + 4], 'big')
    chunk_type = bytes(view[pos + 4:pos + 8])
    end = pos + 12 + length
    if end > len(data):
      break
    crc = int.from_bytes(view[end - 4:end], 'big')
    if zlib.crc32(view[pos + 4:end - 4]) != crc:
      raise rejects.RejectError(
          rejects.UNDECODABLE,
          f'PNG chunk {chunk_type!r} at byte {pos} fails its CRC check')
    if chunk_type == b'IHDR' and length >= 10:
      color_type = data[pos + 17]
    elif chunk_type == b'PLTE':
      palette_entries = length // 3
    elif (chunk_type == b'tRNS' and palette_entries is not None and
          not seen_image_data):
      alpha_entries = length
    elif chunk_type == b'IDAT':
      seen_image_data = True
    elif chunk_type == b'IEND':
      if color_type == _PNG_PALETTE:
        # libpng ignores a tRNS chunk that is empty, longer than the palette
        # or out of place.
        return 4 if 0 < (alpha_entries or 0) <= palette_entries else 3
      if color_type not in _PNG_CHANNELS:
        raise rejects.RejectError(rejects.UNDECODABLE,
                            f'PNG colour type {color_type} is invalid')
      return _PNG_CHANNELS[color_type]
    pos = end
  raise rejects.RejectError(rejects.TRUNCATED,
                      'the PNG file ends before its IEND chunk')


def _declared_size(data: bytes,
                   image_format: str) -> Optional[Tuple[int, int]]:
  """(width, height) from a PNG or JPEG header, if there is one."""
  if image_format == formats.PNG and data[12:16] == b'IHDR' and len(data) >= 24:
    return (int.from_bytes(data[16:20], 'big'),
            int.from_bytes(data[20:24], 'big'))
  if image_format == formats.JPEG:
    return jpeg.frame_size(data, jpeg.read_header(data))
  return None


def _ends_early(data: bytes, image_format: str) -> bool:
  """Whether the file stops before the end its own structure announces."""
  if image_format == formats.JPEG:
    return jpeg.ends_early(data, jpeg.read_header(data))
  if image_format == 'gif':
    return not data.endswith(b';')
  if image_format == 'bmp':
    return int.from_bytes(data[2:6], 'little') > len(data)
  if image_format == 'webp':
    return int.from_bytes(data[4:8], 'little') + 8 > len(data)
  if image_format == 'tiff':
    # Offset of the first directory: 4 bytes, or 8 in BigTIFF.
    start, stop = (8, 16) if data[2] == 0x2B else (4, 8)
    order = 'little' if data.startswith(b'II') else 'big'
    return (len(data) < stop or
            int.from_bytes(data[start:stop], order) >= len(data))
  return False
