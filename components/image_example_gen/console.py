"""How the components talk to the user: a named logger, the summary, progress.

Python's root logger shows WARNING and above, and only if something set it
up; TFX, absl and Beam each configure logging differently, and the
multi-processing runner turns worker log lines into protobuf text. So what
the user must see goes through one named logger, `image_example_gen`, with
its own handler on stderr at INFO and `propagate=False`: it shows under
LocalDagRunner, in a Kubeflow pod and in a plain script without any log
level set, and once, whatever absl or Beam add to the root logger. Only the
launching process writes to it: the summary at the end of each ExampleGen, a
progress line at intervals on long runs, the salt warning. Per-file lines
(each reject) stay on the module loggers at INFO and DEBUG.

To send the lines elsewhere, configure the logger like any other:
`logging.getLogger('image_example_gen').handlers[:] = [my_handler]`.

Known library noise is filtered here too: `filter_library_messages` (safe
anywhere: the package calls it on import) drops Google's Python-version
FutureWarnings and a few fixed library log lines; `filtered_stderr` (entry
points only) drops the TF C++ registration lines and C decoder messages that
bypass Python and write to file descriptor 2.

Pure Python: no TFX, TensorFlow or Beam.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import time
from typing import (Any, Callable, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple)
import warnings

from image_example_gen import rejects as rejects_lib
from image_example_gen import summary as summary_lib

LOGGER_NAME = 'image_example_gen'
# Names listed in the summary, at most.
MAX_NAMES = 10
# Splits in this order first, any others after them alphabetically.
SPLIT_ORDER = ('train', 'eval', 'val', 'validation', 'test')
# Progress: the first line after this many seconds, then at this interval.
PROGRESS_FIRST_S = 15.0
PROGRESS_INTERVAL_S = 30.0

# Python warnings from libraries, by message (regular expressions).
_IGNORED_WARNINGS = (
    (FutureWarning, r'You are using a non-supported Python version'),
    (FutureWarning, r'Support for google-cloud-storage < 3\.0\.0'),
)
# Log lines from libraries, by logger and a part of the message.
_IGNORED_LOG_LINES = {
    'absl': ('ArtifactQuery.property_predicate is not supported',
             'ContextQuery.property_predicate is not supported',
             'Using the in-place Transform since disable_statistics=True',
             'Not using the in-place Transform because',
             'Tables initialized inside a tf.function'),
    'apache_beam.io.tfrecordio': ("Couldn't find python-snappy",),
    # Beam's multi-processing workers, relayed by the launcher.
    'apache_beam.runners.portability.local_job_service': (
        'No semi_persistent_directory found',
        'Discarding unparseable args'),
}
# Lines C and C++ libraries write to file descriptor 2 (regular expressions).
KNOWN_STDERR_LINES = (
    r'Unable to register cu(DNN|FFT|BLAS) factory',
    r'TF-TRT Warning',
    r'This TensorFlow binary is optimized to use available CPU instructions',
    r'To enable the following instructions: .* rebuild TensorFlow',
    r'oneDNN custom operations are on',
    r'Could not find cuda drivers',
    r'failed call to cuInit',
    r'(Corrupt JPEG data|Premature end of JPEG file|'
    r'A marker ID was expected|Invalid SOS parameters)',
    # Google's Python-version FutureWarnings, printed by Beam's worker
    # processes before any filter of theirs is set.
    r'FutureWarning: You are using a non-supported Python version',
    r'^\s*warnings\.warn\(message, FutureWarning\)$',
)
# TensorFlow's notices about its own deprecated calls inside libraries.
_TF_DEPRECATION = 'is deprecated and will be removed'


class _StderrHandler(logging.StreamHandler):
  """Writes to whatever `sys.stderr` is now (pytest and notebooks swap it)."""

  def __init__(self):
    super().__init__(sys.stderr)

  @property
  def stream(self):
    return sys.stderr

  @stream.setter
  def stream(self, value):
    del value  # Always sys.stderr.


class _DropLines(logging.Filter):
  """Drops records whose message holds one of `parts`."""

  def __init__(self, parts: Sequence[str]):
    super().__init__()
    self._parts = tuple(parts)

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(part in message for part in self._parts)


class _DropDeprecations(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return _TF_DEPRECATION not in str(record.msg)


_lock = threading.Lock()
_filtered = False


def logger() -> logging.Logger:
  """The user-facing logger, with its stderr handler (installed once)."""
  log = logging.getLogger(LOGGER_NAME)
  with _lock:
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
      handler = _StderrHandler()
      handler.setFormatter(logging.Formatter('%(message)s'))
      log.addHandler(handler)
      log.setLevel(logging.INFO)
      log.propagate = False
  return log


def filter_library_messages() -> None:
  """Drops known library warnings and log lines (idempotent, safe anywhere)."""
  global _filtered
  with _lock:
    if _filtered:
      return
    _filtered = True
  for category, message in _IGNORED_WARNINGS:
    warnings.filterwarnings('ignore', message=message, category=category)
  for name, parts in _IGNORED_LOG_LINES.items():
    logging.getLogger(name).addFilter(_DropLines(parts))


def quiet_entry_point() -> None:
  """What a command line of the project sets before importing TFX.

  TensorFlow's C++ INFO and WARNING lines off (unless the user chose a
  level), the library filters above, and TensorFlow's notices about
  deprecated calls made by TFX, TFMA and TFDV (not by the user's code).
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  filter_library_messages()
  logging.getLogger('tensorflow').addFilter(_DropDeprecations())


@contextlib.contextmanager
def filtered_stderr(
    patterns: Sequence[str] = KNOWN_STDERR_LINES) -> Iterator[None]:
  """Drops lines matching `patterns` from file descriptor 2 meanwhile.

  C and C++ libraries (TensorFlow's registration lines, libjpeg's messages
  about files that are rejected anyway) write to the descriptor directly.
  It is redirected to a pipe whose lines a thread forwards to the real
  stderr as they come, without the known ones; child processes (Beam
  workers) inherit the filter. For command lines only: a library user's
  stderr is theirs.
  """
  regex = re.compile('|'.join(f'(?:{p})' for p in patterns))
  try:
    sys.stderr.flush()
    saved = os.dup(2)
  except (OSError, ValueError, AttributeError):
    yield  # No real descriptor 2 (an embedding without one).
    return
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def forward():
    with os.fdopen(read_end, 'rb') as lines:
      for line in lines:
        if not regex.search(line.decode('utf-8', 'replace')):
          os.write(saved, line)

  thread = threading.Thread(target=forward, name='filtered-stderr',
                            daemon=True)
  thread.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)  # Closes the pipe's last write end: the thread ends.
    thread.join(timeout=5)
    os.close(saved)


def split_order(names: Iterable[str]) -> List[str]:
  """Split names with train, eval, ... first (`SPLIT_ORDER`)."""
  return sorted(names, key=lambda n: (
      SPLIT_ORDER.index(n) if n in SPLIT_ORDER else len(SPLIT_ORDER), n))


def _names(values: Sequence[str]) -> str:
  shown = ', '.join(values[:MAX_NAMES])
  more = len(values) - MAX_NAMES
  return shown + (f', ... ({more} more)' if more > 0 else '')


def _reasons(counts: Mapping[str, int],
             first_paths: Mapping[str, Sequence[str]]) -> str:
  text = rejects_lib.top_reasons(counts, first_paths)
  more = len(counts) - 3
  return text + (f' and {more} more reason(s)' if more > 0 else '')


def class_names_of(summary: Mapping[str, Any],
                   vocabulary: Sequence[str]) -> List[str]:
  """The classes of a run: the vocabulary, else the labels seen (sorted)."""
  if vocabulary:
    return list(vocabulary)
  labels = summary_lib.class_counts(dict(summary))
  return sorted(labels, key=lambda label: (len(label), label))


def summary_lines(component: str, input_base: str, uri: str,
                  summary: Mapping[str, Any],
                  vocabulary: Sequence[str] = ()) -> List[str]:
  """The few lines a user reads at the end of an ExampleGen.

  Known counts get a sentence; any other top-level key of the summary (a
  component's own counts) is printed as it is, one line each.

  Args:
    component: the component's id.
    input_base: what it read.
    uri: the Examples artifact.
    summary: its `ingest_summary.json`.
    vocabulary: class names in label order, if the run has them.
  """
  found = summary['input_files'] + summary.get('skipped_files', 0)
  classes = class_names_of(summary, vocabulary)
  lines = [
      f'{component}: found {found} files in {input_base}'
      + (f' belonging to {len(classes)} classes' if classes else '')
      + f': {summary["converted_files"]} converted into '
      f'{summary["examples"]} Examples, {summary["rejected_files"]} '
      f'rejected, {summary.get("skipped_files", 0)} skipped.']
  if classes:
    lines.append(f'  classes: {_names(classes)}')
  splits = summary['splits']
  lines.append('  examples: ' + ', '.join(
      f'{name} {splits[name]["examples"]}' for name in split_order(splits)))
  for warning in summary_lib.split_warnings(dict(summary), classes):
    lines.append(f'  warning: {warning}')
  first = summary.get('first_paths', {})
  if summary['rejected_files']:
    lines.append(f'  rejected: {_reasons(summary_lib.reasons(summary["rejects"]), first)}')
  if summary.get('skipped_files'):
    lines.append(f'  skipped (not inputs): '
                 f'{_reasons(summary["skips"], first)}')
  duplicates = summary.get('duplicates') or {}
  if duplicates.get('duplicate_images'):
    lines.append(
        f'  duplicates: {duplicates["duplicate_images"]} files share their '
        f'bytes with another ({duplicates["duplicate_groups"]} groups, '
        f'{duplicates["duplicate_images_across_splits"]} files in more than '
        'one split)')
  if summary.get('reencoded_files'):
    lines.append(f'  re-encoded as PNG: {summary["reencoded_files"]} files')
  repaired = summary.get('repaired_files') or {}
  if repaired.get('count'):
    lines.append(f'  repaired: {repaired["count"]} files '
                 f'({", ".join(repaired["reasons"])})')
  table = summary.get('metadata')
  if table:
    keys = table.get('metadata_rows_without_file_first_keys')
    lines.append(
        f'  table: {table["metadata_rows"]} rows, '
        f'{table["metadata_rows_matched"]} matched a file, '
        f'{table["metadata_rows_without_file"]} without a file'
        + (f' ({_names(keys)})' if keys else '')
        + (f', {table["metadata_bad_rows"]} bad'
           if table.get('metadata_bad_rows') else ''))
  if summary.get('series'):
    lines.append(f'  series: {summary["series"]}')
  deidentified = summary.get('deidentification')
  if deidentified:
    lines.append(
        f'  de-identification: {len(deidentified["attributes"])} allow-listed '
        'attributes, keyed hashes ('
        + ('PUBLIC default salt' if deidentified['salt'].startswith('public')
           else 'secret salt')
        + f'); burned-in pixels ({deidentified["burned_in_annotation"]}): '
        + ', '.join(f'{deidentified[outcome]} {outcome}'
                    for outcome in _BURNED_IN_OUTCOMES))
  for key in sorted(set(summary) - _KNOWN_KEYS):
    if summary[key]:
      lines.append(f'  {key}: {_compact(summary[key])}')
  lines.append(f'  output: {uri} (Split-*/, {rejects_lib.REJECTS_DIR}/, '
               f'{rejects_lib.SKIPPED_DIR}/, ingest_summary.json)')
  return lines


# The de-identification record's counts (`dicom.burned_in.OUTCOMES`; this
# module imports nothing of DICOM).
_BURNED_IN_OUTCOMES = ('cropped_to_regions', 'burned_in_kept',
                       'burned_in_rejected')
_KNOWN_KEYS = frozenset((
    'input_files', 'converted_files', 'rejected_files', 'skipped_files',
    'examples', 'bytes_read', 'splits', 'rejects', 'skips', 'first_paths',
    'duplicates', 'reencoded_files', 'repaired_files', 'metadata', 'series',
    'deidentification', *_BURNED_IN_OUTCOMES))


def _compact(value: Any, limit: int = 200) -> str:
  if isinstance(value, dict):
    text = ', '.join(f'{k} {_compact(v, limit)}' for k, v in value.items())
  else:
    text = str(value)
  return text if len(text) <= limit else text[:limit - 3] + '...'


def duration(seconds: float) -> str:
  """'45s', '3m05s', '2h07m'."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def progress_line(component: str, done: int, total: Optional[int],
                  elapsed_s: float) -> str:
  """'X: 1200 of 5000 files (24%), 40.0 files/s, about 1m35s left'."""
  rate = done / elapsed_s if elapsed_s > 0 else 0.0
  if not total:
    return f'{component}: {done} files, {rate:.1f} files/s (still listing)'
  left = (f', about {duration((total - done) / rate)} left' if rate > 0
          else '')
  return (f'{component}: {done} of {total} files ({done / total:.0%}), '
          f'{rate:.1f} files/s{left}')


class Progress:
  """Prints a progress line at intervals while a conversion runs.

  A thread of the launching process reads the counts the workers and the
  lister write (`read_counts`: () -> (files done, files listed or None)) and
  logs `progress_line` after `first_s`, then every `interval_s`. Runs shorter
  than `first_s` print nothing.
  """

  def __init__(self, component: str,
               read_counts: Callable[[], Tuple[int, Optional[int]]],
               first_s: float = PROGRESS_FIRST_S,
               interval_s: float = PROGRESS_INTERVAL_S):
    self._component = component
    self._read_counts = read_counts
    self._first_s = first_s
    self._interval_s = interval_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name='progress',
                                    daemon=True)

  def __enter__(self) -> 'Progress':
    self._start = time.monotonic()
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    self._thread.join(timeout=10)

  def _run(self) -> None:
    wait = self._first_s
    while not self._stop.wait(wait):
      wait = self._interval_s
      try:
        done, total = self._read_counts()
      except Exception:  # pylint: disable=broad-except
        logging.debug('Cannot read progress', exc_info=True)
        continue
      logger().info('%s', progress_line(
          self._component, done, total, time.monotonic() - self._start))
