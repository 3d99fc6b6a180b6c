"""DICOM pixel pipeline: stored values to display-ready frames (docs/design.md §4).

Each display step is one small function of an array and a data set, in the
style of pydicom's `pydicom.pixels.processing`, with the DICOM standard section
it implements cited. pydicom does the decoding and the standard's lookups
(modality LUT, VOI LUT, windowing, palette); this module adds what pydicom
lacks: the choice of one VOI, the output range of each step, scaling to a
fixed bit depth without looking at other images, MONOCHROME1 inversion and
the optional square resize.

Steps, per frame (of the header `frame_dataset` gives for the frame):
  1. decode (`iter_frames`, through `pydicom.pixels.iter_pixels`);
  2. `modality_values`: Rescale Slope/Intercept or Modality LUT Sequence;
  3. `voi_values`: VOI LUT Sequence, else the first window, else none;
  4. `scale_to_bits`: to [0, 2**bit_depth - 1] from the range step 3 reports;
  5. `invert_monochrome1`: higher is brighter for every image;
  6. `to_rgb8`: colour images to 8-bit RGB;
  7. `resize_square`: optional, aspect kept, centred on black.
Step 8 (PNG) is `image_example_gen.codecs.encode_png`.
"""

import contextlib
import dataclasses
import io
import logging
import struct
from typing import (BinaryIO, Callable, Iterator, Optional, Sequence, Tuple,
                    Union)

import dicomsdl
import numpy as np
from PIL import Image
import pydicom
from pydicom.encaps import generate_frames
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels import iter_pixels
from pydicom.pixels import processing
from pydicom.pixels.utils import get_expected_length
from pydicom.pixels.utils import get_nr_frames

from image_example_gen import rejects

ValueRange = Tuple[float, float]

_MONOCHROME = ('MONOCHROME1', 'MONOCHROME2')
_PALETTE_COLOR = 'PALETTE COLOR'
# Colour spaces that pydicom's decoding yields as RGB: YBR_FULL(_422) through
# its default `as_rgb` conversion, YBR_RCT/YBR_ICT through the JPEG 2000
# plugins (openjpeg and GDCM both undo the component transform).
_RGB_AFTER_DECODING = ('RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT')
# Photometric Interpretation -> Samples per Pixel (PS3.3 C.7.6.3.1.2).
_SUPPORTED_PHOTOMETRIC = {
    'MONOCHROME1': 1,
    'MONOCHROME2': 1,
    _PALETTE_COLOR: 1,
    **{name: 3 for name in _RGB_AFTER_DECODING},
}
_REQUIRED_ATTRIBUTES = ('Rows', 'Columns', 'BitsAllocated', 'BitsStored',
                        'PixelRepresentation', 'SamplesPerPixel',
                        'PhotometricInterpretation')
_PIXEL_DATA_KEYWORDS = ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData')

# Plugin to try first, where it used less CPU than pydicom's first choice
# (GDCM) to decode a 2048x1664 12-bit frame: JPEG-LS pyjpegls 64 ms vs GDCM
# 106 ms; JPEG 2000 pylibjpeg-openjpeg 378 ms vs GDCM 424 ms (Pillow 639 ms).
# RLE keeps pydicom's order: pylibjpeg-rle (10 ms) before pydicom's own (73).
_PREFERRED_PLUGINS = {
    uid.JPEGLSLossless: 'pyjpegls',
    uid.JPEGLSNearLossless: 'pyjpegls',
    uid.JPEG2000Lossless: 'pylibjpeg',
    uid.JPEG2000: 'pylibjpeg',
}

# Decoded at a reduced resolution when `resize` is set (`_iter_reduced`).
_REDUCIBLE_SYNTAXES = frozenset((uid.JPEG2000Lossless, uid.JPEG2000))
# Decoded by dicomsdl, 3.5x faster than GDCM on a 12-bit mammogram
# (27 vs 95 ms; pylibjpeg-libjpeg, the other decoder, is GPL).
_DICOMSDL_SYNTAXES = frozenset((uid.JPEGLossless, uid.JPEGLosslessSV1))

# Functional group macros that hold display attributes (PS3.3 C.7.6.16.2).
_FRAME_MACROS = ('PixelValueTransformationSequence', 'FrameVOILUTSequence')

# What pydicom says of pixel data shorter than its header describes.
_TRUNCATION_MESSAGES = (
    'is less than expected',  # Native data in a Dataset.
    'fewer fragments than frames',  # Encapsulated.
    "doesn't match the expected amount",  # pydicom's RLE decoder.
)

# Encapsulated pixel data (PS3.5 A.4).
_ITEM_TAG = (0xFFFE, 0xE000)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_END_MARKER = b'\xff\xd9'  # JPEG / JPEG-LS EOI, JPEG 2000 EOC.
_END_MARKER_SYNTAXES = frozenset(uid.JPEGTransferSyntaxes +
                                 uid.JPEGLSTransferSyntaxes +
                                 uid.JPEG2000TransferSyntaxes)


class UnsupportedTransferSyntaxError(NotImplementedError):
  """No installed pydicom plugin decodes the file's transfer syntax."""


class TruncatedPixelDataError(ValueError):
  """The pixel data holds fewer frames or bytes than the header describes."""


@dataclasses.dataclass(frozen=True)
class PixelOptions:
  """How frames are rendered.

  Attributes:
    apply_voi: apply step 3 (VOI LUT or window); False scales the modality
      values over the range the modality LUT can produce.
    bit_depth: output bits of grayscale frames. None: 16 when Bits Stored > 8,
      else 8. Colour frames are always 8-bit RGB, whatever is set here.
    resize: if set, frames become `resize` x `resize`: the long side is
      scaled to `resize` (bilinear, antialiased), the short side keeps the
      aspect ratio and is centred between black bands (value 0, after
      MONOCHROME1 inversion, so black for every image).
  """
  apply_voi: bool = True
  bit_depth: Optional[int] = None
  resize: Optional[int] = None

  def __post_init__(self):
    if self.bit_depth not in (None, 8, 16):
      raise ValueError(
          f'bit_depth must be None, 8 or 16, got {self.bit_depth!r}.')
    if self.resize is not None and (not isinstance(self.resize, int) or
                                    isinstance(self.resize, bool) or
                                    self.resize < 1):
      raise ValueError(f'resize must be None or a positive int, got '
                       f'{self.resize!r}.')


@dataclasses.dataclass(frozen=True)
class Frame:
  """One rendered frame.

  Attributes:
    pixels: HxW uint8/uint16 (grayscale) or HxWx3 uint8 (RGB), ready for PNG.
    bit_depth: 8 or 16, the bits of `pixels`.
    index: index of the frame in the file.
  """
  pixels: np.ndarray
  bit_depth: int
  index: int


def check_pixel_attributes(ds: Dataset) -> Optional[str]:
  """A reject reason if `ds` cannot be rendered from its header alone.

  `ds` may be read with `stop_before_pixels`, so the Pixel Data element itself
  is not required here; a data set with none of the Image Pixel attributes
  (PS3.3 C.7.6.3) and no pixel data is an object without an image (SR,
  presentation state, ...). A file that has the attributes but no pixel data
  fails in `iter_frames`, which `decode_error_reason` maps to NO_PIXEL_DATA.

  Returns:
    `rejects.NO_PIXEL_DATA`, `rejects.MISSING_ATTRIBUTE` (a required Image
    Pixel attribute, or the palette of a PALETTE COLOR image, is missing or
    empty), `rejects.INVALID_IMAGE` (no pixels, or a Photometric
    Interpretation this module does not render, or one that disagrees with
    Samples per Pixel), or None.
  """
  present = [k for k in _REQUIRED_ATTRIBUTES if ds.get(k) not in (None, '')]
  if not present and not any(k in ds for k in _PIXEL_DATA_KEYWORDS):
    return rejects.NO_PIXEL_DATA
  if len(present) < len(_REQUIRED_ATTRIBUTES):
    return rejects.MISSING_ATTRIBUTE
  photometric = ds.PhotometricInterpretation
  if (photometric == _PALETTE_COLOR and
      'RedPaletteColorLookupTableDescriptor' not in ds):
    return rejects.MISSING_ATTRIBUTE
  if (_SUPPORTED_PHOTOMETRIC.get(photometric) != ds.SamplesPerPixel or
      ds.Rows * ds.Columns == 0):
    return rejects.INVALID_IMAGE
  return None


def decode_error_reason(exc: BaseException) -> str:
  """The reject reason for an exception raised by `iter_frames`.

  Based on what pydicom 3.0 and its plugins raise:
    * UNSUPPORTED_TRANSFER_SYNTAX: `UnsupportedTransferSyntaxError` (no
      decoder, or no installed plugin, for the transfer syntax), or every
      plugin declined the data as a variant it does not support (e.g. 12-bit
      JPEG Extended, which only the GPL pylibjpeg-libjpeg decodes);
    * NO_PIXEL_DATA: pydicom found no (Float/Double Float) Pixel Data element;
    * TRUNCATED: `TruncatedPixelDataError`, or pydicom's report of fewer
      bytes, fragments or RLE segment data than the header describes (when
      it decodes an inflated Deflated data set, where `iter_frames` cannot
      look at the file);
    * UNDECODABLE: anything else (the codec rejected the data).
  """
  message = str(exc)
  if isinstance(exc, UnsupportedTransferSyntaxError) or _all_plugins_declined(
      message):
    return rejects.UNSUPPORTED_TRANSFER_SYNTAX
  if isinstance(exc, AttributeError) and 'no pixel data' in message:
    return rejects.NO_PIXEL_DATA
  if isinstance(exc, TruncatedPixelDataError) or any(
      text in message for text in _TRUNCATION_MESSAGES):
    return rejects.TRUNCATED
  return rejects.UNDECODABLE



def _all_plugins_declined(message: str) -> bool:
  """Whether pydicom's all-plugins-failed error lists only refusals."""
  if not message.startswith('Unable to decode as exceptions were raised'):
    return False
  failures = message.splitlines()[1:]
  return bool(failures) and all('not support' in line for line in failures)


def output_bit_depth(ds: Dataset, options: PixelOptions) -> int:
  """Bits per sample of the rendered frame (docs/design.md §4 step 8).

  Grayscale: `options.bit_depth`, or by default 16 when (0028,0101) Bits
  Stored > 8 and 8 otherwise. Colour: always 8.
  """
  if ds.PhotometricInterpretation not in _MONOCHROME:
    return 8
  if options.bit_depth is not None:
    return options.bit_depth
  return 16 if ds.BitsStored > 8 else 8


def frame_dataset(ds: Dataset, index: int) -> Dataset:
  """The header as frame `index` of a multi-frame image sees it.

  Enhanced multi-frame objects keep the rescale and the window in functional
  groups rather than at the top level (PS3.3 C.7.6.16): the Pixel Value
  Transformation (C.7.6.16.2.9) and Frame VOI LUT (C.7.6.16.2.10) macros of
  the Shared Functional Groups Sequence, overridden by those of the frame's
  item of the Per-Frame Functional Groups Sequence. Their attributes are laid
  over a copy of `ds`; without functional groups `ds` itself is returned.
  """
  shared = ds.get('SharedFunctionalGroupsSequence') or []
  per_frame = ds.get('PerFrameFunctionalGroupsSequence') or []
  groups = list(shared[:1]) + list(per_frame[index:index + 1])
  macros = [group[keyword][0] for group in groups
            for keyword in _FRAME_MACROS if group.get(keyword)]
  if not macros:
    return ds
  frame = Dataset()
  frame.update(ds)
  if hasattr(ds, 'file_meta'):
    frame.file_meta = ds.file_meta
  for macro in macros:
    frame.update(macro)
  return frame


def stored_range(ds: Dataset) -> ValueRange:
  """The smallest and largest storable value (PS3.3 C.7.6.3.1.1).

  From (0028,0101) Bits Stored and (0028,0103) Pixel Representation: unsigned
  [0, 2**n - 1] or two's complement [-2**(n-1), 2**(n-1) - 1].
  """
  bits = ds.BitsStored
  if ds.PixelRepresentation == 0:
    return 0.0, float(2**bits - 1)
  return float(-2**(bits - 1)), float(2**(bits - 1) - 1)


def modality_values(arr: np.ndarray, ds: Dataset) -> np.ndarray:
  """Step 2: the Modality LUT (PS3.3 C.11.1) applied to stored values.

  The Modality LUT Sequence if present, else Rescale Slope/Intercept, else
  the stored values unchanged (pydicom's `apply_modality_lut`).
  """
  return processing.apply_modality_lut(arr, ds)


def modality_range(ds: Dataset) -> ValueRange:
  """The range of values the Modality LUT (PS3.3 C.11.1) can produce.

  The LUT or rescale applied to every storable value (`stored_range`): for a
  rescale, the two ends of the stored range mapped (in increasing order); for
  a Modality LUT Sequence, the smallest and largest LUT entry reachable from
  the stored range.
  """
  low, high = stored_range(ds)
  inputs = np.array([low, high], dtype=np.int64)
  if ds.get('ModalityLUTSequence'):
    entries, first_mapped, _ = ds.ModalityLUTSequence[0].LUTDescriptor
    last_mapped = first_mapped + (entries or 2**16) - 1
    reachable = np.arange(max(low, first_mapped), min(high, last_mapped) + 1,
                          dtype=np.int64)
    inputs = np.concatenate([inputs, reachable])
  outputs = modality_values(inputs, ds)
  return float(outputs.min()), float(outputs.max())


def voi_values(arr: np.ndarray, ds: Dataset) -> Tuple[np.ndarray, ValueRange]:
  """Step 3: the VOI LUT (PS3.3 C.11.2) applied to modality values.

  One VOI is used, in this order of preference:
    1. the first item of the VOI LUT Sequence (C.11.2.1.1); its range is the
       smallest and largest entry of the LUT. Inputs are rounded to integers
       and clamped to the LUT's input range first, as C.11.2.1.1 maps inputs
       below the first mapped value to the first entry and above the last to
       the last;
    2. the first Window Center/Width pair (multi-valued: the first value of
       each) with (0028,1056) VOI LUT Function LINEAR (default),
       LINEAR_EXACT or SIGMOID (C.11.2.1.2, C.11.2.1.3), applied by pydicom's
       `apply_windowing`; its range is [y_min, y_max], the values pydicom maps
       the bottom and top of the window to (y_min can exceed y_max for a
       negative Rescale Slope; `scale_to_bits` keeps y_min dark);
    3. none: `arr` unchanged, with `modality_range(ds)`.
  A VOI that pydicom rejects (a window width below the function's minimum, an
  unknown VOI LUT Function, a LUT entry size other than 8 or 10-16 bits) is
  skipped as if absent.

  Returns:
    The VOI output values and the range they can take.
  """
  lut_range = _voi_lut_range(ds)
  if lut_range is not None:
    _, first_mapped, _ = ds.VOILUTSequence[0].LUTDescriptor
    entries = _voi_lut_entries(ds)
    inputs = np.clip(np.rint(arr), first_mapped, first_mapped + entries - 1)
    return processing.apply_voi(inputs.astype(np.int64), ds), lut_range
  window_range = _window_range(ds)
  if window_range is not None:
    return processing.apply_windowing(arr, ds), window_range
  return arr, modality_range(ds)


def _voi_lut_entries(ds: Dataset) -> int:
  """Number of entries of the first VOI LUT (C.11.2.1.1: 0 means 2**16)."""
  return ds.VOILUTSequence[0].LUTDescriptor[0] or 2**16


def _voi_lut_range(ds: Dataset) -> Optional[ValueRange]:
  """Smallest and largest entry of the first usable VOI LUT, or None."""
  if not ds.get('VOILUTSequence'):
    return None
  item = ds.VOILUTSequence[0]
  if item.get('LUTDescriptor') is None or item.get('LUTData') is None:
    return None
  first_mapped = item.LUTDescriptor[1]
  inputs = np.arange(first_mapped, first_mapped + _voi_lut_entries(ds),
                     dtype=np.int64)
  try:
    outputs = processing.apply_voi(inputs, ds)
  except (ValueError, NotImplementedError):
    return None
  return float(outputs.min()), float(outputs.max())


def _window_range(ds: Dataset) -> Optional[ValueRange]:
  """What the first window maps -inf and +inf to, or None without a window."""
  if any(ds.get(k) in (None, '') for k in ('WindowCenter', 'WindowWidth')):
    return None
  try:
    low, high = processing.apply_windowing(np.array([-np.inf, np.inf]), ds)
  except ValueError:
    return None
  return float(low), float(high)


def scale_to_bits(values: np.ndarray, value_range: ValueRange,
                  bit_depth: int) -> np.ndarray:
  """Step 4: linearly maps `value_range` onto [0, 2**bit_depth - 1].

  `value_range[0]` goes to 0 and `value_range[1]` to the top, so the result
  depends on this image's header only, never on other images or on this
  image's content. Values are clipped, rounded to the nearest integer and cast
  to uint8 (8 bits) or uint16 (16 bits). An empty range (a constant LUT) gives
  zeros.
  """
  dtype = np.uint8 if bit_depth == 8 else np.uint16
  low, high = value_range
  if high == low:
    return np.zeros(values.shape, dtype=dtype)
  top = 2**bit_depth - 1
  out = (values.astype(np.float64) - low) * (top / (high - low))
  np.clip(out, 0, top, out=out)
  np.rint(out, out=out)
  return out.astype(dtype)


def invert_monochrome1(arr: np.ndarray, ds: Dataset) -> np.ndarray:
  """Step 5: inverts MONOCHROME1 so that higher values are brighter.

  PS3.3 C.7.6.3.1.2: in MONOCHROME1 the minimum sample value is displayed as
  white. Applied after `scale_to_bits`, as `max - value` with the maximum of
  `arr`'s unsigned dtype; other photometric interpretations pass unchanged.
  """
  if ds.PhotometricInterpretation != 'MONOCHROME1':
    return arr
  return np.iinfo(arr.dtype).max - arr


def to_rgb8(arr: np.ndarray, ds: Dataset) -> np.ndarray:
  """Step 6: a decoded colour frame as HxWx3 uint8 RGB.

  PS3.3 C.7.6.3.1.2 Photometric Interpretation:
    * PALETTE COLOR: stored values index the Red/Green/Blue Palette Color
      LUTs (C.7.6.3.1.5, C.7.9), applied by pydicom's `apply_color_lut`;
      entries of the descriptor's n bits are scaled from [0, 2**n - 1] and an
      alpha LUT is dropped.
    * RGB, YBR_FULL, YBR_FULL_422, YBR_RCT, YBR_ICT: `arr` must be as
      pydicom's `iter_pixels` yields it by default, which is RGB for all of
      them (YBR_FULL(_422) is converted by its `as_rgb` processing, YBR_RCT and
      YBR_ICT by the JPEG 2000 plugins). Samples of more than 8 Bits Stored
      are scaled from [0, 2**BitsStored - 1].

  Raises:
    ValueError: for any other Photometric Interpretation.
  """
  photometric = ds.PhotometricInterpretation
  if photometric == _PALETTE_COLOR:
    rgb = processing.apply_color_lut(arr, palette_in_little_endian(ds))[
        ..., :3]
    # 8-bit entries may come in 16-bit words (C.7.6.3.1.5), not the reverse.
    entry_bits = (8 if rgb.dtype == np.uint8 else
                  ds.RedPaletteColorLookupTableDescriptor[2])
  elif photometric in _RGB_AFTER_DECODING:
    rgb = arr
    entry_bits = ds.BitsStored
  else:
    raise ValueError(f'Cannot render Photometric Interpretation '
                     f'{photometric!r} as RGB.')
  if entry_bits == 8 and rgb.dtype == np.uint8:
    return rgb
  return scale_to_bits(rgb, (0, 2**entry_bits - 1), 8)


_PALETTE_DATA = tuple(f'{color}PaletteColorLookupTableData'
                      for color in ('Red', 'Green', 'Blue', 'Alpha'))


def palette_in_little_endian(ds: Dataset) -> Dataset:
  """`ds` with its non-segmented 16-bit palette tables as little-endian bytes.

  PS3.5 7.1: OW values are in the transfer syntax's byte order. pydicom 3's
  `apply_color_lut` reads segmented tables in the data set's byte order but
  non-segmented ones always as little-endian, so a big-endian file's 16-bit
  entries come out byte-swapped (a black image once scaled to 8 bits). The
  tables of a big-endian data set are byte-swapped here first; other data
  sets are returned as they are.
  """
  file_meta = getattr(ds, 'file_meta', None)
  syntax = file_meta.get('TransferSyntaxUID') if file_meta else None
  if (syntax is None or syntax.is_little_endian or
      ds.get('SegmentedRedPaletteColorLookupTableData') is not None or
      ds.RedPaletteColorLookupTableDescriptor[2] != 16):
    return ds
  swapped = Dataset()
  swapped.update(ds)
  swapped.file_meta = file_meta
  for keyword in _PALETTE_DATA:
    data = ds.get(keyword)
    if data is not None:
      setattr(swapped, keyword,
              np.frombuffer(data, '>u2').astype('<u2').tobytes())
  return swapped


def resize_square(arr: np.ndarray, size: int,
                  full_shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
  """Step 7: resizes to `size` x `size`, keeping the aspect ratio.

  The long side becomes `size` (Pillow's antialiased bilinear filter on
  float samples); the short side is scaled by the same factor and centred,
  the bands on either side (the extra pixel, if odd, at the bottom or right)
  filled with 0. HxW and HxWxC arrays keep their shape kind and dtype.

  `full_shape` (rows, columns) is given when `arr` is a JPEG 2000 frame
  decoded at reduction r (`_iter_reduced`): its sample k is the low-pass of
  the full frame at sample 2**r * k (ISO 15444-1 F.3.8: the filters are
  centred on even samples), not the mean of samples 2**r * k ... 2**r * (k
  + 1) - 1 as a resize's would be. The resize then samples the full frame's
  extent, shifted by (1 - 2**-r) / 2 reduced pixels, so that both paths
  sample the same places.
  """
  height, width = full_shape or arr.shape[:2]
  factor = size / max(height, width)
  new_height = max(1, round(height * factor))
  new_width = max(1, round(width * factor))
  rows, columns = arr.shape[:2]
  channels = arr.reshape(rows, columns, -1)
  box = None
  if full_shape is not None:
    scale = 2.0**-round(np.log2(height / rows))
    shift = (1 - scale) / 2
    box = (shift, shift, width * scale + shift, height * scale + shift)
    # The box ends up to a pixel past the last sample: repeat the edge.
    channels = np.pad(channels, ((0, 1), (0, 1), (0, 0)), mode='edge')
  resized = np.stack([
      np.asarray(
          Image.fromarray(channels[..., c].astype(np.float32)).resize(
              (new_width, new_height), Image.Resampling.BILINEAR, box=box))
      for c in range(channels.shape[-1])
  ], axis=-1)
  top_value = np.iinfo(arr.dtype).max
  out = np.zeros((size, size, channels.shape[-1]), dtype=arr.dtype)
  top = (size - new_height) // 2
  left = (size - new_width) // 2
  out[top:top + new_height, left:left + new_width] = np.clip(
      np.rint(resized), 0, top_value)
  return out.reshape((size, size) + arr.shape[2:])


def render(stored: np.ndarray, ds: Dataset,
           options: PixelOptions) -> Tuple[np.ndarray, int]:
  """Steps 2-7 on one decoded frame.

  Args:
    stored: one frame as pydicom's `iter_pixels` yields it by default.
    ds: the frame's header (`frame_dataset`): Image Pixel, Modality LUT, VOI
      LUT and palette attributes.
    options: how to render.

  Returns:
    (pixels, bit_depth): HxW uint8/uint16 or HxWx3 uint8, and 8 or 16.
  """
  bit_depth = output_bit_depth(ds, options)
  if ds.PhotometricInterpretation in _MONOCHROME:
    values = modality_values(stored, ds)
    if options.apply_voi:
      values, value_range = voi_values(values, ds)
    else:
      value_range = modality_range(ds)
    pixels = invert_monochrome1(
        scale_to_bits(values, value_range, bit_depth), ds)
  else:
    pixels = to_rgb8(stored, ds)
  if options.resize:
    reduced = stored.shape[:2] != (ds.Rows, ds.Columns)
    pixels = resize_square(pixels, options.resize,
                           (ds.Rows, ds.Columns) if reduced else None)
  return pixels, bit_depth


def iter_frames(
    source: Union[str, BinaryIO],
    ds: Dataset,
    options: PixelOptions,
    frame_indices: Optional[Sequence[int]] = None,
) -> Iterator[Frame]:
  """Decodes and renders frames one at a time (steps 1-7).

  Args:
    source: path of the DICOM file, or a binary file object opened on it
      (its position is restored after the last frame).
    ds: the file's header, e.g. read with `stop_before_pixels=True`; used for
      the transfer syntax and the display steps.
    options: how to render.
    frame_indices: frames to yield, in this order; None: all frames.

  Yields:
    `Frame`s, decoded with pydicom's `iter_pixels` one frame at a time (a
    Deflated Explicit VR Little Endian file is inflated whole first, as
    deflate compresses the data set as one stream).

  Raises:
    UnsupportedTransferSyntaxError: no installed plugin decodes the file.
    TruncatedPixelDataError: the file ends inside its pixel data, a JPEG-family
      codestream lacks its end marker, or fewer frames than asked for came out.
    IndexError: a frame index outside [0, Number of Frames).
    Exception: whatever else pydicom or its plugins raise on broken pixel
      data; `decode_error_reason` names the reject reason.
  """
  transfer_syntax = _decodable_transfer_syntax(ds)
  number_of_frames = get_nr_frames(ds, warn=False)
  indices = (list(range(number_of_frames)) if frame_indices is None else
             list(frame_indices))
  if any(not 0 <= i < number_of_frames for i in indices):
    raise IndexError(f'Frame indices {indices} outside the {number_of_frames} '
                     'frames of the file.')
  stored_frames = _iter_stored(source, transfer_syntax, frame_indices, indices)
  if options.resize and transfer_syntax in _REDUCIBLE_SYNTAXES:
    stored_frames = _with_fallback(
        _iter_reduced(source, ds, indices, options.resize), stored_frames,
        lambda done: _iter_stored(source, transfer_syntax, indices[done:],
                                  indices[done:]))
  elif transfer_syntax in _DICOMSDL_SYNTAXES and ds.SamplesPerPixel == 1:
    stored_frames = _with_fallback(
        _iter_dicomsdl(source, indices), stored_frames,
        lambda done: _iter_stored(source, transfer_syntax, indices[done:],
                                  indices[done:]))
  for index in indices:
    try:
      stored = next(stored_frames)
    except StopIteration:
      raise TruncatedPixelDataError(
          f'The pixel data ended before frame {index}.') from None
    pixels, bit_depth = render(stored, frame_dataset(ds, index), options)
    yield Frame(pixels=pixels, bit_depth=bit_depth, index=index)


def _with_fallback(first: Iterator[np.ndarray], default: Iterator[np.ndarray],
                   rest: Callable[[int], Iterator[np.ndarray]]
                  ) -> Iterator[np.ndarray]:
  """Frames from `first`; if it declines or fails, from pydicom's decoders.

  `first` yields nothing at all to decline (the file does not suit it);
  if it fails after `done` frames, `rest(done)` decodes the others.
  """
  done = 0
  try:
    for stored in first:
      done += 1
      yield stored
    if done:
      return
  except Exception:  # pylint: disable=broad-except
    logging.debug('Fast decoder failed after %d frames', done, exc_info=True)
    if done:
      yield from rest(done)
      return
  yield from default


def reduction_level(rows: int, columns: int, levels: int, size: int) -> int:
  """The JPEG 2000 resolution reduction to decode at for a `size` output.

  ISO 15444-1 B.5: reduction r (discarding the r highest resolution levels)
  gives ceil(side / 2**r) samples per side. The largest r, at most the
  codestream's decomposition `levels`, whose long side is still at least
  `size`: the smallest resolution level at least as large as the target.
  """
  level = 0
  while (level < levels and
         -(-max(rows, columns) // 2**(level + 1)) >= size):
    level += 1
  return level


def j2k_header(codestream: bytes) -> Optional[Tuple[int, int, int, int, bool,
                                                     int]]:
  """(rows, columns, components, precision, signed, decomposition levels).

  From the SIZ (ISO 15444-1 A.5.1) and COD (A.6.1) markers of a raw
  codestream; None when it does not start with SOC, SIZ.
  """
  if codestream[:4] != b'\xff\x4f\xff\x51' or len(codestream) < 44:
    return None
  (x_size, y_size, x_offset, y_offset) = struct.unpack(
      '>IIII', codestream[8:24])
  (components,) = struct.unpack('>H', codestream[40:42])
  ssiz = codestream[42]
  position = 4 + struct.unpack('>H', codestream[4:6])[0]  # After SIZ.
  while position + 4 <= len(codestream):
    marker, length = struct.unpack('>HH', codestream[position:position + 4])
    if marker == 0xFF52 and position + 10 <= len(codestream):
      levels = codestream[position + 9]
      return (y_size - y_offset, x_size - x_offset, components,
              (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels)
    if marker == 0xFF90:  # SOT: the main header ended without COD.
      return None
    position += 2 + length
  return None


def _iter_reduced(source: Union[str, BinaryIO], ds: Dataset,
                  indices: Sequence[int], size: int) -> Iterator[np.ndarray]:
  """Stored values of JPEG 2000 frames decoded at a reduced resolution.

  Decodes with Pillow's OpenJPEG at `reduction_level` (the wavelet
  low-pass of the frame: the codestream's higher resolution levels are not
  decoded at all). Declines (yields nothing) unless the codestream agrees
  with the header (size, components, signedness), has one component of up
  to 16 bits or three of 8, and a reduction helps.
  """
  wanted = set(indices)
  if (ds.BitsAllocated > 16 or not wanted or
      sorted(wanted) != list(indices)):
    return
  with _opened(source) as f:
    pydicom.dcmread(f, stop_before_pixels=True)
    element_header = f.read(8)
    if element_header[4:6] in _LONG_VRS:
      f.read(4)
    frames = generate_frames(f, number_of_frames=get_nr_frames(ds, warn=False))
    for index, codestream in enumerate(frames):
      if index not in wanted:
        continue
      header = j2k_header(codestream)
      if header is None:
        return
      rows, columns, components, precision, signed, levels = header
      level = reduction_level(rows, columns, levels, size)
      if (level == 0 or signed != bool(ds.PixelRepresentation) or
          (rows, columns) != (ds.Rows, ds.Columns) or
          components != ds.SamplesPerPixel or
          not (components == 1 or precision == 8)):
        return
      image = Image.open(io.BytesIO(codestream), formats=('JPEG2000',))
      image.reduce = level
      image.load()
      yield _from_pillow_j2k(np.asarray(image), precision, signed)
      wanted.discard(index)
      if not wanted:
        return


def _from_pillow_j2k(values: np.ndarray, precision: int,
                     signed: bool) -> np.ndarray:
  """Stored values from Pillow's 16-bit samples of a JPEG 2000 component.

  Pillow offsets signed samples by 2**(precision - 1) and scales every
  sample of more than 8 bits to 16 bits (a left shift by 16 - precision).
  """
  if values.dtype != np.uint16:
    return values
  stored = values >> (16 - precision)
  if signed:
    return (stored.astype(np.int32) - 2**(precision - 1)).astype(np.int16)
  return stored


def _iter_dicomsdl(source: Union[str, BinaryIO],
                   indices: Sequence[int]) -> Iterator[np.ndarray]:
  """Stored values decoded by dicomsdl (JPEG Lossless; MIT licensed)."""
  with _opened(source) as f:
    data_set = dicomsdl.open_memory(f.read())
  for index in indices:
    yield data_set.pixelData(index, storedvalue=True)


def _decodable_transfer_syntax(ds: Dataset) -> uid.UID:
  """The file's transfer syntax, if an installed plugin can decode it."""
  file_meta = getattr(ds, 'file_meta', None)
  transfer_syntax = file_meta.get('TransferSyntaxUID') if file_meta else None
  if not transfer_syntax:
    raise UnsupportedTransferSyntaxError(
        'No (0002,0010) Transfer Syntax UID in the file meta information.')
  try:
    decoder = get_decoder(transfer_syntax)
  except NotImplementedError as e:
    raise UnsupportedTransferSyntaxError(
        f'No pixel data decoder for {transfer_syntax.name}.') from e
  if not decoder.is_available:
    raise UnsupportedTransferSyntaxError(
        f'No installed plugin decodes {transfer_syntax.name}: '
        f'{"; ".join(decoder.missing_dependencies)}.')
  return transfer_syntax


def _iter_stored(source: Union[str, BinaryIO], transfer_syntax: uid.UID,
                 frame_indices: Optional[Sequence[int]],
                 indices: Sequence[int]) -> Iterator[np.ndarray]:
  """Step 1: stored values, frame by frame, from pydicom's `iter_pixels`.

  The transfer syntax's preferred plugin decodes first; if it fails on a
  frame, that frame and the rest are decoded with all plugins in pydicom's
  order; if that fails before any frame, from the data set read whole.
  `frame_indices` None lets pydicom stream encapsulated frames in order
  rather than locate each one.
  """
  if transfer_syntax == uid.DeflatedExplicitVRLittleEndian:
    with _opened(source) as f:
      source = pydicom.dcmread(f)
  plugin = _PREFERRED_PLUGINS.get(transfer_syntax, '')
  decoded = 0
  if plugin in get_decoder(transfer_syntax).available_plugins:
    try:
      for stored in iter_pixels(source, indices=frame_indices,
                                decoding_plugin=plugin):
        decoded += 1
        yield stored
      return
    except Exception:  # pylint: disable=broad-except
      pass
  remaining = indices[decoded:] if decoded else frame_indices
  try:
    for stored in iter_pixels(source, indices=remaining):
      decoded += 1
      yield stored
  except Exception as error:  # pylint: disable=broad-except
    if decoded:
      raise
    # pydicom's file parser for iter_pixels is stricter than dcmread (e.g. it
    # fails on SC_rgb_jpeg.dcm, which pixel_array decodes): read the data set
    # whole, this file only, and decode from it. If that fails too, the first
    # error is the one that describes the file.
    try:
      with _opened(source) as f:
        frames = list(iter_pixels(pydicom.dcmread(f), indices=frame_indices))
    except Exception:  # pylint: disable=broad-except
      raise error from None
    yield from frames


@contextlib.contextmanager
def _opened(source: Union[str, BinaryIO]) -> Iterator[BinaryIO]:
  """`source` as a binary file; a file object's position is restored."""
  if not hasattr(source, 'read'):
    with open(source, 'rb') as f:
      yield f
    return
  position = source.tell()
  source.seek(0)
  try:
    yield source
  finally:
    source.seek(position)


MISSING_SEQUENCE_DELIMITER = 'missing_sequence_delimiter'
# Explicit VRs of pixel data elements: 2 reserved bytes, a 4-byte length.
_LONG_VRS = frozenset((b'OB', b'OW', b'OF', b'OD', b'OL', b'OV', b'UN'))


def check_pixel_data(f: BinaryIO, ds: Dataset, offset: int) -> str:
  """Checks, before decoding, that the pixel data is as long as promised.

  PS3.5 A.4 and 7.1: native pixel data must hold Rows x Columns x Samples x
  Bits Allocated x Number of Frames bits and fit in the file; encapsulated
  pixel data is items up to a Sequence Delimitation Item, and the last
  fragment of a JPEG, JPEG-LS or JPEG 2000 stream ends in the FFD9 end
  marker (EOI, ISO 10918-1 B.1.1.3; EOC, ISO 15444-1 A.4.4), then 0x00 or
  0xFF padding. OpenJPEG decodes a cut codestream into a partial image
  without an error, so this is checked up front for every file.

  Args:
    f: the file, positioned anywhere (the position is not restored).
    ds: its header, read with `stop_before_pixels`.
    offset: where the header read stopped: the pixel data element's tag.

  Returns:
    '' when the pixel data is complete; `MISSING_SEQUENCE_DELIMITER` when
    every item and the last fragment's end marker are there and only the
    closing delimiter is missing (the file decodes; counted as repaired).

  Raises:
    TruncatedPixelDataError: the file ends inside the pixel data, the native
      data is shorter than the header describes, or the last fragment lacks
      its end marker.
  """
  syntax = _file_transfer_syntax(ds)
  if syntax is None or syntax == uid.DeflatedExplicitVRLittleEndian:
    return ''
  endian = '<' if syntax.is_little_endian else '>'
  size = f.seek(0, io.SEEK_END)
  f.seek(offset)
  element_header = f.read(8)
  if len(element_header) < 8:
    return ''  # No pixel data element: the decoder says `no_pixel_data`.
  # The VR says whether the element is explicit, whatever the transfer
  # syntax claims (pydicom reads SC_rgb_jpeg.dcm's implicit element too).
  if element_header[4:6] in _LONG_VRS:
    element_header += f.read(4)
  (length,) = struct.unpack(endian + 'L', element_header[-4:])
  if length != _UNDEFINED_LENGTH:
    available = min(length, size - f.tell())
    expected = get_expected_length(ds, unit='bytes')
    if available < expected:
      raise TruncatedPixelDataError(
          f'The pixel data holds {available} bytes, the header describes '
          f'{expected}.')
    return ''
  return _check_fragments(f, size, endian, syntax in _END_MARKER_SYNTAXES)


def _file_transfer_syntax(ds: Dataset) -> Optional[uid.UID]:
  file_meta = getattr(ds, 'file_meta', None)
  return file_meta.get('TransferSyntaxUID') if file_meta else None


def _check_fragments(f: BinaryIO, size: int, endian: str,
                     check_end_marker: bool) -> str:
  """Walks the items of encapsulated pixel data (PS3.5 A.4) from `f`."""
  items = 0
  last_length = 0
  delimited = True
  while True:
    header = f.read(8)
    if not header:
      delimited = False
      break
    if len(header) < 8:
      raise TruncatedPixelDataError('The file ends inside an item header.')
    group, element, length = struct.unpack(endian + 'HHL', header)
    if (group, element) != _ITEM_TAG:
      break
    if f.tell() + length > size:
      raise TruncatedPixelDataError(
          f'The file ends inside fragment {items}: {length} bytes declared, '
          f'{size - f.tell()} left.')
    f.seek(length, io.SEEK_CUR)
    items += 1
    last_length = length
  if check_end_marker and items >= 2:  # The first item is the offset table.
    tail = min(last_length, 4)  # The marker, then 0x00 or 0xFF padding.
    f.seek(-(0 if not delimited else 8) - tail, io.SEEK_CUR)
    if not f.read(tail).rstrip(b'\0\xff').endswith(_END_MARKER):
      raise TruncatedPixelDataError(
          'The last fragment does not end in the codestream\'s end marker.')
  return '' if delimited else MISSING_SEQUENCE_DELIMITER
