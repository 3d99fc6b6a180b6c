"""Reject records: why an input file did not become an Example (docs/design.md §5).

Every input file ends as exactly one of: Example(s) in one split, or one
`Reject`. Stages and reasons are stable strings that users filter on, so they
are listed here and nowhere else.
"""

import collections
import dataclasses
import json
from typing import Dict, Iterable, List, Mapping, Tuple

# Stages, in the order a file goes through them.
READ = 'read'
PARSE = 'parse'
DECODE = 'decode'
LABEL = 'label'
VALIDATE = 'validate'
# Not a reject: the file is accounted for but is no input of the run (a
# series the user filtered out, a localizer); never counted against
# max_reject_fraction.
SKIP = 'skip'
STAGES = (READ, PARSE, DECODE, LABEL, VALIDATE, SKIP)

# Reasons. Each belongs to one stage (REASON_STAGE below).
EMPTY_FILE = 'empty_file'                  # 0 bytes
UNREADABLE = 'unreadable'                  # gone, changed, broken link, FIFO, I/O error
HIDDEN_FILE = 'hidden_file'                # .*, ._*, .DS_Store, .ipynb_checkpoints/
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
# Skips (stage SKIP).
SERIES_FILTERED = 'series_filtered'        # does not match `series_filter`
LOCALIZER = 'localizer'                    # CT localizer (scout) image
TOO_FEW_SLICES = 'too_few_slices'          # series of fewer than `min_slices`

REASON_STAGE = {
    EMPTY_FILE: READ,
    UNREADABLE: READ,
    HIDDEN_FILE: READ,
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
    SERIES_FILTERED: SKIP,
    LOCALIZER: SKIP,
    TOO_FEW_SLICES: SKIP,
}

# Where rejects go inside the Examples artifact: <uri>/rejects/rejects-*.jsonl
REJECTS_DIR = 'rejects'


def is_skip(reason: str) -> bool:
  """Whether `reason` skips a file rather than rejecting it."""
  return REASON_STAGE[reason] == SKIP


class RejectError(Exception):
  """Raised by conversion code: the file becomes one reject record.

  Attributes:
    reason: a reason constant of this module.
    detail: a short explanation for the reject record.
    tallies: names counted in the summary (`conversion.Converted.tallies`).
  """

  def __init__(self, reason: str, detail: str = '',
               tallies: Tuple[str, ...] = ()):
    if reason not in REASON_STAGE:
      raise ValueError(f'Unknown reject reason {reason!r}.')
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


def count_by_reason(rejects: Iterable[Reject]) -> Dict[Tuple[str, str], int]:
  """(stage, reason) -> number of rejects."""
  return dict(collections.Counter((r.stage, r.reason) for r in rejects))


def format_summary(counts: Mapping[Tuple[str, str], int]) -> List[str]:
  """Lines of a table of reject counts, most frequent first."""
  if not counts:
    return ['rejects: none']
  lines = [f'{"stage":<9} {"reason":<28} {"files":>8}']
  for (stage, reason), n in sorted(counts.items(), key=lambda kv: -kv[1]):
    lines.append(f'{stage:<9} {reason:<28} {n:>8}')
  return lines


def check_reject_fraction(counts: Mapping[Tuple[str, str], int],
                          num_converted_files: int, max_fraction: float) -> None:
  """Raises RuntimeError naming the top reasons when too much was rejected.

  The fraction is rejected files over all input files (converted + rejected).
  """
  num_rejects = sum(counts.values())
  total = num_rejects + num_converted_files
  if total == 0:
    raise RuntimeError('No input files matched: nothing to convert.')
  fraction = num_rejects / total
  if fraction > max_fraction:
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    named = ', '.join(f'{reason} ({n})' for (_, reason), n in top)
    raise RuntimeError(
        f'{num_rejects} of {total} input files rejected ({fraction:.1%} > '
        f'max_reject_fraction {max_fraction:.1%}); top reasons: {named}. '
        f'See the reject records under the artifact\'s {REJECTS_DIR}/.')
