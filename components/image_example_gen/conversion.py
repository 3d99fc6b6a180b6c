"""The Beam transform both ExampleGens share: files in, Examples and rejects out.

A `FileConverter` turns one file into Examples, or raises
`rejects.RejectError`; it knows nothing of Beam. `ConvertFiles` lists the
files (`listing`), optionally joins each to its row of a metadata table
(`table_join`), spreads batches of files over the workers, and converts each
batch in one DoFn call. That call also serializes each Example, assigns its
output split (`splits`, TFX's hash-bucket rule), groups the records into
lists per split for the writer, and counts everything into one partial
`summary.IngestStats` per bundle, so that a file costs no Beam step of its
own after listing. Every file ends as its Examples in one split or as one
reject record (or skip record).

The unit of conversion is a file, or, when the executor groups files before
the join (`group`), a `FileGroup`: files converted together into one Example
(a DICOM series). A group counts as its files: all of them converted, or all
rejected with the group's reason.
"""

import abc
import contextlib
import dataclasses
import logging
import os
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)
import warnings

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.utils import windowed_value

from image_example_gen import example as example_lib
from image_example_gen import listing
from image_example_gen import rejects as rejects_lib
from image_example_gen import splits as splits_lib
from image_example_gen import summary
from image_example_gen import table_join

REJECTS = 'rejects'
STATS = 'stats'
DIGESTS = 'digests'
SPLIT_TAG_PREFIX = 'split:'


@dataclasses.dataclass(frozen=True)
class FileGroup:
  """Files converted together into one Example (e.g. a DICOM series).

  Attributes:
    files: the files, in a deterministic order (the first names the group
      in logs).
  """
  files: Tuple[listing.ListedFile, ...]

  @property
  def rel_path(self) -> str:
    return self.files[0].rel_path

  @property
  def size(self) -> int:
    return sum(f.size for f in self.files)

  @property
  def problem(self) -> str:
    return ''


Unit = Union[listing.ListedFile, FileGroup]
# (input split index, file or group, its join result or None).
Item = Tuple[int, Unit, Optional['table_join.JoinResult']]


def files_of(unit: Unit) -> Tuple[listing.ListedFile, ...]:
  """The input files a unit of conversion stands for."""
  return unit.files if isinstance(unit, FileGroup) else (unit,)

_METRICS_NAMESPACE = 'image_example_gen'
_PROGRESS_INTERVAL_S = 30.0
# Output lists per split are handed to the writer at this size.
_FLUSH_BYTES = 8 * 2**20
# Loggers of the decoding libraries: their messages about files we reject on
# purpose (often with tracebacks) are demoted to DEBUG while converting.
_LIBRARY_LOGGERS = ('pydicom', 'pylibjpeg', 'openjpeg', 'libjpeg', 'rle',
                    'jpeg_ls', 'PIL')


@dataclasses.dataclass
class Converted:
  """What became of one file.

  Attributes:
    examples: its Examples (several for a multi-frame DICOM).
    repaired: '' or why the file decoded only after a repair (e.g. a missing
      sequence delimiter); counted in the summary's `repaired_files`.
    content_digest: '' or a digest of the file's bytes, for counting
      byte-identical files (image folders).
    tallies: names counted in the summary, handed to the executor's
      `summary_entries` (e.g. DICOM's 'cropped_to_regions/<rule>').
  """
  examples: List[example_lib.Example]
  repaired: str = ''
  content_digest: str = ''
  tallies: Tuple[str, ...] = ()


class FileConverter(abc.ABC):
  """Turns one input file into Examples. Must be picklable (Beam ships it)."""

  def setup(self) -> None:
    """Per-worker initialisation (imports, codecs); called once per worker."""

  def join_key(self, item: listing.ListedFile) -> Optional[str]:
    """The file's key in its metadata table (`table_keys`); None: it has none.

    Raises:
      rejects.RejectError: the file cannot be joined.
    """
    del item
    return None

  def name_label(self, item: listing.ListedFile) -> Optional[str]:
    """The file's class from its name; None: labels come from elsewhere.

    Raises:
      rejects.RejectError: the name holds no class (`no_label_in_name`).
    """
    del item
    return None

  @abc.abstractmethod
  def convert(self, item: Unit, row: Optional[table_join.Row]) -> Converted:
    """The Examples of `item`, with its table row if a table is joined.

    Raises:
      rejects.RejectError: the file cannot become an Example.
    """


def open_file(path: str):
  """Opens `path` on any Beam filesystem, never decompressing by extension."""
  return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_file(item: listing.ListedFile) -> bytes:
  """The whole file; rejects it (`unreadable`) if it changed since listing."""
  try:
    with open_file(item.path) as f:
      data = f.read()
  except OSError as e:
    raise rejects_lib.RejectError(rejects_lib.UNREADABLE,
                                  f'{type(e).__name__}: {e}') from e
  check_size(item, len(data))
  return data


def check_size(item: listing.ListedFile, size: int) -> None:
  """Rejects (`unreadable`) a file whose size changed since it was listed."""
  if size != item.size:
    raise rejects_lib.RejectError(
        rejects_lib.UNREADABLE,
        f'the file changed while the job ran: {item.size} bytes when listed, '
        f'{size} when read')


@contextlib.contextmanager
def _library_messages_at_debug() -> Iterator[None]:
  """Demotes decoding libraries' log records and warnings to DEBUG."""
  demote = _DemoteFilter()
  loggers = [logging.getLogger(name)
             for name in list(logging.Logger.manager.loggerDict)
             if name.split('.')[0] in _LIBRARY_LOGGERS]
  for logger in loggers:
    logger.addFilter(demote)
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      yield
    for warning in caught:
      logging.debug('%s: %s', warning.category.__name__, warning.message)
  finally:
    for logger in loggers:
      logger.removeFilter(demote)


class _DemoteFilter(logging.Filter):
  """Lets a record through at DEBUG, if its logger shows DEBUG at all."""

  def filter(self, record: logging.LogRecord) -> bool:
    record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _silence_gdcm() -> None:
  """GDCM prints its warnings and errors to stderr, not to a logger."""
  try:
    import gdcm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  gdcm.Trace.WarningOff()
  gdcm.Trace.ErrorOff()


def _first_bytes(example: example_lib.Example, key: str) -> bytes:
  feature = example.features.feature.get(key)
  return feature.bytes_list.value[0] if feature and feature.bytes_list.value else b''


class _ConvertBatchFn(beam.DoFn):
  """Converts batches of (file, join result); routes Examples by split."""

  def __init__(self, converters: Sequence[FileConverter],
               assigners: Sequence[splits_lib.SplitAssigner], group_key: str):
    self._converters = tuple(converters)
    self._assigners = tuple(assigners)
    self._group_key = group_key
    self._files = Metrics.counter(_METRICS_NAMESPACE, 'files_read')
    self._bytes = Metrics.counter(_METRICS_NAMESPACE, 'bytes_read')
    self._examples = Metrics.counter(_METRICS_NAMESPACE, 'examples_written')
    self._rejected = Metrics.counter(_METRICS_NAMESPACE, 'files_rejected')

  def setup(self):
    _silence_gdcm()
    for converter in self._converters:
      converter.setup()
    self._start = self._last_report = time.monotonic()
    self._done = self._failed = 0

  def start_bundle(self):
    self._stats = summary.IngestStats()
    self._buffers: Dict[str, List[bytes]] = {}
    self._buffered = 0

  def process(self, batch: Sequence[Item]) -> List[Any]:
    outputs, digests = [], []
    with _library_messages_at_debug():
      for index, item, joined in batch:
        self._files.inc(len(files_of(item)))
        result = self._convert_one(self._converters[index], item, joined)
        if isinstance(result, list):  # Rejects, one per file.
          outputs.extend(beam.pvalue.TaggedOutput(REJECTS, reject)
                         for reject in result)
          continue
        split = self._add(self._assigners[index], item, result)
        if result.content_digest:
          digests.append((result.content_digest, split))
        if self._buffered >= _FLUSH_BYTES:
          outputs.extend(self._flush())
    if digests:
      outputs.append(beam.pvalue.TaggedOutput(DIGESTS, digests))
    self._report_progress()
    return outputs

  def finish_bundle(self):
    for output in self._flush():
      yield beam.pvalue.TaggedOutput(output.tag, _in_global_window(output.value))
    yield _in_global_window(self._stats)

  def _convert_one(self, converter: FileConverter, item: Unit,
                   joined: Optional[table_join.JoinResult]):
    """Converted, or the Rejects of the unit's files."""
    try:
      if item.problem:
        raise rejects_lib.RejectError(rejects_lib.UNREADABLE, item.problem)
      row = None
      if joined is not None:
        row = joined.row_or_raise()
      return converter.convert(item, row)
    except rejects_lib.RejectError as e:
      self._stats.tally(e.tallies)
      return self._reject(item, e.reason, e.detail)
    except Exception as e:  # pylint: disable=broad-except
      # A bug or an exotic file: one reject, never a failed job.
      logging.warning('Unexpected %s converting %s: %s (traceback at DEBUG)',
                      type(e).__name__, item.rel_path, e)
      logging.debug('Traceback of %s', item.rel_path, exc_info=True)
      return self._reject(item, rejects_lib.UNDECODABLE,
                          f'{type(e).__name__}: {e}')

  def _add(self, assigner: splits_lib.SplitAssigner, item: Unit,
           result: Converted) -> str:
    """Buffers the Examples of a converted unit; returns their split."""
    split = ''
    labels = []
    first = result.examples[0]
    keys = [_first_bytes(first, key) for key in (
        example_lib.IMAGE_KEY, self._group_key, example_lib.SERIES_KEY)]
    del first
    for i in range(len(result.examples)):
      # Each Example is released once serialized: a volume's can be hundreds
      # of MB, and is not needed twice.
      example, result.examples[i] = result.examples[i], None
      label = example.features.feature.get(example_lib.LABEL)
      if label is not None:
        labels.extend(label.int64_list.value)
      serialized = example.SerializeToString(deterministic=True)
      example_split = assigner.assign(example, serialized)
      del example
      if split and example_split != split:
        raise RuntimeError(
            f'The Examples of {item.rel_path} were assigned to splits {split} '
            f'and {example_split}: the partition feature must be the same '
            'for every Example of a file.')
      split = example_split
      self._buffers.setdefault(split, []).append(serialized)
      self._buffered += len(serialized)
    files = len(files_of(item))
    image_key, group_key, series_key = keys
    self._stats.add_file(split, item.size, image_key, group_key, labels,
                         len(result.examples), result.repaired, files,
                         series_key)
    self._stats.tally(result.tallies)
    self._examples.inc(len(result.examples))
    self._bytes.inc(item.size)
    self._done += files
    return split

  def _flush(self) -> Iterator[beam.pvalue.TaggedOutput]:
    for split, records in self._buffers.items():
      yield beam.pvalue.TaggedOutput(SPLIT_TAG_PREFIX + split, records)
    self._buffers = {}
    self._buffered = 0

  def _reject(self, item: Unit, reason: str,
              detail: str) -> List[rejects_lib.Reject]:
    """One Reject (or skip record) per file of `item`, counted."""
    files = files_of(item)
    if not rejects_lib.is_skip(reason):
      self._rejected.inc(len(files))
    Metrics.counter(_METRICS_NAMESPACE, f'rejects_{reason}').inc(len(files))
    self._failed += len(files)
    self._stats.add_reject(reason, len(files))
    logging.info('%s %s%s: %s (%s)',
                 'Skipped' if rejects_lib.is_skip(reason) else 'Rejected',
                 item.rel_path,
                 f' and {len(files) - 1} more files of its group'
                 if len(files) > 1 else '', reason, detail[:200])
    return [rejects_lib.Reject(f.rel_path, reason, detail) for f in files]

  def _report_progress(self) -> None:
    now = time.monotonic()
    if now - self._last_report >= _PROGRESS_INTERVAL_S:
      self._last_report = now
      total = self._done + self._failed
      logging.info('Worker %d: %d files (%d converted, %d rejected), '
                   '%.1f files/s.', os.getpid(), total, self._done,
                   self._failed, total / (now - self._start))


def _in_global_window(value: Any) -> windowed_value.WindowedValue:
  return windowed_value.WindowedValue(
      value, window.GlobalWindow().max_timestamp(), (window.GlobalWindow(),))


class _ListFn(beam.DoFn):

  def __init__(self, input_base: str, excluded: Sequence[str]):
    self._input_base = input_base
    self._excluded = frozenset(excluded)

  def process(self, indexed_pattern: Tuple[int, str]):
    index, pattern = indexed_pattern
    for item in listing.list_files(self._input_base, pattern):
      if item.rel_path not in self._excluded:
        yield index, item


@beam.ptransform_fn
def ConvertFiles(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_base: str, patterns: Sequence[str],
    converters: Sequence[FileConverter],
    assigners: Sequence[splits_lib.SplitAssigner],
    join: Optional[Callable[[beam.PCollection], Dict[str, beam.PCollection]]]
    = None, excluded: Sequence[str] = (), batch_size: int = 32,
    group_key: str = '',
    group: Optional[Callable[[beam.PCollection], beam.PCollection]] = None
) -> Dict[str, beam.PCollection]:
  """Lists every input split pattern and converts every file.

  Args:
    pipeline: the Beam pipeline.
    input_base: the input folder (absolute path or URI).
    patterns: the input splits' globs below `input_base`.
    converters: per input split, what turns a file into Examples.
    assigners: per input split, the output split of each Example.
    join: if set, joins (split index, ListedFile) to a metadata table (a
      `table_join.JoinTable` applied to the listed files); its outputs other
      than 'items' are returned as they are.
    excluded: paths below `input_base` that are not inputs (a metadata file).
    batch_size: units per DoFn call (and per unit of work of a worker).
    group_key: the feature counted as `patients` in the summary.
    group: if set, turns the listed (split index, ListedFile) into (split
      index, unit) before the join, a unit being a `FileGroup` of files
      converted together (e.g. `dicom.series.GroupSeries`); the join and
      the converters then see units.

  Returns:
    `SPLIT_TAG_PREFIX + <split>`: lists of serialized Examples per output
    split; REJECTS: Reject records; STATS: one summary.IngestStats per
    bundle; DIGESTS: lists of (content digest, split); and the join's
    outputs.
  """
  files = (pipeline
           | 'Patterns' >> beam.Create(list(enumerate(patterns)))
           | 'List' >> beam.ParDo(_ListFn(input_base, excluded)))
  if group is not None:
    files = files | 'Group' >> group
  joined = {}
  if join is None:
    items = files | 'NoRow' >> beam.Map(lambda indexed: (*indexed, None))
  else:
    joined = dict(files | 'Join' >> join)
    items = joined.pop('items')
  names = sorted({name for assigner in assigners for name in assigner.names})
  converted = (
      items
      | 'Batch' >> beam.BatchElements(min_batch_size=batch_size,
                                      max_batch_size=batch_size)
      # Listing yields every file from one bundle: spread them over workers.
      | 'Reshuffle' >> beam.Reshuffle()
      | 'Convert' >> beam.ParDo(
          _ConvertBatchFn(converters, assigners, group_key)).with_outputs(
              REJECTS, DIGESTS, *(SPLIT_TAG_PREFIX + n for n in names),
              main=STATS))
  outputs = {tag: converted[tag] for tag in
             (REJECTS, DIGESTS, *(SPLIT_TAG_PREFIX + n for n in names))}
  outputs[STATS] = converted[STATS]
  outputs.update(joined)
  return outputs
