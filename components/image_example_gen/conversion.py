"""The Beam transform both ExampleGens share: files in, Examples and rejects out.

A `FileConverter` turns one file into Examples, or raises
`rejects.RejectError`; it knows nothing of Beam. `ConvertFiles` lists the
files (`listing`), skips junk by path (`selection`), optionally joins each
file to its row of a metadata table (`table_join`), groups the files into
batches by a keyed hash of their paths, and converts each batch in one DoFn
call. That call also skips junk by content, serializes each Example, assigns
its output split (`splits`, TFX's hash-bucket rule), groups the records into
lists per split for the writer, and counts everything into one partial
`summary.IngestStats` per bundle, so that a file costs no Beam step of its
own after listing. Every file ends as its Examples in one split, one reject
record or one skip record.

The unit of conversion is a file, or, when the executor groups files before
the join (`group`), a `FileGroup`: files converted together into one Example
(a DICOM series). A group counts as its files: all of them converted, or all
rejected (or skipped) with the group's reason.

Record order. A batch holds the units whose keyed hash falls in one of
ceil(units / batch_size) buckets, in hash order, and the writer keeps the
order in which batches are converted: consecutive records of a split follow
neither class nor folder (a reader with a small shuffle buffer sees mixed
classes), and the same input and salt give the same order on a runner that
forms the same bundles (DirectRunner does). Only the listed files, not the
Examples, are grouped.

Progress. Beam's DirectRunner runs a pipeline to its end inside `run()` and
reports counters only for finished bundles (one per worker and stage here),
so the launching process cannot read live Beam counters. Instead each
conversion DoFn writes its running counts (a small JSON file, at most every
few seconds) under the run's progress folder, the lister writes how many
files it listed, and the launching process sums them (`console.Progress`).
"""

import abc
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)
import uuid
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
from image_example_gen import selection as selection_lib
from image_example_gen import splits as splits_lib
from image_example_gen import summary
from image_example_gen import table_join

REJECTS = 'rejects'
SKIPS = 'skips'
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
# How often a worker writes its running counts, at most.
_PROGRESS_INTERVAL_S = 5.0
# Progress files: per worker `<id>.json`, per input split `listed-<i>.json`.
LISTED_PREFIX = 'listed-'
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
    reencoded: the stored image is a re-encoding, not the file's own bytes
      (image folders; counted in the summary's `reencoded_files`).
  """
  examples: List[example_lib.Example]
  repaired: str = ''
  content_digest: str = ''
  tallies: Tuple[str, ...] = ()
  reencoded: bool = False


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
  def sniff(self, head: bytes) -> bool:
    """Whether a file starting with `head` may be an input of this converter.

    `head` is the file's first `selection.SNIFF_BYTES` bytes (fewer for a
    shorter file). Asked only for files whose name says 'not an image'
    (`selection.may_be_junk`): False skips the file as `non_image_file`.
    """

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


def read_head(item: listing.ListedFile) -> bytes:
  """The file's first `selection.SNIFF_BYTES`; rejects it if unreadable."""
  try:
    with open_file(item.path) as f:
      return f.read(selection_lib.SNIFF_BYTES)
  except OSError as e:
    raise rejects_lib.RejectError(rejects_lib.UNREADABLE,
                                  f'{type(e).__name__}: {e}') from e


def order_key(salt: str, rel_path: str) -> int:
  """A file's place in the written order: a keyed hash of its path."""
  digest = hmac.new(salt.encode('utf-8'), f'order\x00{rel_path}'.encode(
      'utf-8'), hashlib.sha256).digest()
  return int.from_bytes(digest[:8], 'big')


def write_progress(path: str, counts: Dict[str, int]) -> None:
  """Writes a progress file (any Beam filesystem); never fails the job."""
  try:
    with FileSystems.create(path) as f:
      f.write(json.dumps(counts).encode('utf-8'))
  except Exception:  # pylint: disable=broad-except
    logging.debug('Cannot write progress to %s', path, exc_info=True)


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


Records = List[Union[rejects_lib.Reject, rejects_lib.Skip]]
Outcome = Union[Converted, Records]


class _ConvertBatchFn(beam.DoFn):
  """Converts batches of (file, join result); routes Examples by split."""

  def __init__(self, converters: Sequence[FileConverter],
               assigners: Sequence[splits_lib.SplitAssigner], group_key: str,
               progress_dir: str):
    self._converters = tuple(converters)
    self._assigners = tuple(assigners)
    self._group_key = group_key
    self._progress_dir = progress_dir
    self._files = Metrics.counter(_METRICS_NAMESPACE, 'files_read')
    self._bytes = Metrics.counter(_METRICS_NAMESPACE, 'bytes_read')
    self._examples = Metrics.counter(_METRICS_NAMESPACE, 'examples_written')
    self._rejected = Metrics.counter(_METRICS_NAMESPACE, 'files_rejected')
    self._skipped = Metrics.counter(_METRICS_NAMESPACE, 'files_skipped')

  def setup(self):
    _silence_gdcm()
    for converter in self._converters:
      converter.setup()
    self._progress_path = os.path.join(self._progress_dir,
                                       f'{uuid.uuid4().hex}.json')
    self._last_report = time.monotonic()
    self._progress = {'converted': 0, 'rejected': 0, 'skipped': 0}

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
        if isinstance(result, list):  # A record per file.
          outputs.extend(beam.pvalue.TaggedOutput(
              SKIPS if isinstance(record, rejects_lib.Skip) else REJECTS,
              record) for record in result)
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
    write_progress(self._progress_path, self._progress)

  def _convert_one(self, converter: FileConverter, item: Unit,
                   joined: Optional[table_join.JoinResult]) -> Outcome:
    """Converted, or the records (rejects or skips) of the unit's files."""
    try:
      if item.problem:
        raise rejects_lib.RejectError(rejects_lib.UNREADABLE, item.problem)
      if (not isinstance(item, FileGroup) and
          selection_lib.may_be_junk(item.rel_path) and
          not converter.sniff(read_head(item))):
        raise rejects_lib.RejectError(rejects_lib.NON_IMAGE_FILE)
      row = None
      if joined is not None:
        row = joined.row_or_raise()
      return converter.convert(item, row)
    except rejects_lib.RejectError as e:
      self._stats.tally(e.tallies)
      return self._records(item, e.reason, e.detail)
    except Exception as e:  # pylint: disable=broad-except
      # A bug or an exotic file: one reject, never a failed job.
      logging.warning('Unexpected %s converting %s: %s (traceback at DEBUG)',
                      type(e).__name__, item.rel_path, e)
      logging.debug('Traceback of %s', item.rel_path, exc_info=True)
      return self._records(item, rejects_lib.UNDECODABLE,
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
                         series_key, result.reencoded)
    self._stats.tally(result.tallies)
    self._examples.inc(len(result.examples))
    self._bytes.inc(item.size)
    self._progress['converted'] += files
    return split

  def _flush(self) -> Iterator[beam.pvalue.TaggedOutput]:
    for split, records in self._buffers.items():
      yield beam.pvalue.TaggedOutput(SPLIT_TAG_PREFIX + split, records)
    self._buffers = {}
    self._buffered = 0

  def _records(self, item: Unit, reason: str, detail: str) -> Records:
    """One Reject, or Skip for a skip reason, per file of `item`, counted."""
    paths = [f.rel_path for f in files_of(item)]
    group = (f' and {len(paths) - 1} more files of its group'
             if len(paths) > 1 else '')
    if rejects_lib.is_skip(reason):
      self._skipped.inc(len(paths))
      self._progress['skipped'] += len(paths)
      self._stats.add_skip(reason, paths)
      logging.debug('Skipped %s%s: %s (%s)', item.rel_path, group, reason,
                    detail[:200])
      return [rejects_lib.Skip(path, reason, detail) for path in paths]
    self._rejected.inc(len(paths))
    Metrics.counter(_METRICS_NAMESPACE, f'rejects_{reason}').inc(len(paths))
    self._progress['rejected'] += len(paths)
    self._stats.add_reject(reason, paths)
    logging.info('Rejected %s%s: %s (%s)', item.rel_path, group, reason,
                 detail[:200])
    return [rejects_lib.Reject(path, reason, detail) for path in paths]

  def _report_progress(self) -> None:
    now = time.monotonic()
    if now - self._last_report >= _PROGRESS_INTERVAL_S:
      self._last_report = now
      write_progress(self._progress_path, self._progress)


def _in_global_window(value: Any) -> windowed_value.WindowedValue:
  return windowed_value.WindowedValue(
      value, window.GlobalWindow().max_timestamp(), (window.GlobalWindow(),))


class _ListFn(beam.DoFn):
  """Lists an input split's pattern; skips junk by path (no file is opened)."""

  def __init__(self, input_base: str, excluded: Sequence[str],
               selection: selection_lib.Selection, progress_dir: str):
    self._input_base = input_base
    self._excluded = frozenset(excluded)
    self._selection = selection
    self._progress_dir = progress_dir

  def start_bundle(self):
    self._stats = summary.IngestStats()

  def process(self, indexed_pattern: Tuple[int, str]):
    index, pattern = indexed_pattern
    listed = 0
    for item in listing.list_files(self._input_base, pattern):
      reason = (rejects_lib.METADATA_FILE if item.rel_path in self._excluded
                else self._selection.path_skip(item.rel_path))
      if reason:
        self._stats.add_skip(reason, [item.rel_path])
        yield beam.pvalue.TaggedOutput(
            SKIPS, rejects_lib.Skip(item.rel_path, reason))
      else:
        listed += 1
        yield index, item
    write_progress(
        os.path.join(self._progress_dir, f'{LISTED_PREFIX}{index}.json'),
        {'files': listed})

  def finish_bundle(self):
    yield beam.pvalue.TaggedOutput(STATS, _in_global_window(self._stats))


class _KeyByBatchFn(beam.DoFn):
  """(batch, (order, path, item)): ceil(files / batch_size) hash buckets."""

  def __init__(self, salt: str, batch_size: int):
    self._salt = salt
    self._batch_size = batch_size

  def process(self, item, num_files):
    order = order_key(self._salt, item[1].rel_path)
    batches = max(1, -(-num_files // self._batch_size))
    yield order % batches, (order, item[1].rel_path, item)


def _in_order(batch: Tuple[int, Any]) -> List[Item]:
  _, keyed = batch
  return [item for _, _, item in sorted(keyed, key=lambda k: k[:2])]


@beam.ptransform_fn
def ConvertFiles(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_base: str, patterns: Sequence[str],
    converters: Sequence[FileConverter],
    assigners: Sequence[splits_lib.SplitAssigner], salt: str,
    progress_dir: str,
    join: Optional[Callable[[beam.PCollection], Dict[str, beam.PCollection]]]
    = None, excluded: Sequence[str] = (),
    selection: selection_lib.Selection = selection_lib.Selection(),
    batch_size: int = 32, group_key: str = '',
    group: Optional[Callable[[beam.PCollection], beam.PCollection]] = None
) -> Dict[str, beam.PCollection]:
  """Lists every input split pattern and converts every file.

  Args:
    pipeline: the Beam pipeline.
    input_base: the input folder (absolute path or URI).
    patterns: the input splits' globs below `input_base`.
    converters: per input split, what turns a file into Examples.
    assigners: per input split, the output split of each Example.
    salt: the key of the hash that orders the files.
    progress_dir: where workers write their running counts.
    join: if set, joins (split index, ListedFile) to a metadata table (a
      `table_join.JoinTable` applied to the listed files); its outputs other
      than 'items' are returned as they are.
    excluded: paths below `input_base` that are not inputs (the metadata
      table): skipped as `metadata_file`.
    selection: which files are junk, by path.
    batch_size: units per DoFn call (and per unit of work of a worker), on
      average.
    group_key: the feature counted as `patients` in the summary.
    group: if set, turns the listed (split index, ListedFile) into (split
      index, unit) before the join, a unit being a `FileGroup` of files
      converted together (e.g. `dicom.series.GroupSeries`); the join and
      the converters then see units.

  Returns:
    `SPLIT_TAG_PREFIX + <split>`: lists of serialized Examples per output
    split; REJECTS: Reject records; SKIPS: Skip records; STATS:
    summary.IngestStats partials; DIGESTS: lists of (content digest, split);
    and the join's outputs.
  """
  listed = (pipeline
            | 'Patterns' >> beam.Create(list(enumerate(patterns)))
            | 'List' >> beam.ParDo(_ListFn(
                input_base, excluded, selection, progress_dir)).with_outputs(
                    SKIPS, STATS, main='files'))
  files = listed['files']
  if group is not None:
    files = files | 'Group' >> group
  joined = {}
  if join is None:
    items = files | 'NoRow' >> beam.Map(lambda indexed: (*indexed, None))
  else:
    joined = dict(files | 'Join' >> join)
    items = joined.pop('items')
  names = sorted({name for assigner in assigners for name in assigner.names})
  num_files = items | 'CountFiles' >> beam.combiners.Count.Globally()
  converted = (
      items
      # The group spreads the batches over the workers, in hash order.
      | 'KeyByBatch' >> beam.ParDo(_KeyByBatchFn(salt, batch_size),
                                   beam.pvalue.AsSingleton(num_files))
      | 'GroupBatches' >> beam.GroupByKey()
      | 'InOrder' >> beam.Map(_in_order)
      | 'Convert' >> beam.ParDo(
          _ConvertBatchFn(converters, assigners, group_key,
                          progress_dir)).with_outputs(
              REJECTS, SKIPS, DIGESTS,
              *(SPLIT_TAG_PREFIX + n for n in names), main=STATS))
  outputs = {tag: converted[tag] for tag in
             (REJECTS, DIGESTS, *(SPLIT_TAG_PREFIX + n for n in names))}
  outputs[SKIPS] = ((listed[SKIPS], converted[SKIPS])
                    | 'AllSkips' >> beam.Flatten())
  outputs[STATS] = ((listed[STATS], converted[STATS])
                    | 'AllStats' >> beam.Flatten())
  outputs.update(joined)
  return outputs
