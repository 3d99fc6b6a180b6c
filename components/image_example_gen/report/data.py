"""Reading an Examples artifact for the report: counts, samples and rejects.

One pass over every split's TFRecords counts Examples, patients and labels,
and keeps, per (split, label), the `k` Examples with the smallest
`image/key`: a deterministic sample that does not depend on file order or
sharding, and that is the same for every run with the same input and salt.
"""

import bisect
import collections
import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import tensorflow as tf

from image_example_gen import console
from image_example_gen import example as example_lib
from image_example_gen import executor_base
from image_example_gen import reading
from image_example_gen import rejects as rejects_lib
from image_example_gen import summary as summary_lib

SPLIT_PREFIX = reading.SPLIT_PREFIX
FRAME_INDEX = 'dicom/frame_index'
# Slices of a volume shown in its strip, evenly spaced from first to last.
STRIP_SLICES = 8
# The label of Examples without a `label` feature.
NO_LABEL = 'none'
# Text columns of a table shown under a thumbnail, and their length there.
CAPTION_TEXT_COLUMNS = 2
CAPTION_TEXT_LENGTH = 26


@dataclasses.dataclass(frozen=True)
class Sample:
  """One Example picked for a thumbnail.

  Attributes:
    split: its split.
    label: its label as text (`NO_LABEL` without one).
    key: its `image/key`.
    encoded: its (first) `image/encoded` bytes.
    caption: short lines describing it (label, then key metadata).
    slices: for a volume, up to STRIP_SLICES of its slices, evenly spaced
      from the first to the last; () for an image.
  """
  split: str
  label: str
  key: str
  encoded: bytes
  caption: Tuple[str, ...]
  slices: Tuple[bytes, ...] = ()


@dataclasses.dataclass(frozen=True)
class SplitCounts:
  """Counts of one split: Examples, distinct patients, Examples per label."""
  examples: int
  patients: int
  labels: Dict[str, int]


@dataclasses.dataclass(frozen=True)
class ArtifactData:
  """What the report shows of an Examples artifact.

  Attributes:
    uri: the artifact's URI.
    splits: split -> counts, in display order.
    samples: split -> label -> Samples ordered by key (labels in label order).
    label_names: label -> class name, where the artifact names its labels.
    rejects: the reject records, ordered by (stage, reason, path).
    summary: the artifact's `ingest_summary.json`, or None without one.
    is_dicom: whether the Examples came from DICOM (have `patient/key` or
      `image/bit_depth`).
  """
  uri: str
  splits: Dict[str, SplitCounts]
  samples: Dict[str, Dict[str, List[Sample]]]
  label_names: Dict[str, str]
  rejects: List[rejects_lib.Reject]
  summary: Optional[dict]
  is_dicom: bool

  def reject_counts(self) -> Dict[Tuple[str, str], int]:
    """(stage, reason) -> number of rejects, in stage order then by reason."""
    counts = rejects_lib.count_by_reason(self.rejects)
    return dict(sorted(counts.items(), key=lambda kv: _stage_order(kv[0])))

  def reject_rows(self, stage: str, reason: str,
                  limit: int) -> List[rejects_lib.Reject]:
    """The first `limit` rejects of a (stage, reason), ordered by path."""
    return [r for r in self.rejects
            if (r.stage, r.reason) == (stage, reason)][:limit]

  def split_warnings(self) -> List[str]:
    """Splits with one class only, or without a class another split has."""
    labels = [int(label) for counts in self.splits.values()
              for label in counts.labels if label.isdigit()]
    names = [self.label_names.get(str(i), str(i))
             for i in range(max(labels) + 1)] if labels else []
    return summary_lib.split_warnings({'splits': {
        split: {'examples': counts.examples,
                'labels': {k: v for k, v in counts.labels.items()
                           if k != NO_LABEL}}
        for split, counts in self.splits.items()}}, names)


def _stage_order(stage_reason: Tuple[str, str]) -> Tuple[int, str]:
  stage, reason = stage_reason
  position = (rejects_lib.STAGES.index(stage) if stage in rejects_lib.STAGES
              else len(rejects_lib.STAGES))
  return position, reason


def split_names(uri: str) -> List[str]:
  """The artifact's splits (its `Split-*` folders), train and eval first."""
  return console.split_order(
      os.path.basename(path.rstrip('/'))[len(SPLIT_PREFIX):]
      for path in tf.io.gfile.glob(os.path.join(uri, SPLIT_PREFIX + '*')))


def iter_examples(uri: str, split: str) -> Iterator[tf.train.Example]:
  """The Examples of one split, from its gzip TFRecord files."""
  files = sorted(tf.io.gfile.glob(
      os.path.join(uri, SPLIT_PREFIX + split, '*.gz')))
  if not files:
    return
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    yield tf.train.Example.FromString(record.numpy())


def label_sort_key(label: str) -> Tuple[int, float, str]:
  """Numeric labels in numeric order, then text labels, `NO_LABEL` last."""
  if label == NO_LABEL:
    return 2, 0.0, label
  try:
    return 0, float(label), label
  except ValueError:
    return 1, 0.0, label


def _values(example: tf.train.Example, name: str) -> list:
  """The values of a feature, bytes decoded as UTF-8; [] where absent."""
  feature = example.features.feature.get(name)
  if feature is None:
    return []
  kind = feature.WhichOneof('kind')
  if kind is None:
    return []
  values = list(getattr(feature, kind).value)
  if kind == 'bytes_list':
    return [v.decode('utf-8', 'replace') for v in values]
  return values


def _first(example: tf.train.Example, name: str, default=None):
  values = _values(example, name)
  return values[0] if values else default


def _number(value) -> str:
  """A float without noise digits ('2000', '1023.5')."""
  return f'{value:g}' if isinstance(value, float) else str(value)


def example_label(example: tf.train.Example) -> str:
  """The Example's label as text, `NO_LABEL` without one."""
  return str(_first(example, example_lib.LABEL, NO_LABEL))


def text_columns(summary: Optional[dict]) -> List[str]:
  """The table's text columns (single bytes values), from the summary."""
  types = ((summary or {}).get('metadata') or {}).get(
      'metadata_column_types', {})
  return sorted(column for column, kind in types.items() if kind == 'bytes')


def shorten(text: str, length: int = CAPTION_TEXT_LENGTH) -> str:
  """`text` on one line, cut to `length` characters with an ellipsis."""
  text = ' '.join(text.split())
  return text if len(text) <= length else text[:length - 1] + '\u2026'


def caption(example: tf.train.Example, label_names: Dict[str, str],
            texts: Sequence[str] = ()) -> Tuple[str, ...]:
  """Lines under a thumbnail: label, key metadata, text columns, key prefix.

  DICOM: modality and photometric interpretation of the source, bits stored
  and the PNG's bit depth, the first window (center/width). Other sources:
  format and size. Then the first `CAPTION_TEXT_COLUMNS` of the table's text
  columns `texts` (captions), shortened.
  """
  label = example_label(example)
  name = _first(example, example_lib.LABEL_NAME) or label_names.get(label)
  lines = [f'label {label}' + (f' {name}' if name else '')]
  modality = _first(example, 'dicom/modality')
  photometric = _first(example, 'dicom/photometric_interpretation')
  if modality or photometric:
    lines.append(' '.join(filter(None, (modality, photometric))))
    bits_stored = _first(example, 'dicom/bits_stored')
    bit_depth = _first(example, example_lib.IMAGE_BIT_DEPTH)
    lines.append(f'{bits_stored or "?"} bits -> {bit_depth or 8}-bit PNG')
    center = _first(example, 'dicom/window_center')
    width = _first(example, 'dicom/window_width')
    function = _first(example, 'dicom/voi_lut_function')
    if center is None or width is None:
      lines.append('no window')
    else:
      lines.append(f'W {_number(center)}/{_number(width)}' +
                   (f' {function}' if function else ''))
  else:
    lines.append(
        f'{_first(example, example_lib.IMAGE_FORMAT, "?")} '
        f'{_first(example, example_lib.IMAGE_HEIGHT, "?")}x'
        f'{_first(example, example_lib.IMAGE_WIDTH, "?")}x'
        f'{_first(example, example_lib.IMAGE_CHANNELS, "?")}')
  depth = _first(example, example_lib.IMAGE_DEPTH)
  if depth is not None:
    spacing = ' x '.join(_number(round(v, 3)) for v in _values(
        example, example_lib.VOLUME_SPACING))
    lines.append(f'{depth} slices, {spacing} mm')
  for column in texts[:CAPTION_TEXT_COLUMNS]:
    value = _first(example, column)
    if value is not None:
      lines.append(f'{column}: {shorten(value)}')
  lines.append(f'key {_key(example)[:8] or "?"}')
  return tuple(lines)


def _key(example: tf.train.Example) -> str:
  """`image/key`, or a volume's `series/key`."""
  return (_first(example, example_lib.IMAGE_KEY) or
          _first(example, example_lib.SERIES_KEY, ''))


def strip_slices(example: tf.train.Example,
                 count: int = STRIP_SLICES) -> Tuple[bytes, ...]:
  """Up to `count` encoded slices of a volume, first to last; () for an
  image."""
  if example_lib.IMAGE_DEPTH not in example.features.feature:
    return ()
  slices = example.features.feature[example_lib.IMAGE_ENCODED].bytes_list.value
  picks = sorted({round(i * (len(slices) - 1) / max(1, count - 1))
                  for i in range(min(count, len(slices)))})
  return tuple(slices[i] for i in picks)


def read_label_names(uri: str) -> Dict[str, str]:
  """Label -> class name from the artifact's vocabulary file, if it has one."""
  return {str(i): name for i, name in enumerate(reading.vocabulary(uri))
          if name}


class _SplitReader:
  """Counts one split's Examples and keeps the k smallest keys per label."""

  def __init__(self, split: str, per_label: int,
               label_names: Dict[str, str], texts: Sequence[str]):
    self._split = split
    self._per_label = per_label
    self._label_names = label_names
    self._texts = texts
    self.examples = 0
    self.patients = set()
    self.labels = collections.Counter()
    self.kept: Dict[str, List[Tuple[Tuple[str, int], tf.train.Example]]] = {}

  def add(self, example: tf.train.Example) -> None:
    self.examples += 1
    self.patients.update(_values(example, example_lib.PATIENT_KEY))
    label = example_label(example)
    self.labels[label] += 1
    name = _first(example, example_lib.LABEL_NAME)
    if name:
      self._label_names.setdefault(label, name)
    kept = self.kept.setdefault(label, [])
    # Frames of one multi-frame file share the key: the frame breaks ties.
    order = (_key(example), _first(example, FRAME_INDEX, 0))
    if len(kept) == self._per_label and order >= kept[-1][0]:
      return
    kept.insert(bisect.bisect([o for o, _ in kept], order), (order, example))
    del kept[self._per_label:]

  def counts(self) -> SplitCounts:
    return SplitCounts(
        examples=self.examples, patients=len(self.patients),
        labels={label: self.labels[label]
                for label in sorted(self.labels, key=label_sort_key)})

  def samples(self) -> Dict[str, List[Sample]]:
    return {
        label: [Sample(split=self._split, label=label, key=key,
                       encoded=_first_bytes(example),
                       caption=caption(example, self._label_names,
                                       self._texts),
                       slices=strip_slices(example))
                for (key, _), example in self.kept[label]]
        for label in sorted(self.kept, key=label_sort_key)}


def _is_dicom(example: tf.train.Example) -> bool:
  features = example.features.feature
  return (example_lib.PATIENT_KEY in features or
          example_lib.IMAGE_BIT_DEPTH in features)


def _first_bytes(example: tf.train.Example) -> bytes:
  return example.features.feature[
      example_lib.IMAGE_ENCODED].bytes_list.value[0]


def read_artifact(uri: str, per_label: int = 4,
                  splits: Optional[Sequence[str]] = None) -> ArtifactData:
  """Reads what the report shows of the Examples artifact at `uri`.

  Args:
    uri: the Examples artifact's URI (local path or any TF filesystem).
    per_label: Examples kept per (split, label) for thumbnails.
    splits: the splits to read; None reads every `Split-*` folder.

  Returns:
    Counts, samples, rejects and summary of the artifact.

  Raises:
    FileNotFoundError: when `uri` holds no split.
  """
  if per_label < 1:
    raise ValueError(f'per_label must be positive, got {per_label}.')
  names = list(splits) if splits is not None else split_names(uri)
  if not names:
    raise FileNotFoundError(
        f'No {SPLIT_PREFIX}* folder under {uri}: not an Examples artifact.')
  label_names = read_label_names(uri)
  summary = reading.read_summary(uri)
  texts = text_columns(summary)
  readers = {}
  is_dicom = False
  for split in names:
    reader = _SplitReader(split, per_label, label_names, texts)
    for example in iter_examples(uri, split):
      reader.add(example)
      is_dicom = is_dicom or _is_dicom(example)
    readers[split] = reader
  rejects = sorted(executor_base.read_rejects(uri),
                   key=lambda r: (_stage_order((r.stage, r.reason)), r.path))
  return ArtifactData(
      uri=uri,
      splits={split: reader.counts() for split, reader in readers.items()},
      samples={split: reader.samples() for split, reader in readers.items()},
      label_names=label_names,
      rejects=rejects,
      summary=summary,
      is_dicom=is_dicom)
