"""Converting one DICOM series into one volume Example (no Beam, no TFX).

DicomExampleGen's `unit='series'` (docs/design.md §14). `GroupSeries`
(`series.py`) asks a `SeriesConverter` for each file's `SliceHeader`
(`read_slice`, header only) and, per series, for the stacked `Series`
(`make_series`, headers only); conversion then asks it for the Example of a
series (`convert`), decoding and rendering one frame at a time with the same
steps as `unit='image'` (`decoders.iter_frames`, `display`) and keeping only
the PNGs.

The checks, in the order a file meets them:
  read_slice: empty or unreadable file, header (`not_dicom`,
    `invalid_dicom`), `series_filter` (skip `series_filtered`), a CT
    localizer (skip `localizer`), the Image Pixel module, SeriesInstanceUID
    (`missing_attribute`), position, orientation and pixel spacing of every
    frame (`no_geometry`), size limits per file (`too_large`);
  make_series: fewer slices than `min_slices` (skip `too_few_slices`);
    files that differ in Rows/Columns, pixel type, patient or study
    (`inconsistent_series`); `max_decoded_bytes` for the whole series
    (`too_large`); orientation, pixel spacing and positions
    (`geometry.stack`: `inconsistent_series`, `irregular_spacing`);
  the join: files that disagree on the table key (`inconsistent_series`);
  convert: pixel data, decoding (as `unit='image'`), two slices at one
    position with different pixels (`inconsistent_series`).
Every file of a series shares the series' outcome.
"""

import hashlib
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pydicom import datadict
from pydicom import multival
from pydicom.dataset import Dataset

from image_example_gen import codecs
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import table_values
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import converter as converter_lib
from image_example_gen.dicom import decoders
from image_example_gen.dicom import display
from image_example_gen.dicom import geometry
from image_example_gen.dicom import integrity
from image_example_gen.dicom import metadata
from image_example_gen.dicom import series as series_lib

UNITS = ('image', 'series')
# Default `min_slices`: the fewest slices whose spacing can be checked for
# regularity (two gaps).
DEFAULT_MIN_SLICES = 3
# Image Type value that marks a CT localizer (PS3.3 C.8.2.1.1.1, value 3;
# also a defined term of enhanced CT and MR images, C.8.16.1).
LOCALIZER = 'LOCALIZER'
_FILTER_VRS = frozenset(('SQ', 'OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN'))

SeriesFilter = Tuple[Tuple[str, re.Pattern], ...]


def check_unit(unit: Any) -> None:
  if unit not in UNITS:
    raise ValueError(f'unit must be one of {UNITS}, got {unit!r}.')


def check_min_slices(min_slices: Any) -> None:
  if (isinstance(min_slices, bool) or not isinstance(min_slices, int) or
      min_slices < 2):
    raise ValueError('min_slices must be an int of at least 2 (a volume '
                     f'needs a slice spacing), got {min_slices!r}.')


def check_spacing_tolerance(tolerance: Any) -> None:
  if (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
      or not 0 <= tolerance < 1):
    raise ValueError(f'spacing_tolerance must be a number in [0, 1), got '
                     f'{tolerance!r}.')


def compile_series_filter(
    series_filter: Optional[Mapping[str, str]]) -> SeriesFilter:
  """(keyword, compiled regex) pairs; ValueError naming what is wrong.

  Keys are data set keywords of pydicom's dictionary whose values are not
  sequences or binary data; values are Python regular expressions. Values
  are only matched, never exported, so any attribute may be used (e.g.
  SeriesDescription, which PS3.15 protects).
  """
  if not series_filter:
    return ()
  if not isinstance(series_filter, Mapping):
    raise ValueError('series_filter must be a dict of DICOM keyword -> '
                     f'regular expression, got {series_filter!r}.')
  compiled = []
  for keyword, pattern in sorted(series_filter.items()):
    tag = (datadict.tag_for_keyword(keyword)
           if isinstance(keyword, str) else None)
    if tag is None or tag >> 16 in (0x0000, 0x0002):
      raise ValueError(f'series_filter key {keyword!r} is not a DICOM data '
                       'set keyword.')
    if set(datadict.dictionary_VR(tag).split(' or ')) & _FILTER_VRS:
      raise ValueError(f'series_filter key {keyword!r} holds a sequence or '
                       'binary data: it cannot be matched as text.')
    if not isinstance(pattern, str):
      raise ValueError(f'series_filter[{keyword!r}] must be a regular '
                       f'expression string, got {pattern!r}.')
    try:
      compiled.append((keyword, re.compile(pattern)))
    except re.error as e:
      raise ValueError(f'series_filter[{keyword!r}] = {pattern!r} is not a '
                       f'regular expression: {e}.') from e
  return tuple(compiled)


def attribute_text(ds: Dataset, keyword: str) -> str:
  """An attribute's value as text; values of a multi-valued one joined by
  a backslash, as DICOM stores them; '' when absent."""
  value = ds.get(keyword)
  if value is None:
    return ''
  if isinstance(value, (multival.MultiValue, list, tuple)):
    return '\\'.join(str(v) for v in value)
  return str(value)


def filter_mismatch(ds: Dataset, series_filter: SeriesFilter) -> str:
  """'' if `ds` matches every pattern (`re.search`), else which did not.

  The detail names the keyword and the pattern, never the value.
  """
  for keyword, pattern in series_filter:
    if not pattern.search(attribute_text(ds, keyword)):
      return f'{keyword} does not match {pattern.pattern!r}'
  return ''


def is_localizer(ds: Dataset) -> bool:
  """Whether Image Type (0008,0008) value 3 is LOCALIZER."""
  values = attribute_text(ds, 'ImageType').upper().split('\\')
  return LOCALIZER in [v.strip() for v in values[2:3]]


def _pixel_type(ds: Dataset) -> Tuple[int, int, int, int, str]:
  return (int(ds.BitsAllocated), int(ds.BitsStored),
          int(ds.PixelRepresentation), int(ds.SamplesPerPixel),
          str(ds.PhotometricInterpretation))


def _frame_bytes(ds: Dataset) -> int:
  return (ds.Rows * ds.Columns * ds.SamplesPerPixel *
          -(-int(ds.BitsAllocated) // 8))


def _consistent(headers: Sequence[series_lib.SliceHeader],
                field: str, what: str) -> None:
  """Raises `inconsistent_series` unless every header has one `field`."""
  values = sorted({getattr(h, field) for h in headers}, key=str)
  if len(values) > 1:
    shown = ', '.join(map(str, values[:3])) if field in (
        'shape', 'pixel_type') else f'{len(values)} different values'
    raise rejects.RejectError(
        rejects.INCONSISTENT_SERIES, f'the files of the series differ in '
        f'{what}: {shown}')


class SeriesConverter(conversion.FileConverter, series_lib.SliceReader):
  """Reads, groups, checks, decodes and renders one DICOM series."""

  def __init__(self, key_source: Optional[str], attributes: Sequence[str],
               options: display.PixelOptions, limits: limits_lib.SizeLimits,
               salt: str, min_slices: int = DEFAULT_MIN_SLICES,
               spacing_tolerance: float = geometry.DEFAULT_SPACING_TOLERANCE,
               series_filter: Optional[Mapping[str, str]] = None,
               burned_in_annotation: str = burned_in.CROP,
               key_folder: str = ''):
    """Configures the converter.

    Args:
      key_source: the DICOM keyword that joins a series to the metadata
        table, read from every file of the series; None without a table.
      attributes: the header attributes exported as `dicom/*` (those of the
        series' first slice).
      options: how slices are rendered.
      limits: size limits; `max_decoded_bytes` applies to the whole series.
      salt: the HMAC salt of the keyed hashes.
      min_slices: series with fewer slices are skipped (`too_few_slices`).
      spacing_tolerance: how much gaps between slices may differ.
      series_filter: keyword -> regex; files that do not match every one are
        skipped (`series_filtered`).
      burned_in_annotation: what happens to pixels that may show PHI
        (`burned_in.POLICIES`), file by file as with `unit='image'`.
      key_folder: the table's folder below input_base (`table_keys`).
    """
    check_min_slices(min_slices)
    check_spacing_tolerance(spacing_tolerance)
    self._key_source = key_source
    self._attributes = tuple(attributes)
    self._options = options
    self._limits = limits
    self._salt = salt
    self._min_slices = min_slices
    self._spacing_tolerance = float(spacing_tolerance)
    self._series_filter = compile_series_filter(series_filter)
    self._burned_in_annotation = burned_in_annotation
    self._key_folder = key_folder

  def _hash(self, ds: Dataset, keyword: str, namespace: str) -> str:
    value = str(ds.get(keyword) or '').strip()
    return keys.keyed_hash(value, self._salt, namespace) if value else ''

  def sniff(self, head: bytes) -> bool:
    return converter_lib.is_dicom_head(head)

  def read_slice(self, item: listing.ListedFile) -> series_lib.SliceHeader:
    if item.size == 0:
      raise rejects.RejectError(rejects.EMPTY_FILE)
    with converter_lib.opened(item) as f:
      ds = converter_lib.read_header(f)
    mismatch = filter_mismatch(ds, self._series_filter)
    if mismatch:
      raise rejects.RejectError(rejects.SERIES_FILTERED, mismatch)
    if is_localizer(ds):
      raise rejects.RejectError(rejects.LOCALIZER,
                                f'ImageType {attribute_text(ds, "ImageType")}')
    reason = integrity.check_pixel_attributes(ds)
    if reason:
      raise rejects.RejectError(reason, 'Image Pixel module incomplete')
    pixel_rule = burned_in.decide(ds, self._burned_in_annotation)
    if pixel_rule.outcome == burned_in.REJECTED:
      raise rejects.RejectError(rejects.BURNED_IN_ANNOTATION,
                                pixel_rule.detail, pixel_rule.tallies)
    series_key = self._hash(ds, 'SeriesInstanceUID', 'series')
    if not series_key:
      raise rejects.RejectError(rejects.MISSING_ATTRIBUTE,
                                'no SeriesInstanceUID: no series to join')
    try:
      planes = geometry.planes(ds)
    except geometry.GeometryError as e:
      raise rejects.RejectError(e.reason, e.detail) from e
    self._limits.check_pixels(ds.Columns, ds.Rows)
    self._limits.check_frames(len(planes), _frame_bytes(ds))
    return series_lib.SliceHeader(
        file=item, series_key=series_key,
        study_key=self._hash(ds, 'StudyInstanceUID', 'study'),
        patient_key=self._hash(ds, 'PatientID', 'patient'),
        join_key=(converter_lib.join_key_of(ds, item, self._key_source,
                                            self._key_folder)
                  if self._key_source else None),
        planes=tuple(planes), shape=(int(ds.Rows), int(ds.Columns)),
        pixel_type=_pixel_type(ds),
        decoded_bytes=len(planes) * _frame_bytes(ds))

  def make_series(
      self, headers: Sequence[series_lib.SliceHeader]) -> series_lib.Series:
    headers = sorted(headers, key=lambda h: h.file.rel_path)
    files = tuple(h.file for h in headers)
    first = headers[0]
    keyed = dict(series_key=first.series_key, study_key=first.study_key,
                 patient_key=first.patient_key)
    frames = [(i, frame) for i, h in enumerate(headers)
              for frame in range(len(h.planes))]
    try:
      if len(frames) < self._min_slices:
        raise rejects.RejectError(
            rejects.TOO_FEW_SLICES,
            f'{len(frames)} slice(s), min_slices is {self._min_slices}')
      _consistent(headers, 'shape', 'Rows/Columns')
      _consistent(headers, 'pixel_type', 'pixel type (BitsAllocated, '
                  'BitsStored, PixelRepresentation, SamplesPerPixel, '
                  'PhotometricInterpretation)')
      _consistent(headers, 'study_key', 'StudyInstanceUID')
      _consistent(headers, 'patient_key', 'PatientID')
      decoded = sum(h.decoded_bytes for h in headers)
      if decoded > self._limits.max_decoded_bytes:
        raise rejects.RejectError(
            rejects.TOO_LARGE,
            f'the series\' {len(frames):,} slices decode to {decoded:,} '
            f'bytes, above max_decoded_bytes='
            f'{self._limits.max_decoded_bytes:,}')
      try:
        volume = geometry.stack(
            [headers[i].planes[frame] for i, frame in frames],
            self._spacing_tolerance)
      except geometry.GeometryError as e:
        raise rejects.RejectError(e.reason, e.detail) from e
    except rejects.RejectError as e:
      return series_lib.Series(files=files,
                               reject=(e.reason, e.detail, e.tallies), **keyed)
    return series_lib.Series(
        files=files, slices=tuple(frames[i] for i in volume.order),
        duplicates=tuple((frames[a], frames[b])
                         for a, b in volume.duplicates),
        volume=volume,
        join_keys=tuple(sorted({h.join_key for h in headers}, key=str)),
        **keyed)

  def join_key(self, unit: series_lib.Series) -> Optional[str]:
    return unit.join_key()

  def convert(self, unit: series_lib.Series,
              row: Optional[table_values.Row]) -> conversion.Converted:
    unit.join_key()  # Raises the unit's reject, as the join does.
    slot_of = {slice_: i for i, slice_ in enumerate(unit.slices)}
    checked = {frame for pair in unit.duplicates for frame in pair}
    wanted: Dict[int, List[int]] = {}
    for file_index, frame in (*unit.slices, *(d for _, d in unit.duplicates)):
      wanted.setdefault(file_index, []).append(frame)
    # Each PNG goes into the Example as soon as the slices before it are in:
    # one copy of the volume's PNGs, never a list of them beside it.
    volume = example.Example()
    encoded = volume.features.feature[example.IMAGE_ENCODED].bytes_list.value
    pending: Dict[int, bytes] = {}
    digests: Dict[Tuple[int, int], bytes] = {}
    first_ds, shapes, repaired, tallies = None, set(), '', []
    for file_index in sorted(wanted, key=lambda i: min(
        slot_of.get((i, frame), len(slot_of)) for frame in wanted[i])):
      with converter_lib.opened(unit.files[file_index]) as f:
        ds = converter_lib.read_header(f)
        pixel_data_offset = f.tell()
        # Decided again from the header read_slice checked: crop or keep.
        pixel_rule = burned_in.decide(ds, self._burned_in_annotation)
        tallies.extend(pixel_rule.tallies)
        with integrity.decode_errors_as_rejects():
          repaired = integrity.check_pixel_data(f, ds, pixel_data_offset) or (
              repaired)
          f.seek(0)
          for frame in decoders.iter_frames(f, ds, self._options,
                                            sorted(set(wanted[file_index])),
                                            pixel_rule.regions):
            slice_ = (file_index, frame.index)
            shapes.add((frame.pixels.shape, frame.bit_depth))
            if slice_ in checked:
              digests[slice_] = hashlib.blake2b(
                  frame.pixels.tobytes(), digest_size=16).digest()
            if slice_ in slot_of:
              pending[slot_of[slice_]] = codecs.encode_png(frame.pixels)
            while len(encoded) in pending:
              encoded.append(pending.pop(len(encoded)))
      if file_index == unit.slices[0][0]:
        first_ds = display.frame_dataset(ds, unit.slices[0][1])
    for kept, duplicate in unit.duplicates:
      if digests[kept] != digests[duplicate]:
        raise rejects.RejectError(
            rejects.INCONSISTENT_SERIES,
            f'{unit.files[kept[0]].rel_path} (frame {kept[1]}) and '
            f'{unit.files[duplicate[0]].rel_path} (frame {duplicate[1]}) '
            'lie at one position with different pixels')
    if len(shapes) > 1:
      raise rejects.RejectError(
          rejects.INCONSISTENT_SERIES,
          f'the slices render to {len(shapes)} different shapes or depths')
    ((shape, bit_depth),) = shapes
    features = self._label_features(unit, row)
    features.update(metadata.extract(first_ds, self._attributes))
    features.update(self._volume_features(unit, len(encoded), shape,
                                          bit_depth))
    example.add_features(volume, features)
    return conversion.Converted([volume], repaired=repaired,
                                tallies=tuple(tallies))

  def _volume_features(self, unit: series_lib.Series, depth: int,
                       shape: Tuple[int, ...],
                       bit_depth: int) -> Dict[str, Any]:
    """Every feature of the volume but its PNGs."""
    volume = unit.volume
    features = {
        example.IMAGE_FORMAT: 'png',
        example.IMAGE_DEPTH: depth,
        example.IMAGE_HEIGHT: shape[0],
        example.IMAGE_WIDTH: shape[1],
        example.IMAGE_CHANNELS: 1 if len(shape) == 2 else shape[2],
        example.IMAGE_BIT_DEPTH: bit_depth,
        example.VOLUME_SPACING: [float(v) for v in volume.spacing],
        example.VOLUME_ORIGIN: [float(v) for v in volume.origin],
        example.VOLUME_DIRECTION: [float(v) for v in volume.direction],
        example.SERIES_KEY: unit.series_key,
    }
    if unit.study_key:
      features[example.STUDY_KEY] = unit.study_key
    return features

  def _label_features(self, unit: series_lib.Series,
                      row: Optional[table_values.Row]) -> Dict[str, Any]:
    """Label, extra columns and patient key (the table's group, else the
    PatientID; a series without either is its own patient)."""
    features = {}
    patient_key = unit.patient_key
    if row is not None:
      if row.labels:
        features[example.LABEL] = list(row.labels)
      features.update(row.extras)
      if row.group is not None:
        patient_key = keys.keyed_hash(row.group, self._salt, 'patient')
    features[example.PATIENT_KEY] = patient_key or unit.series_key
    return features
