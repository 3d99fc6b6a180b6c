"""Checks of a DICOM file's pixels before and after decoding: reject reasons.

`check_pixel_attributes` says from the header alone whether a file can be
rendered; `check_pixel_data` checks, before any decoding, that the pixel
data is as long as the header promises (PS3.5 A.4, 7.1);
`decode_error_reason` maps what a decoder raised to a reject reason.
"""

import contextlib
import io
import struct
from typing import BinaryIO, Iterator, Optional

from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels.utils import get_expected_length

from image_example_gen import rejects
from image_example_gen.dicom import display

# Photometric Interpretation -> Samples per Pixel (PS3.3 C.7.6.3.1.2).
_SUPPORTED_PHOTOMETRIC = {
    'MONOCHROME1': 1,
    'MONOCHROME2': 1,
    display.PALETTE_COLOR: 1,
    **{name: 3 for name in display.RGB_AFTER_DECODING},
}
_REQUIRED_ATTRIBUTES = ('Rows', 'Columns', 'BitsAllocated', 'BitsStored',
                        'PixelRepresentation', 'SamplesPerPixel',
                        'PhotometricInterpretation')
_PIXEL_DATA_KEYWORDS = ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData')

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
  if (photometric == display.PALETTE_COLOR and
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



@contextlib.contextmanager
def decode_errors_as_rejects() -> Iterator[None]:
  """Turns what decoding and rendering raise into a reject of the file.

  RejectError passes; OSError is `unreadable`; anything else gets the
  reason `decode_error_reason` names, with the exception as the detail.
  """
  try:
    yield
  except rejects.RejectError:
    raise
  except OSError as e:
    raise rejects.RejectError(rejects.UNREADABLE,
                              f'{type(e).__name__}: {e}') from e
  except Exception as e:  # pylint: disable=broad-except
    raise rejects.RejectError(decode_error_reason(e),
                              f'{type(e).__name__}: {e}') from e


def _all_plugins_declined(message: str) -> bool:
  """Whether pydicom's all-plugins-failed error lists only refusals."""
  if not message.startswith('Unable to decode as exceptions were raised'):
    return False
  failures = message.splitlines()[1:]
  return bool(failures) and all('not support' in line for line in failures)



MISSING_SEQUENCE_DELIMITER = 'missing_sequence_delimiter'
# Explicit VRs of pixel data elements: 2 reserved bytes, a 4-byte length.
LONG_VRS = frozenset((b'OB', b'OW', b'OF', b'OD', b'OL', b'OV', b'UN'))


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
  if element_header[4:6] in LONG_VRS:
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
