"""Reading an Examples artifact back without TFX: `read_examples`, class names.

    import image_example_gen
    train = image_example_gen.read_examples(examples_uri, 'train',
                                            image_size=(64, 64), channels=3,
                                            batch_size=32, as_supervised=True)
    train.class_names            # ['cat', 'dog', 'owl'], label i = name i
    model.fit(train, ...)        # Keras

The features are parsed with the components' own contract (`example.py`,
docs/design.md §3); images are decoded as the Trainer decodes them
(`tf.io.decode_image`, float32 in [0, 1] for 8- and 16-bit images alike).
"""

import json
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple, Union

import tensorflow as tf

from image_example_gen import example
from image_example_gen import outputs

SPLIT_PREFIX = 'Split-'
IMAGE = 'image'
LABEL = example.LABEL
KEY = example.IMAGE_KEY
DEFAULT_SHUFFLE_BUFFER = 1000


def examples_uri_of(path: str) -> str:
  """The Examples artifact of a split file or pattern ('<uri>/Split-x/*')."""
  parts = path.rstrip('/').split('/')
  for i in range(len(parts) - 1, -1, -1):
    if parts[i].startswith(SPLIT_PREFIX):
      return '/'.join(parts[:i])
  raise ValueError(f'{path} is not below a {SPLIT_PREFIX}* folder.')


def _read_text(path: str) -> Optional[str]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'r') as f:
    return f.read()


def read_summary(examples_uri: str) -> Optional[Dict[str, Any]]:
  """The artifact's `ingest_summary.json`, or None without one."""
  text = _read_text(posixpath.join(examples_uri, outputs.SUMMARY_FILE))
  return None if text is None else json.loads(text)


def vocabulary(examples_uri: str) -> List[str]:
  """The artifact's label vocabulary (line i: class of label i), or []."""
  text = _read_text(posixpath.join(examples_uri, outputs.VOCABULARY_FILE))
  return text.splitlines() if text else []


def class_names(examples_uri: str) -> List[str]:
  """Label i's class name, for every label of the artifact.

  The artifact's label vocabulary (image folders with class names); else,
  for integer labels (DICOM, tables of integers), '0' ... str(max label)
  from its ingest summary; [] for unlabelled Examples.
  """
  names = vocabulary(examples_uri)
  if names:
    return names
  summary = read_summary(examples_uri) or {'splits': {}}
  labels = [int(label) for split in summary['splits'].values()
            for label in split['labels']]
  return [str(i) for i in range(max(labels) + 1)] if labels else []


def _single_label(summary: Optional[Dict[str, Any]], split: str) -> bool:
  """Whether every Example of the split has exactly one label."""
  counts = (summary or {}).get('splits', {}).get(split)
  return bool(counts) and sum(counts['labels'].values()) == counts['examples']


def feature_spec(labelled: bool, single_label: bool) -> Dict[str, Any]:
  """The parsing spec of the Example contract's image, key and label."""
  spec = {
      example.IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
      example.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
  }
  if labelled:
    spec[LABEL] = (tf.io.FixedLenFeature([], tf.int64) if single_label else
                   tf.io.RaggedFeature(tf.int64))
  return spec


def read_examples(examples: Union[str, Any],
                  split: str = 'train',
                  *,
                  shuffle: bool = True,
                  seed: Optional[int] = None,
                  as_supervised: bool = False,
                  image_size: Optional[Tuple[int, int]] = None,
                  channels: int = 0,
                  batch_size: Optional[int] = None,
                  shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
                 ) -> tf.data.Dataset:
  """One split of an Examples artifact as a `tf.data.Dataset`.

  Args:
    examples: the artifact's URI, or the artifact (anything with `.uri`: a
      TFX `Examples`, an MLMD artifact).
    split: the split ('train', 'eval', ...).
    shuffle: shuffle the files and, in a buffer of `shuffle_buffer`, the
      records (records are also written in mixed order).
    seed: the shuffle's seed.
    as_supervised: (image, label) pairs, as Keras `fit` and TFDS'
      `as_supervised` take them; else dicts of `image`, `image/key` and
      `label`.
    image_size: (height, width) to resize to (bilinear, aspect not kept, as
      Keras' `image_dataset_from_directory`); None keeps each image's size.
    channels: 1 or 3 (or 4) channels for every image; 0 keeps each image's.
      Batching needs a size and a channel count.
    batch_size: batch the elements; None yields them one by one.
    shuffle_buffer: records in the shuffle buffer.

  Returns:
    The dataset, with `class_names` (label i is `class_names[i]`; [] for
    unlabelled Examples) as an attribute, as Keras sets it. `label` is an
    int64 scalar, or a ragged list for multi-label Examples.

  Raises:
    ValueError: no such split, or `as_supervised` without labels.
  """
  uri = str(getattr(examples, 'uri', examples)).rstrip('/')
  files = sorted(tf.io.gfile.glob(
      posixpath.join(uri, f'{SPLIT_PREFIX}{split}', '*')))
  if not files:
    found = sorted(os.path.basename(p.rstrip('/'))[len(SPLIT_PREFIX):]
                   for p in tf.io.gfile.glob(
                       posixpath.join(uri, f'{SPLIT_PREFIX}*')))
    raise ValueError(f'No split {split!r} in {uri}; it has {found}.')
  names = class_names(uri)
  summary = read_summary(uri)
  labelled = bool(names)
  if as_supervised and not labelled:
    raise ValueError(f'The Examples in {uri} have no labels: '
                     'as_supervised needs them.')
  spec = feature_spec(labelled, _single_label(summary, split))

  def decode(serialized):
    features = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_image(features.pop(example.IMAGE_ENCODED),
                               channels=channels, dtype=tf.float32,
                               expand_animations=False)
    if image_size is not None:
      image = tf.image.resize(image, image_size)
    features[IMAGE] = image
    if as_supervised:
      return image, features[LABEL]
    return features

  dataset = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed)
  dataset = dataset.interleave(
      lambda path: tf.data.TFRecordDataset(path, compression_type='GZIP'),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
  if shuffle:
    dataset = dataset.shuffle(shuffle_buffer, seed=seed)
  dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
  if batch_size:
    dataset = dataset.batch(batch_size)
  dataset = dataset.prefetch(tf.data.AUTOTUNE)
  dataset.class_names = names
  return dataset
