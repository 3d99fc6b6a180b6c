"""Converting one DICOM file into Examples (no Beam, no TFX).

Per file: pydicom reads the header (`stop_before_pixels`); the declared size
is checked against the limits and the pixel data's length against the header
(`integrity.check_pixel_data`), and the burned-in rules (`burned_in`) say
whether the pixels are cropped, rejected or kept, before any pixel is
decoded; the frames are then decoded and rendered one at a time
(`decoders.iter_frames`) and PNG-encoded.
Labels, extra columns and the patient id come from the file's row of the
metadata table when one is joined (`table_join`). Frames of a file with
geometry (`geometry.frame_positions`) carry the series' keyed hash and their
position along the slice normal. `unit='series'` converts whole series
instead (`volume.py`).
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
from image_example_gen import table_keys
from image_example_gen import table_values
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import metadata
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.dicom import geometry
from image_example_gen.dicom import integrity

# Which frames of a multi-frame file become Examples.
MULTI_FRAME_POLICIES = ('all', 'first', 'middle')

_NON_DATA_SET_GROUPS = (0x0000, 0x0002)
_UNJOINABLE_VRS = frozenset(('SQ', 'OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN'))


def check_key_source(key_source: Any) -> None:
  """A `table_keys` key source, or the keyword of a single-valued attribute."""
  table_keys.check_key_source(key_source, keywords=True)
  if not table_keys.is_keyword(key_source):
    return
  tag = datadict.tag_for_keyword(key_source)
  if tag is None:
    raise ValueError(f'key_source {key_source!r} is no DICOM keyword (nor '
                     f'{table_keys.RELATIVE_PATH!r}, {table_keys.FILE_STEM!r} '
                     'or a regular expression with one group).')
  vrs = set(datadict.dictionary_VR(tag).split(' or '))
  if tag >> 16 in _NON_DATA_SET_GROUPS or vrs & _UNJOINABLE_VRS:
    raise ValueError(
        f'key_source {key_source!r} cannot be joined on: it must be '
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
               limits: limits_lib.SizeLimits, salt: str,
               burned_in_annotation: str = burned_in.CROP, key_folder: str = ''):
    """Configures the converter.

    Args:
      key_source: how files join the metadata table (`table_keys`, or a
        DICOM keyword); None without a table.
      attributes: the header attributes exported as `dicom/*`.
      options: how frames are rendered.
      multi_frame: which frames become Examples (MULTI_FRAME_POLICIES).
      limits: size limits per frame and per file.
      salt: the HMAC salt of the keyed hashes.
      burned_in_annotation: what happens to pixels that may show PHI
        (`burned_in.POLICIES`).
      key_folder: the table's folder below input_base (`table_keys`).
    """
    self._key_source = key_source
    self._key_folder = key_folder
    self._attributes = tuple(attributes)
    self._options = options
    self._multi_frame = multi_frame
    self._limits = limits
    self._salt = salt
    self._burned_in_annotation = burned_in_annotation

  def sniff(self, head: bytes) -> bool:
    return is_dicom_head(head)

  def join_key(self, item: listing.ListedFile) -> Optional[str]:
    """The file's key in the table: from its path or a header attribute."""
    if not table_keys.is_keyword(self._key_source):
      return join_key_of(None, item, self._key_source, self._key_folder)
    with opened(item) as f:
      ds = read_header(f, specific_tags=[self._key_source])
    return join_key_of(ds, item, self._key_source)

  def convert(self, item: listing.ListedFile,
              row: Optional[table_values.Row]) -> conversion.Converted:
    if item.size == 0:
      raise rejects.RejectError(rejects.EMPTY_FILE)
    with opened(item) as f:
      return self._convert_open(item, f, row)

  def _convert_open(self, item: listing.ListedFile, f,
                    row: Optional[table_values.Row]) -> conversion.Converted:
    ds = read_header(f)
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
    # For 2.5-D: the series and each frame's position along its normal.
    positions = geometry.frame_positions(ds)
    series_uid = str(ds.get('SeriesInstanceUID') or '').strip()
    if positions and series_uid:
      features[example.SERIES_KEY] = keys.keyed_hash(series_uid, self._salt,
                                                     'series')
    image_key = keys.keyed_hash(image_id, self._salt, 'image')
    examples = []
    with integrity.decode_errors_as_rejects():
      repaired = integrity.check_pixel_data(f, ds, pixel_data_offset)
      pixel_rule = burned_in.decide(ds, self._burned_in_annotation)
      if pixel_rule.outcome == burned_in.REJECTED:
        raise rejects.RejectError(rejects.BURNED_IN_ANNOTATION,
                                  pixel_rule.detail, pixel_rule.tallies)
      f.seek(0)
      for frame in decoders.iter_frames(
          f, ds, self._options, frame_indices(num_frames, self._multi_frame),
          pixel_rule.regions):
        height, width = frame.pixels.shape[:2]
        channels = 1 if frame.pixels.ndim == 2 else frame.pixels.shape[2]
        frame_features = dict(features)
        frame_features.update(example.image_features(
            codecs.encode_png(frame.pixels), 'png', height, width, channels,
            image_key))
        frame_features[example.IMAGE_BIT_DEPTH] = frame.bit_depth
        frame_features[metadata.FRAME_INDEX_FEATURE] = frame.index
        if positions:
          frame_features[example.SLICE_POSITION] = positions[frame.index]
        examples.append(example.make_example(frame_features))
    return conversion.Converted(examples, repaired=repaired,
                                tallies=pixel_rule.tallies)

  def _label_features(self, ds: pydicom.Dataset,
                      row: Optional[table_values.Row],
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


def is_dicom_head(head: bytes) -> bool:
  """A DICOM file: the 128-byte preamble and `DICM` (PS3.10 §7.1)."""
  return head[128:132] == b'DICM'


def join_key_of(ds: Optional[pydicom.Dataset], item: listing.ListedFile,
                key_source: str, key_folder: str = '') -> Optional[str]:
  """A file's key in the table: from its path, or its `key_source` attribute.

  Args:
    ds: the file's header; None unless `key_source` is a DICOM keyword.
    item: the file.
    key_source: 'file_stem', 'relative_path', a pattern or a DICOM keyword
      (`table_keys`).
    key_folder: the table's folder below input_base.
  """
  if not table_keys.is_keyword(key_source):
    return table_keys.file_key(item.rel_path, key_source, key_folder)
  value = ds.get(key_source)
  return None if value is None else table_keys.table_key(str(value),
                                                         key_source)


@contextlib.contextmanager
def opened(item: listing.ListedFile) -> Iterator[BinaryIO]:
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


def read_header(f, **kwargs) -> pydicom.Dataset:
  """The header (`stop_before_pixels`); rejects what does not parse."""
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
