"""DICOM pixel pipeline: stored values to display-ready frames (DESIGN.md §4).

Each display step is one small function of an array and a data set, in the
style of pydicom's `pydicom.pixels.processing`, with the DICOM standard section
it implements cited. pydicom does the decoding and the standard's lookups
(modality LUT, VOI LUT, windowing, palette); this module adds what pydicom
lacks: the choice of one VOI, the output range of each step, scaling to a
fixed bit depth without looking at other images, MONOCHROME1 inversion and
the optional square resize.

Steps, per frame:
  1. decode (`iter_frames`, through `pydicom.pixels.iter_pixels`);
  2. `modality_values`: Rescale Slope/Intercept or Modality LUT Sequence;
  3. `voi_values`: VOI LUT Sequence, else the first window, else none;
  4. `scale_to_bits`: to [0, 2**bit_depth - 1] from the range step 3 reports;
  5. `invert_monochrome1`: higher is brighter for every image;
  6. `to_rgb8`: colour images to 8-bit RGB;
  7. `resize_square`: optional, aspect kept, centred on black.
Step 8 (PNG) is `image_example_gen.codecs.encode_png`.
"""

import dataclasses
from typing import BinaryIO, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels import iter_pixels
from pydicom.pixels import processing
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

# Fastest installed plugin per transfer syntax (see the module's report:
# timings on a 2048x1664 12-bit frame). Syntaxes not listed use pydicom's
# plugin order.
_PREFERRED_PLUGINS = {}


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
      raise ValueError(f'bit_depth must be None, 8 or 16, got {self.bit_depth!r}.')
    if self.resize is not None and (not isinstance(self.resize, int) or
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

  Based on what pydicom 3 and its plugins raise:
    * UNSUPPORTED_TRANSFER_SYNTAX: `UnsupportedTransferSyntaxError` (no
      decoder, or no installed plugin, for the transfer syntax);
    * NO_PIXEL_DATA: pydicom found no (Float/Double Float) Pixel Data element;
    * TRUNCATED: `TruncatedPixelDataError`, or pydicom's / a codec's report
      of pixel data shorter than the header describes;
    * UNDECODABLE: anything else (the codec rejected the data).
  """
  message = str(exc)
  if isinstance(exc, UnsupportedTransferSyntaxError):
    return rejects.UNSUPPORTED_TRANSFER_SYNTAX
  if isinstance(exc, AttributeError) and 'no pixel data' in message:
    return rejects.NO_PIXEL_DATA
  if isinstance(exc, (TruncatedPixelDataError, EOFError)):
    return rejects.TRUNCATED
  if any(marker in message for marker in _TRUNCATION_MESSAGES):
    return rejects.TRUNCATED
  return rejects.UNDECODABLE


# Substrings of the messages pydicom and its plugins give for data cut short.
_TRUNCATION_MESSAGES = ()


def output_bit_depth(ds: Dataset, options: PixelOptions) -> int:
  """Bits per sample of the rendered frame (DESIGN.md §4 step 8).

  Grayscale: `options.bit_depth`, or by default 16 when (0028,0101) Bits
  Stored > 8 and 8 otherwise. Colour: always 8.
  """
  if ds.PhotometricInterpretation not in _MONOCHROME:
    return 8
  if options.bit_depth is not None:
    return options.bit_depth
  return 16 if ds.BitsStored > 8 else 8


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
  if ds.get('WindowCenter') in (None, '') or ds.get('WindowWidth') in (None,
                                                                       ''):
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
    rgb = processing.apply_color_lut(arr, ds)[..., :3]
    entry_bits = ds.RedPaletteColorLookupTableDescriptor[2]
  elif photometric in _RGB_AFTER_DECODING:
    rgb = arr
    entry_bits = ds.BitsStored
  else:
    raise ValueError(f'Cannot render Photometric Interpretation '
                     f'{photometric!r} as RGB.')
  if entry_bits == 8 and rgb.dtype == np.uint8:
    return rgb
  return scale_to_bits(rgb, (0, 2**entry_bits - 1), 8)


def resize_square(arr: np.ndarray, size: int) -> np.ndarray:
  """Step 7: resizes to `size` x `size`, keeping the aspect ratio.

  The long side becomes `size` (Pillow's antialiased bilinear filter on
  float samples); the short side is scaled by the same factor and centred,
  the bands on either side (the extra pixel, if odd, at the bottom or right)
  filled with 0. HxW and HxWxC arrays keep their shape kind and dtype.
  """
  height, width = arr.shape[:2]
  factor = size / max(height, width)
  new_height = max(1, round(height * factor))
  new_width = max(1, round(width * factor))
  channels = arr.reshape(height, width, -1)
  resized = np.stack([
      np.asarray(
          Image.fromarray(channels[..., c].astype(np.float32)).resize(
              (new_width, new_height), Image.Resampling.BILINEAR))
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
    ds: the header of the file (Image Pixel, Modality LUT, VOI LUT and
      palette attributes).
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
    pixels = resize_square(pixels, options.resize)
  return pixels, bit_depth


def iter_frames(source: Union[str, BinaryIO],
                ds: Dataset,
                options: PixelOptions,
                frame_indices: Optional[Sequence[int]] = None) -> Iterator[Frame]:
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
    TruncatedPixelDataError: fewer frames than Number of Frames (or than
      `frame_indices` asks for) could be decoded.
    Exception: whatever pydicom or its plugins raise on broken pixel data;
      `decode_error_reason` names the reject reason.
  """
  transfer_syntax = _decodable_transfer_syntax(ds)
  indices = (list(frame_indices) if frame_indices is not None else
             range(get_nr_frames(ds, warn=False)))
  decoded = 0
  for index, stored in zip(indices,
                           _iter_stored(source, transfer_syntax, frame_indices)):
    pixels, bit_depth = render(stored, ds, options)
    decoded += 1
    yield Frame(pixels=pixels, bit_depth=bit_depth, index=index)
  if decoded < len(indices):
    raise TruncatedPixelDataError(
        f'Decoded {decoded} of {len(indices)} frames: the pixel data ended '
        'early.')


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
                 frame_indices: Optional[Iterable[int]]) -> Iterator[np.ndarray]:
  """Step 1: stored values, frame by frame, from pydicom's `iter_pixels`."""
  plugin = _PREFERRED_PLUGINS.get(transfer_syntax, '')
  if transfer_syntax == uid.DeflatedExplicitVRLittleEndian:
    if hasattr(source, 'seek'):
      source.seek(0)
    source = pydicom.dcmread(source)
  return iter_pixels(source, indices=frame_indices, decoding_plugin=plugin)
