"""Counts of an ingestion run, kept per bundle and merged: memory independent of N.

Each conversion bundle fills one `IngestStats` (files, Examples and labels per
split, rejects and skips by reason, repaired files) and emits it once; Beam
merges the partial stats into the run's summary. Distinct images, series and
patients (or groups) per split are counted with a `DistinctSketch` (the k
smallest hashes,
"KMV"): exact up to `SKETCH_SIZE` distinct values, an estimate with about
1/sqrt(SKETCH_SIZE) relative error beyond, in constant memory.
"""

import collections
import dataclasses
import hashlib
import heapq
from typing import Any, Dict, Iterable, List, Set, Tuple

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


@dataclasses.dataclass
class IngestStats:
  """What a bundle (or, merged, the run) did with its input files."""
  converted_files: int = 0
  bytes_read: int = 0
  rejects: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  skipped: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  repaired: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  tallies: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  splits: Dict[str, SplitStats] = dataclasses.field(default_factory=dict)

  def add_file(self, split: str, size: int, image_key: bytes,
               patient_key: bytes, labels: Iterable[int], num_examples: int,
               repaired: str, files: int = 1, series_key: bytes = b'') -> None:
    """Counts converted file(s) (a series: `files`) whose Examples went to
    `split`."""
    stats = self.split(split)
    self.converted_files += files
    self.bytes_read += size
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

  def add_reject(self, reason: str, files: int = 1) -> None:
    """Counts rejected files, or skipped ones for a skip reason."""
    if rejects_lib.is_skip(reason):
      self.skipped[reason] += files
    else:
      self.rejects[reason] += files

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
    self.skipped.update(other.skipped)
    self.repaired.update(other.repaired)
    self.tallies.update(other.tallies)
    for name, split in other.splits.items():
      self.split(name).merge(split)

  def reject_counts(self) -> Dict[Tuple[str, str], int]:
    """(stage, reason) -> files."""
    return {(rejects_lib.REASON_STAGE[reason], reason): n
            for reason, n in self.rejects.items()}

  def to_json(self, split_names: Iterable[str]) -> Dict[str, Any]:
    """The summary: files, Examples, per split counts, rejects by reason."""
    num_rejects = sum(self.rejects.values())
    num_skipped = sum(self.skipped.values())
    splits = {name: self.split(name).to_json() for name in split_names}
    return {
        'input_files': self.converted_files + num_rejects + num_skipped,
        'converted_files': self.converted_files,
        'rejected_files': num_rejects,
        'skipped_files': num_skipped,
        'examples': sum(s['examples'] for s in splits.values()),
        # A series lies in one split (all its files share a patient).
        'series': sum(s['series'] for s in splits.values()),
        'bytes_read': self.bytes_read,
        'splits': splits,
        'rejects': {f'{stage}/{reason}': n for (stage, reason), n in
                    sorted(self.reject_counts().items())},
        'skipped': {f'{rejects_lib.SKIP}/{reason}': n
                    for reason, n in sorted(self.skipped.items())},
        'repaired_files': {'count': sum(self.repaired.values()),
                           'reasons': dict(sorted(self.repaired.items()))},
        'tallies': dict(sorted(self.tallies.items())),
    }


def merge_all(partials: Iterable[IngestStats]) -> IngestStats:
  merged = IngestStats()
  for partial in partials:
    merged.merge(partial)
  return merged
