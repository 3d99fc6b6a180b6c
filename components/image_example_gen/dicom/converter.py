"""Converting one DICOM file into Examples (no Beam, no TFX).

Per file: pydicom reads the header (`stop_before_pixels`); the declared size
is checked against the limits and the pixel data's length against the header
(`integrity.check_pixel_data`), before any pixel is decoded; the frames are then
decoded and rendered one at a time (`decoders.iter_frames`) and PNG-encoded.
Labels, extra columns and the patient id come from the file's row of the
labels CSV when one is joined (`table_join`).
"""

import contextlib
import io
import math
from typing import Any, BinaryIO, Dict, Iterator, Optional, Sequence

import pydicom
from pydicom import datadict
from pydicom import errors as pydicom_errors

from image_example_gen import codecs
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import tables
from image_example_gen.dicom import metadata
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.dicom import integrity

# Which frames of a multi-frame file become Examples.
MULTI_FRAME_POLICIES = ('all', 'first', 'middle')

_NON_DATA_SET_GROUPS = (0x0000, 0x0002)
_UNJOINABLE_VRS = frozenset(('SQ', 'OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN'))


def check_key_source(key_source: Any) -> None:
  """'file_stem' or the keyword of a single-valued data set attribute."""
  if key_source == tables.FILE_STEM:
    return
  tag = (datadict.tag_for_keyword(key_source)
         if isinstance(key_source, str) else None)
  if tag is None:
    raise ValueError(f'label_key_source must be {tables.FILE_STEM!r} or a '
                     f'DICOM keyword, got {key_source!r}.')
  vrs = set(datadict.dictionary_VR(tag).split(' or '))
  if tag >> 16 in _NON_DATA_SET_GROUPS or vrs & _UNJOINABLE_VRS:
    raise ValueError(
        f'label_key_source {key_source!r} cannot be joined on: it must be '
        'a data set attribute with a single value, not a sequence, binary '
        'data or a file meta attribute.')


def frame_indices(num_frames: int, policy: str) -> Sequence[int]:
  """The frames of a `num_frames` file that `policy` keeps."""
  if policy == 'first':
    return [0]
  if policy == 'middle':
    return [num_frames // 2]
  return range(num_frames)


class DicomFileConverter(conversion.FileConverter):
  """Reads, labels, decodes and renders one DICOM file."""

  def __init__(self, key_source: Optional[str], attributes: Sequence[str],
               options: display.PixelOptions, multi_frame: str,
               limits: limits_lib.SizeLimits, salt: str):
    """Configures the converter.

    Args:
      key_source: how files join the labels CSV ('file_stem' or a DICOM
        keyword); None without a CSV.
      attributes: the header attributes exported as `dicom/*`.
      options: how frames are rendered.
      multi_frame: which frames become Examples (MULTI_FRAME_POLICIES).
      limits: size limits per frame and per file.
      salt: the HMAC salt of the keyed hashes.
    """
    self._key_source = key_source
    self._attributes = tuple(attributes)
    self._options = options
    self._multi_frame = multi_frame
    self._limits = limits
    self._salt = salt

  def sniff(self, head: bytes) -> bool:
    """A DICOM file: the 128-byte preamble and `DICM` (PS3.10 §7.1)."""
    return head[128:132] == b'DICM'

  def join_key(self, item: listing.ListedFile) -> Optional[str]:
    """The file's key in the labels CSV: its stem or a header attribute."""
    if self._key_source == tables.FILE_STEM:
      return tables.path_key(item.rel_path, tables.FILE_STEM)
    with _opened(item) as f:
      ds = _read_header(f, specific_tags=[self._key_source])
    value = ds.get(self._key_source)
    return None if value is None else tables.table_key(str(value),
                                                       tables.FILE_STEM)

  def convert(self, item: listing.ListedFile,
              row: Optional[tables.Row]) -> conversion.Converted:
    if item.size == 0:
      raise rejects.RejectError(rejects.EMPTY_FILE)
    with _opened(item) as f:
      return self._convert_open(item, f, row)

  def _convert_open(self, item: listing.ListedFile, f,
                    row: Optional[tables.Row]) -> conversion.Converted:
    ds = _read_header(f)
    pixel_data_offset = f.tell()
    reason = integrity.check_pixel_attributes(ds)
    if reason:
      raise rejects.RejectError(reason, 'Image Pixel module incomplete')
    num_frames = int(ds.get('NumberOfFrames') or 1)
    self._limits.check_pixels(ds.Columns, ds.Rows)
    self._limits.check_frames(
        num_frames, ds.Rows * ds.Columns * ds.SamplesPerPixel *
        math.ceil(ds.BitsAllocated / 8))
    image_id = str(ds.get('SOPInstanceUID') or item.rel_path)
    features = self._label_features(ds, row, image_id)
    features.update(metadata.extract(ds, self._attributes))
    syntax = metadata.transfer_syntax_uid(ds)
    if syntax:
      features[metadata.TRANSFER_SYNTAX_FEATURE] = syntax
    image_key = keys.keyed_hash(image_id, self._salt, 'image')
    examples = []
    try:
      repaired = integrity.check_pixel_data(f, ds, pixel_data_offset)
      f.seek(0)
      for frame in decoders.iter_frames(
          f, ds, self._options, frame_indices(num_frames, self._multi_frame)):
        height, width = frame.pixels.shape[:2]
        channels = 1 if frame.pixels.ndim == 2 else frame.pixels.shape[2]
        frame_features = dict(features)
        frame_features.update(example.image_features(
            codecs.encode_png(frame.pixels), 'png', height, width, channels,
            image_key))
        frame_features[example.IMAGE_BIT_DEPTH] = frame.bit_depth
        frame_features[metadata.FRAME_INDEX_FEATURE] = frame.index
        examples.append(example.make_example(frame_features))
    except rejects.RejectError:
      raise
    except OSError as e:
      raise rejects.RejectError(rejects.UNREADABLE,
                                f'{type(e).__name__}: {e}') from e
    except Exception as e:  # pylint: disable=broad-except
      raise rejects.RejectError(integrity.decode_error_reason(e),
                                f'{type(e).__name__}: {e}') from e
    return conversion.Converted(examples, repaired=repaired)

  def _label_features(self, ds: pydicom.Dataset, row: Optional[tables.Row],
                      image_id: str) -> Dict[str, Any]:
    """Label, extra columns and patient key."""
    features = {}
    patient_id = None
    if row is not None:
      if row.labels:
        features[example.LABEL] = list(row.labels)
      features.update(row.extras)
      patient_id = row.group
    if patient_id is None:
      patient_id = str(ds.get('PatientID') or '').strip()
    # Without a patient id the image is its own patient: it cannot leak into
    # another split, and it is not lost.
    features[example.PATIENT_KEY] = (
        keys.keyed_hash(patient_id, self._salt, 'patient') if patient_id else
        keys.keyed_hash(image_id, self._salt, 'image'))
    return features


@contextlib.contextmanager
def _opened(item: listing.ListedFile) -> Iterator[BinaryIO]:
  """The listed file, open; rejected (`unreadable`) if it cannot be read."""
  try:
    f = conversion.open_file(item.path)
  except OSError as e:
    raise rejects.RejectError(rejects.UNREADABLE,
                              f'{type(e).__name__}: {e}') from e
  with f:
    try:
      size = f.seek(0, io.SEEK_END)
      f.seek(0)
    except OSError as e:
      raise rejects.RejectError(rejects.UNREADABLE,
                                f'{type(e).__name__}: {e}') from e
    conversion.check_size(item, size)
    yield f


def _read_header(f, **kwargs) -> pydicom.Dataset:
  try:
    return pydicom.dcmread(f, stop_before_pixels=True, **kwargs)
  except pydicom_errors.InvalidDicomError as e:
    raise rejects.RejectError(rejects.NOT_DICOM, str(e)) from e
  except OSError as e:
    raise rejects.RejectError(rejects.UNREADABLE,
                              f'{type(e).__name__}: {e}') from e
  except Exception as e:  # pylint: disable=broad-except
    raise rejects.RejectError(rejects.INVALID_DICOM,
                              f'{type(e).__name__}: {e}') from e
