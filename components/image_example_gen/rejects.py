"""Reject and skip records: why a file did not become an Example (docs/design.md §5).

Every matched file ends as exactly one of: Example(s) in one split, one
`Reject` (an input that cannot be used: counted against
`max_reject_fraction`), or one `Skip` (junk that is not an input: hidden and
system files, documents beside the images; accounted, never counted against
the limit). Stages and reasons are stable strings that users filter on, so
they are listed here and nowhere else.
"""

import collections
import dataclasses
import json
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

# Stages, in the order a file goes through them.
READ = 'read'
PARSE = 'parse'
DECODE = 'decode'
LABEL = 'label'
VALIDATE = 'validate'
STAGES = (READ, PARSE, DECODE, LABEL, VALIDATE)

# Reasons. Each belongs to one stage (REASON_STAGE below).
EMPTY_FILE = 'empty_file'                  # 0 bytes
UNREADABLE = 'unreadable'                  # gone, changed, broken link, FIFO, I/O error
NOT_AN_IMAGE = 'not_an_image'              # bytes are no known image format
NOT_DICOM = 'not_dicom'                    # no DICM prefix / not parsable as DICOM
INVALID_DICOM = 'invalid_dicom'            # DICM prefix but the data set is broken
NO_PIXEL_DATA = 'no_pixel_data'            # DICOM without (7FE0,0010) etc.
MISSING_ATTRIBUTE = 'missing_attribute'    # Rows, Columns, ... missing
UNSUPPORTED_TRANSFER_SYNTAX = 'unsupported_transfer_syntax'
TRUNCATED = 'truncated'                    # pixel data / image stream cut short
UNDECODABLE = 'undecodable'                # the codec failed
NO_METADATA_ROW = 'no_metadata_row'        # no row of the table for the file
DUPLICATE_METADATA_ROW = 'duplicate_metadata_row'  # the file's key is on several rows
BAD_METADATA_VALUE = 'bad_metadata_value'  # a value of the file's row does not parse
UNKNOWN_CLASS = 'unknown_class'            # class not in `class_names`
OUTSIDE_CLASS_FOLDER = 'outside_class_folder'  # file directly in input_base
NO_LABEL_IN_NAME = 'no_label_in_name'      # `label_pattern` does not match the path
INVALID_IMAGE = 'invalid_image'            # decoded, but unusable (0 px, odd shape)
TOO_LARGE = 'too_large'                    # header declares more than the size limits
BURNED_IN_ANNOTATION = 'burned_in_annotation'  # pixels may show PHI (burned_in.py)
NO_GEOMETRY = 'no_geometry'                # series: no position/orientation/spacing
INCONSISTENT_SERIES = 'inconsistent_series'  # series: slices do not make one volume
IRREGULAR_SPACING = 'irregular_spacing'    # series: gaps between slices differ

REASON_STAGE = {
    EMPTY_FILE: READ,
    UNREADABLE: READ,
    NOT_AN_IMAGE: PARSE,
    NOT_DICOM: PARSE,
    INVALID_DICOM: PARSE,
    NO_PIXEL_DATA: VALIDATE,
    MISSING_ATTRIBUTE: VALIDATE,
    UNSUPPORTED_TRANSFER_SYNTAX: DECODE,
    TRUNCATED: DECODE,
    UNDECODABLE: DECODE,
    NO_METADATA_ROW: LABEL,
    DUPLICATE_METADATA_ROW: LABEL,
    BAD_METADATA_VALUE: LABEL,
    UNKNOWN_CLASS: LABEL,
    OUTSIDE_CLASS_FOLDER: LABEL,
    NO_LABEL_IN_NAME: LABEL,
    INVALID_IMAGE: VALIDATE,
    TOO_LARGE: VALIDATE,
    BURNED_IN_ANNOTATION: VALIDATE,
    NO_GEOMETRY: VALIDATE,
    INCONSISTENT_SERIES: VALIDATE,
    IRREGULAR_SPACING: VALIDATE,
}

# Skip reasons: files accounted for that are no input of the run: junk
# (`selection.py` decides by path, the converter's `sniff` by content), and
# what DICOM series mode leaves out.
HIDDEN_FILE = 'hidden_file'        # a path component starts with '.': .DS_Store, ._x.jpg, .git/
SYSTEM_FILE = 'system_file'        # Thumbs.db, desktop.ini, __MACOSX/, $RECYCLE.BIN/, ...
NON_IMAGE_FILE = 'non_image_file'  # README.md, notes.txt, *.csv, ...: a known non-image
                                   # extension or name, and bytes that are no input
EXTENSION_NOT_ALLOWED = 'extension_not_allowed'  # not in `allowed_extensions`
IGNORE_PATTERN = 'ignore_pattern'  # matches one of `ignore_patterns`
METADATA_FILE = 'metadata_file'    # the metadata table inside input_base
SERIES_FILTERED = 'series_filtered'  # DICOM series: does not match `series_filter`
LOCALIZER = 'localizer'            # DICOM series: a CT localizer (scout) image
TOO_FEW_SLICES = 'too_few_slices'  # DICOM series: fewer than `min_slices`
SKIP_REASONS = (HIDDEN_FILE, SYSTEM_FILE, NON_IMAGE_FILE, EXTENSION_NOT_ALLOWED,
                IGNORE_PATTERN, METADATA_FILE, SERIES_FILTERED, LOCALIZER,
                TOO_FEW_SLICES)

# Where the records go inside the Examples artifact:
# <uri>/rejects/rejects-*.jsonl and <uri>/skipped/skipped-*.jsonl
REJECTS_DIR = 'rejects'
SKIPPED_DIR = 'skipped'
# How many paths per reason the summary and the console name.
FIRST_PATHS = 3
# Both components fail when more of their input files are rejected.
DEFAULT_MAX_REJECT_FRACTION = 0.05


def is_skip(reason: str) -> bool:
  """Whether `reason` skips a file rather than rejecting it."""
  return reason in SKIP_REASONS


class RejectError(Exception):
  """Raised by conversion code: the file becomes one reject (or skip) record.

  Attributes:
    reason: a reject or skip reason of this module.
    detail: a short explanation for the record.
    tallies: names counted in the summary (`conversion.Converted.tallies`).
  """

  def __init__(self, reason: str, detail: str = '',
               tallies: Tuple[str, ...] = ()):
    if reason not in REASON_STAGE and not is_skip(reason):
      raise ValueError(f'Unknown reject or skip reason {reason!r}.')
    super().__init__(reason, detail)
    self.reason = reason
    self.detail = detail
    self.tallies = tallies

  def __str__(self) -> str:
    return f'{self.reason}: {self.detail}'


@dataclasses.dataclass(frozen=True)
class Reject:
  """One input file that did not become an Example.

  Attributes:
    path: the file's path relative to `input_base` (never absolute).
    reason: one of the reason constants of this module.
    detail: a short human-readable explanation (an exception message, trimmed).
  """
  path: str
  reason: str
  detail: str = ''

  def __post_init__(self):
    if self.reason not in REASON_STAGE:
      raise ValueError(f'Unknown reject reason {self.reason!r}.')

  @property
  def stage(self) -> str:
    return REASON_STAGE[self.reason]

  def to_json(self) -> str:
    return json.dumps({'path': self.path, 'stage': self.stage,
                       'reason': self.reason, 'detail': self.detail[:500]},
                      sort_keys=True)

  @classmethod
  def from_json(cls, line: str) -> 'Reject':
    record = json.loads(line)
    return cls(record['path'], record['reason'], record.get('detail', ''))


@dataclasses.dataclass(frozen=True)
class Skip:
  """One matched file that is junk, or not an input of this run.

  Attributes:
    path: the file's path relative to `input_base`.
    reason: one of `SKIP_REASONS`.
    detail: '' or a short explanation (e.g. which `series_filter` expression
      the file did not match; never a header value).
  """
  path: str
  reason: str
  detail: str = ''

  def __post_init__(self):
    if self.reason not in SKIP_REASONS:
      raise ValueError(f'Unknown skip reason {self.reason!r}.')

  def to_json(self) -> str:
    record = {'path': self.path, 'reason': self.reason}
    if self.detail:
      record['detail'] = self.detail[:500]
    return json.dumps(record, sort_keys=True)

  @classmethod
  def from_json(cls, line: str) -> 'Skip':
    record = json.loads(line)
    return cls(record['path'], record['reason'], record.get('detail', ''))


def count_by_reason(rejects: Iterable[Reject]) -> Dict[Tuple[str, str], int]:
  """(stage, reason) -> number of rejects."""
  return dict(collections.Counter((r.stage, r.reason) for r in rejects))


def top_reasons(counts: Mapping[str, int],
                first_paths: Mapping[str, Sequence[str]], limit: int = 3
               ) -> str:
  """'reason n (first, paths), ...' for the `limit` most frequent reasons."""
  top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
  return ', '.join(
      f'{reason} {n}' + (f' ({", ".join(first_paths[reason])}'
                         f'{", ..." if n > len(first_paths[reason]) else ""})'
                         if first_paths.get(reason) else '')
      for reason, n in top)


def reject_limit_error(counts: Mapping[str, int], num_converted_files: int,
                       max_fraction: float,
                       first_paths: Mapping[str, Sequence[str]],
                       kept_at: str) -> Optional[str]:
  """The error of a run over `max_reject_fraction`, or None within it.

  The fraction is rejected files over input files (converted + rejected);
  skipped files are not inputs.

  Args:
    counts: reject reason -> files.
    num_converted_files: files that became Examples.
    max_fraction: the component's `max_reject_fraction`.
    first_paths: reason -> the first paths (sorted) rejected for it.
    kept_at: where the reject records and summary of the run are kept.
  """
  num_rejects = sum(counts.values())
  total = num_rejects + num_converted_files
  fraction = num_rejects / total if total else 0.0
  if not total or fraction <= max_fraction:
    return None
  return (
      f'{num_rejects} of {total} input files rejected ({fraction:.1%} > '
      f'max_reject_fraction {max_fraction:.1%}); top reasons: '
      f'{top_reasons(counts, first_paths)}. The reject records and '
      f'ingest_summary.json of this run are kept in {kept_at}. If these '
      'files may be left out, raise max_reject_fraction (the component '
      'parameter; --max-reject-fraction on pipeline.py and '
      '`python -m image_example_gen convert`).')
