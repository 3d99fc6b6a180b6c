"""Counts of an ingestion run, kept per bundle and merged: memory independent of N.

Each conversion bundle fills one `IngestStats` (files, Examples and labels per
split, rejects and skips by reason with their first paths, repaired and
re-encoded files) and emits it once; Beam merges the partial stats into the
run's summary. Distinct images, series and patients (or groups) per split are
counted with a `DistinctSketch` (the k smallest hashes,
"KMV"): exact up to `SKETCH_SIZE` distinct values, an estimate with about
1/sqrt(SKETCH_SIZE) relative error beyond, in constant memory.
"""

import collections
import dataclasses
import hashlib
import heapq
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

from image_example_gen import rejects as rejects_lib

SKETCH_SIZE = 4096
_HASH_SPACE = 2**64


class DistinctSketch:
  """Mergeable count of distinct byte strings (k minimum values)."""

  def __init__(self, size: int = SKETCH_SIZE):
    self._size = size
    self._hashes: Set[int] = set()
    self._heap: List[int] = []  # Negated hashes: the largest kept is on top.

  def add(self, value: bytes) -> None:
    self._add(int.from_bytes(
        hashlib.blake2b(value, digest_size=8).digest(), 'big'))

  def _add(self, value: int) -> None:
    if value in self._hashes:
      return
    if len(self._heap) < self._size:
      heapq.heappush(self._heap, -value)
      self._hashes.add(value)
    elif value < -self._heap[0]:
      self._hashes.discard(-heapq.heapreplace(self._heap, -value))
      self._hashes.add(value)

  def merge(self, other: 'DistinctSketch') -> None:
    for value in other._hashes:  # pylint: disable=protected-access
      self._add(value)

  def count(self) -> int:
    """Exact below `size` distinct values, else the KMV estimate."""
    if len(self._heap) < self._size:
      return len(self._heap)
    return round((self._size - 1) * _HASH_SPACE / -self._heap[0])


@dataclasses.dataclass
class SplitStats:
  """One output split: Examples, files, distinct images, series and patients,
  labels."""
  examples: int = 0
  files: int = 0
  images: DistinctSketch = dataclasses.field(default_factory=DistinctSketch)
  series: DistinctSketch = dataclasses.field(default_factory=DistinctSketch)
  patients: DistinctSketch = dataclasses.field(default_factory=DistinctSketch)
  labels: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)

  def merge(self, other: 'SplitStats') -> None:
    self.examples += other.examples
    self.files += other.files
    self.images.merge(other.images)
    self.series.merge(other.series)
    self.patients.merge(other.patients)
    self.labels.update(other.labels)

  def to_json(self) -> Dict[str, Any]:
    return {'examples': self.examples, 'files': self.files,
            'images': self.images.count(), 'series': self.series.count(),
            'patients': self.patients.count(),
            'labels': {str(k): v for k, v in sorted(self.labels.items())}}


def first_paths(paths: Iterable[str],
                limit: int = rejects_lib.FIRST_PATHS) -> List[str]:
  """The `limit` first distinct paths in sort order (mergeable)."""
  return heapq.nsmallest(limit, set(paths))


@dataclasses.dataclass
class IngestStats:
  """What a bundle (or, merged, the run) did with its files.

  Attributes:
    converted_files: files that became Examples.
    bytes_read: their bytes.
    rejects: reject reason -> files.
    skips: skip reason -> files.
    first_paths: reject or skip reason -> its first paths in sort order.
    repaired: repair reason -> files decoded after a repair.
    reencoded_files: files stored as a re-encoded PNG, not their own bytes.
    splits: split name -> its counts.
  """
  converted_files: int = 0
  bytes_read: int = 0
  rejects: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  skips: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  first_paths: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  repaired: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  reencoded_files: int = 0
  tallies: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  splits: Dict[str, SplitStats] = dataclasses.field(default_factory=dict)

  def add_file(self, split: str, size: int, image_key: bytes,
               patient_key: bytes, labels: Iterable[int], num_examples: int,
               repaired: str, files: int = 1, series_key: bytes = b'',
               reencoded: bool = False) -> None:
    """Counts converted file(s) (a series: `files`) whose Examples went to
    `split`."""
    stats = self.split(split)
    self.converted_files += files
    self.bytes_read += size
    self.reencoded_files += int(reencoded)
    stats.files += files
    stats.examples += num_examples
    if image_key:
      stats.images.add(image_key)
    if series_key:
      stats.series.add(series_key)
    if patient_key:
      stats.patients.add(patient_key)
    stats.labels.update(labels)
    if repaired:
      self.repaired[repaired] += 1

  def add_reject(self, reason: str, paths: Sequence[str]) -> None:
    """Counts the rejected files `paths` (a series: all its files)."""
    self.rejects[reason] += len(paths)
    self._add_paths(reason, paths)

  def add_skip(self, reason: str, paths: Sequence[str]) -> None:
    """Counts the skipped files `paths`."""
    self.skips[reason] += len(paths)
    self._add_paths(reason, paths)

  def _add_paths(self, reason: str, paths: Sequence[str]) -> None:
    kept = self.first_paths.get(reason, [])
    if len(kept) < rejects_lib.FIRST_PATHS or min(paths) < kept[-1]:
      self.first_paths[reason] = first_paths(kept + list(paths))

  def tally(self, names: Iterable[str]) -> None:
    """Counts what a converter reported of a file (`Converted.tallies`)."""
    self.tallies.update(names)

  def split(self, name: str) -> SplitStats:
    if name not in self.splits:
      self.splits[name] = SplitStats()
    return self.splits[name]

  def merge(self, other: 'IngestStats') -> None:
    self.converted_files += other.converted_files
    self.bytes_read += other.bytes_read
    self.rejects.update(other.rejects)
    self.skips.update(other.skips)
    for reason, paths in other.first_paths.items():
      self.first_paths[reason] = first_paths(
          self.first_paths.get(reason, []) + list(paths))
    self.repaired.update(other.repaired)
    self.reencoded_files += other.reencoded_files
    self.tallies.update(other.tallies)
    for name, split in other.splits.items():
      self.split(name).merge(split)

  def reject_counts(self) -> Dict[Tuple[str, str], int]:
    """(stage, reason) -> files."""
    return {(rejects_lib.REASON_STAGE[reason], reason): n
            for reason, n in self.rejects.items()}

  def to_json(self, split_names: Iterable[str]) -> Dict[str, Any]:
    """The summary: files, Examples, per split counts, rejects and skips.

    `input_files` = converted + rejected: skipped files are not inputs.
    """
    num_rejects = sum(self.rejects.values())
    splits = {name: self.split(name).to_json() for name in split_names}
    return {
        'input_files': self.converted_files + num_rejects,
        'converted_files': self.converted_files,
        'rejected_files': num_rejects,
        'skipped_files': sum(self.skips.values()),
        'examples': sum(s['examples'] for s in splits.values()),
        # A series lies in one split (all its files share a patient).
        'series': sum(s['series'] for s in splits.values()),
        'bytes_read': self.bytes_read,
        'splits': splits,
        'rejects': {f'{stage}/{reason}': n for (stage, reason), n in
                    sorted(self.reject_counts().items())},
        'skips': dict(sorted(self.skips.items())),
        'first_paths': dict(sorted(self.first_paths.items())),
        'repaired_files': {'count': sum(self.repaired.values()),
                           'reasons': dict(sorted(self.repaired.items()))},
        'reencoded_files': self.reencoded_files,
        'tallies': dict(sorted(self.tallies.items())),
    }


def reasons(counts: Dict[str, int]) -> Dict[str, int]:
  """'stage/reason' keys of the summary's `rejects` -> reason keys."""
  return {key.split('/', 1)[-1]: n for key, n in counts.items()}


def class_counts(summary: Dict[str, Any]) -> Dict[str, int]:
  """Label value -> Examples over every split of a summary."""
  total: collections.Counter = collections.Counter()
  for split in summary['splits'].values():
    total.update(split['labels'])
  return dict(total)


def split_warnings(summary: Dict[str, Any],
                   class_names: Sequence[str] = ()) -> List[str]:
  """Splits that hold one class, or lack a class another split has.

  Args:
    summary: an `ingest_summary.json`.
    class_names: label i's name, for the messages (labels otherwise).
  """
  def name(label: str) -> str:
    index = int(label) if label.isdigit() else -1
    return class_names[index] if 0 <= index < len(class_names) else label

  every = set(class_counts(summary))
  if len(every) < 2:
    return []
  found = []
  for split, counts in summary['splits'].items():
    labels = {label for label, n in counts['labels'].items() if n}
    if not counts['examples']:
      found.append(f'split {split} is empty')
    elif len(labels) == 1:
      found.append(f'split {split} holds one class only '
                   f'({name(next(iter(labels)))})')
    elif every - labels:
      missing = sorted(every - labels, key=lambda l: (len(l), l))
      found.append(f'split {split} has no {", ".join(map(name, missing))}')
  return found


def merge_all(partials: Iterable[IngestStats]) -> IngestStats:
  merged = IngestStats()
  for partial in partials:
    merged.merge(partial)
  return merged
