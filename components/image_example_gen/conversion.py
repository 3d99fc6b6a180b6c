"""The Beam transform both ExampleGens share: files in, Examples and rejects out.

A `FileConverter` turns one file into Examples, or raises `RejectError`; it
knows nothing of Beam. `ConvertFiles` matches the files inside Beam, spreads
them over workers, runs the converter, and routes every file either to its
Examples plus one 'converted' marker (which the executor counts), or to one
reject record.
"""

import abc
import hashlib
import logging
import os
import time
from typing import Iterator, List, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
import tensorflow as tf

from image_example_gen import rejects as rejects_lib

EXAMPLES = 'examples'
REJECTS = 'rejects'
CONVERTED = 'converted'

_METRICS_NAMESPACE = 'image_example_gen'
_PROGRESS_INTERVAL_S = 30.0


class RejectError(Exception):
  """Raised by a converter: the file becomes one reject record."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


class FileConverter(abc.ABC):
  """Turns one input file into Examples. Must be picklable (Beam ships it)."""

  def setup(self) -> None:
    """Per-worker initialisation (imports, codecs); called once per worker."""

  @abc.abstractmethod
  def convert(self, rel_path: str, path: str,
              size: int) -> Tuple[List[tf.train.Example], str]:
    """Examples of the file at `path` (`rel_path` below input_base).

    Returns:
      The Examples, and a marker string for the executor's summary (e.g. a
      keyed hash of the label join key; '' when there is nothing to report).

    Raises:
      RejectError: the file cannot become an Example.
    """


def open_file(path: str):
  """Opens `path` on any Beam filesystem, never decompressing by extension."""
  return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def relative_path(path: str, input_base: str) -> str:
  base = input_base.rstrip('/') + '/'
  if not path.startswith(base):
    raise ValueError(f'{path} is not under {input_base}.')
  return path[len(base):]


def split_tag(split_pattern: str) -> str:
  """A file-name-safe tag per input split, so splits never share side files."""
  return hashlib.sha256(split_pattern.encode('utf-8')).hexdigest()[:8]


class _ConvertFileFn(beam.DoFn):
  """Runs a FileConverter on each matched file; rejects go to a side output."""

  def __init__(self, input_base: str, converter: FileConverter):
    self._input_base = input_base
    self._converter = converter
    self._files = Metrics.counter(_METRICS_NAMESPACE, 'files_read')
    self._bytes = Metrics.counter(_METRICS_NAMESPACE, 'bytes_read')
    self._examples = Metrics.counter(_METRICS_NAMESPACE, 'examples_written')
    self._rejected = Metrics.counter(_METRICS_NAMESPACE, 'files_rejected')

  def setup(self):
    self._converter.setup()
    self._start = self._last_report = time.monotonic()
    self._done = self._failed = 0

  def process(self, metadata: FileMetadata) -> Iterator:
    rel_path = relative_path(metadata.path, self._input_base)
    self._files.inc()
    self._bytes.inc(metadata.size_in_bytes)
    try:
      examples, marker = self._converter.convert(rel_path, metadata.path,
                                                 metadata.size_in_bytes)
    except RejectError as e:
      yield from self._reject(rel_path, e.reason, e.detail)
      return
    except Exception as e:  # pylint: disable=broad-except
      # A bug or an exotic file: one reject, never a failed job.
      logging.exception('Unexpected error converting %s', rel_path)
      yield from self._reject(rel_path, rejects_lib.UNDECODABLE,
                              f'{type(e).__name__}: {e}')
      return
    self._examples.inc(len(examples))
    self._done += 1
    self._report_progress()
    yield beam.pvalue.TaggedOutput(CONVERTED, marker)
    yield from examples

  def _reject(self, rel_path: str, reason: str, detail: str) -> Iterator:
    self._rejected.inc()
    Metrics.counter(_METRICS_NAMESPACE, f'rejects_{reason}').inc()
    self._failed += 1
    self._report_progress()
    yield beam.pvalue.TaggedOutput(
        REJECTS, rejects_lib.Reject(rel_path, reason, detail))

  def _report_progress(self) -> None:
    now = time.monotonic()
    if now - self._last_report >= _PROGRESS_INTERVAL_S:
      self._last_report = now
      total = self._done + self._failed
      logging.info('Worker %d: %d files (%d converted, %d rejected), '
                   '%.1f files/s.', os.getpid(), total, self._done,
                   self._failed, total / (now - self._start))


@beam.ptransform_fn
def ConvertFiles(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_base: str, split_pattern: str,
    converter: FileConverter) -> beam.pvalue.DoOutputsTuple:
  """Matches `input_base/split_pattern` and converts every file.

  Returns outputs tagged EXAMPLES (tf.train.Example), REJECTS (Reject) and
  CONVERTED (one marker per file that became Examples).
  """
  return (
      pipeline
      | 'Match' >> fileio.MatchFiles(
          FileSystems.join(input_base, split_pattern),
          empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
      # Matching yields every file from one bundle: spread them over workers.
      | 'Reshuffle' >> beam.Reshuffle()
      | 'Convert' >> beam.ParDo(_ConvertFileFn(input_base, converter))
      .with_outputs(REJECTS, CONVERTED, main=EXAMPLES))
