"""Grouping DICOM files into series, in Beam (DicomExampleGen `unit='series'`).

`GroupSeries` turns the listed files into one unit of conversion per series
(`Series`, a `conversion.FileGroup`) before the table join:

  files --Reshuffle--> ReadHeaders --GroupByKey(keyed hash of the series)-->
    MakeSeries --> Series units
             \\--> one-file units of the files that are no part of a series

A worker reads one file's header at a time (pixels are not read) into a
small `SliceHeader`, keyed by the HMAC of its SeriesInstanceUID; the
GroupByKey brings one series' headers (never the data set's) to one worker,
which validates and sorts them into a `Series` (`volume.SeriesConverter`
says how). A file that cannot be part of a series (not DICOM, no geometry,
filtered out) becomes a one-file unit that carries its reject or skip, so
that every file still ends as an Example membership, a reject or a skip, all
counted where conversion counts them.

No TFX or TensorFlow here: Beam workers unpickle these steps.
"""

import dataclasses
from typing import Iterator, Optional, Sequence, Tuple

import apache_beam as beam

from image_example_gen import conversion
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen import selection
from image_example_gen.dicom import geometry

_GROUPED = 'grouped'
_SINGLE = 'single'


@dataclasses.dataclass(frozen=True)
class SliceHeader:
  """What grouping needs of one file's header (no pixel data).

  Attributes:
    file: the file.
    series_key: HMAC of its SeriesInstanceUID (the grouping key).
    study_key: HMAC of its StudyInstanceUID, '' without one.
    patient_key: HMAC of its PatientID, '' without one.
    join_key: its key in the metadata table, None without a table or key.
    planes: the plane of each of its frames.
    shape: (Rows, Columns).
    pixel_type: (BitsAllocated, BitsStored, PixelRepresentation,
      SamplesPerPixel, PhotometricInterpretation).
    decoded_bytes: the bytes its frames decode to.
  """
  file: listing.ListedFile
  series_key: str
  study_key: str
  patient_key: str
  join_key: Optional[str]
  planes: Tuple[geometry.Plane, ...]
  shape: Tuple[int, int]
  pixel_type: Tuple[int, int, int, int, str]
  decoded_bytes: int


@dataclasses.dataclass(frozen=True)
class Series(conversion.FileGroup):
  """A unit of conversion: the files of one series, stacked; or one file
  that is no part of a series, with its reject.

  Attributes:
    files: the series' files, by relative path.
    slices: (index into `files`, frame index) of each slice of the volume,
      by increasing position along the normal.
    duplicates: pairs of (file, frame) that share a position: the first is
      in `slices`, the second must have the same pixels.
    volume: the stacked geometry.
    series_key, study_key, patient_key: as in `SliceHeader` ('' for a file
      without a series).
    join_keys: the distinct table keys of the files.
    reject: (reason, detail, summary tallies) when the unit cannot become an
      Example (the arguments of its `rejects.RejectError`).
  """
  slices: Tuple[Tuple[int, int], ...] = ()
  duplicates: Tuple[Tuple[Tuple[int, int], Tuple[int, int]], ...] = ()
  volume: Optional[geometry.Volume] = None
  series_key: str = ''
  study_key: str = ''
  patient_key: str = ''
  join_keys: Tuple[Optional[str], ...] = ()
  reject: Optional[Tuple[str, str, Tuple[str, ...]]] = None

  @classmethod
  def rejected(cls, file: listing.ListedFile, reason: str, detail: str,
               tallies: Tuple[str, ...] = ()) -> 'Series':
    """A one-file unit that ends as a reject (or skip) for `reason`."""
    return cls(files=(file,), reject=(reason, detail, tallies))

  def join_key(self) -> Optional[str]:
    """The series' table key; raises its reject, or if the files disagree."""
    if self.reject:
      raise rejects.RejectError(*self.reject)
    if len(self.join_keys) > 1:
      raise rejects.RejectError(
          rejects.INCONSISTENT_SERIES,
          f'the {len(self.files)} files of the series have '
          f'{len(self.join_keys)} different table keys')
    return self.join_keys[0] if self.join_keys else None


class _ReadHeadersFn(beam.DoFn):
  """(split index, file) -> ((split index, series key), SliceHeader), or a
  rejected one-file unit."""

  def __init__(self, converters: Sequence['SliceReader']):
    self._converters = tuple(converters)

  def setup(self):
    for converter in self._converters:
      converter.setup()

  def process(self, indexed) -> Iterator:
    index, item = indexed
    if item.problem:
      yield beam.pvalue.TaggedOutput(_SINGLE, (index, Series.rejected(
          item, rejects.UNREADABLE, item.problem)))
      return
    converter = self._converters[index]
    try:
      if (selection.may_be_junk(item.rel_path) and
          not converter.sniff(conversion.read_head(item))):
        raise rejects.RejectError(rejects.NON_IMAGE_FILE)
      header = converter.read_slice(item)
    except rejects.RejectError as e:
      yield beam.pvalue.TaggedOutput(
          _SINGLE, (index, Series.rejected(item, e.reason, e.detail,
                                           e.tallies)))
      return
    yield (index, header.series_key), header


class _MakeSeriesFn(beam.DoFn):
  """One series' headers -> (split index, Series)."""

  def __init__(self, converters: Sequence['SliceReader']):
    self._converters = tuple(converters)

  def process(self, grouped) -> Iterator[Tuple[int, Series]]:
    (index, _), headers = grouped
    yield index, self._converters[index].make_series(list(headers))


class SliceReader:
  """What `GroupSeries` asks of a converter (`volume.SeriesConverter`)."""

  def setup(self) -> None:
    """Per-worker initialisation."""

  def sniff(self, head: bytes) -> bool:
    """Whether a file starting with `head` may be a slice (as
    `conversion.FileConverter.sniff`)."""
    raise NotImplementedError

  def read_slice(self, item: listing.ListedFile) -> SliceHeader:
    """The file's header; raises RejectError if it is no part of a series."""
    raise NotImplementedError

  def make_series(self, headers: Sequence[SliceHeader]) -> Series:
    """The series of these headers (all with one series key)."""
    raise NotImplementedError


@beam.ptransform_fn
def GroupSeries(  # pylint: disable=invalid-name
    files: beam.PCollection,
    converters: Sequence[SliceReader]) -> beam.PCollection:
  """(split index, ListedFile) -> (split index, Series), one per series.

  Args:
    files: the listed files.
    converters: per input split, how a file's header is read and a series
      made of headers.

  Returns:
    A unit per series and a one-file unit per file that is no part of one.
  """
  headers = (files
             # Listing yields every file from one bundle: spread the reads.
             | 'Spread' >> beam.Reshuffle()
             | 'ReadHeaders' >> beam.ParDo(
                 _ReadHeadersFn(converters)).with_outputs(_SINGLE,
                                                          main=_GROUPED))
  series = (headers[_GROUPED]
            | 'BySeries' >> beam.GroupByKey()
            | 'MakeSeries' >> beam.ParDo(_MakeSeriesFn(converters)))
  return ((series, headers[_SINGLE])
          | 'Units' >> beam.Flatten())
