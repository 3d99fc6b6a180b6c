"""Reading Examples back without TFX, and the converter that needs no pipeline.

`read_examples` is tested on small artifacts written here record by record
(8-bit, 16-bit, multi-label, unlabelled); `python -m image_example_gen
convert` runs the real ExampleGen under LocalDagRunner on a folder with junk,
and on one that fails.
"""

import io
import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import image_example_gen
from image_example_gen import __main__ as cli
from image_example_gen import codecs
from image_example_gen import example
from image_example_gen import records
from image_example_gen import rejects


def _png(pixels: np.ndarray) -> bytes:
  if pixels.dtype == np.uint16:
    return codecs.encode_png(pixels)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _artifact(root, splits, vocabulary=None):
  """Writes split -> [(pixels, labels)] as an Examples artifact."""
  summary = {'splits': {}}
  for split, items in splits.items():
    folder = root / f'Split-{split}'
    folder.mkdir(parents=True)
    with records.TFRecordGzipWriter(
        str(folder / 'data_tfrecord-00000-of-00001.gz')) as writer:
      for i, (pixels, labels) in enumerate(items):
        features = example.image_features(
            _png(pixels), 'png', pixels.shape[0], pixels.shape[1],
            1 if pixels.ndim == 2 else pixels.shape[2], f'key-{split}-{i}')
        if labels:
          features[example.LABEL] = labels
        writer.write(example.make_example(features).SerializeToString())
    counts = {}
    for _, labels in items:
      for label in labels:
        counts[str(label)] = counts.get(str(label), 0) + 1
    summary['splits'][split] = {'examples': len(items), 'labels': counts}
  (root / 'ingest_summary.json').write_text(json.dumps(summary))
  if vocabulary:
    (root / 'label_vocabulary.txt').write_text(
        ''.join(f'{name}\n' for name in vocabulary))
  return str(root)


def _rgb(seed, size=(5, 7)):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def test_images_labels_and_class_names(tmp_path):
  items = [(_rgb(i), [i % 3]) for i in range(12)]
  uri = _artifact(tmp_path, {'train': items, 'eval': items[:2]},
                  ['cat', 'dog', 'owl'])
  dataset = image_example_gen.read_examples(uri, 'train', shuffle=False)
  assert dataset.class_names == ['cat', 'dog', 'owl']
  got = list(dataset.as_numpy_iterator())
  assert len(got) == 12
  for (pixels, labels), element in zip(items, got):
    np.testing.assert_allclose(element['image'], pixels / 255.0, atol=1e-6)
    assert element['label'] == labels[0]
    assert element[example.IMAGE_KEY].startswith(b'key-train-')


def test_shuffled_by_default_and_repeatable_with_a_seed(tmp_path):
  uri = _artifact(tmp_path, {'train': [(_rgb(i), [i % 2]) for i in range(50)]},
                  ['a', 'b'])
  def keys(seed):
    return [e[example.IMAGE_KEY] for e in image_example_gen.read_examples(
        uri, 'train', seed=seed).as_numpy_iterator()]
  assert keys(1) == keys(1)
  assert sorted(keys(1)) == sorted(keys(2))
  assert keys(1) != sorted(keys(1))


def test_for_keras_batches_of_one_size(tmp_path):
  items = [(_rgb(i, (6 + i % 3, 9)), [i % 3]) for i in range(24)]
  uri = _artifact(tmp_path, {'train': items}, ['cat', 'dog', 'owl'])
  dataset = image_example_gen.read_examples(
      uri, 'train', as_supervised=True, image_size=(8, 8), channels=3,
      batch_size=8, seed=0)
  batches = list(dataset)
  assert [labels.shape for _, labels in batches] == [(8,)] * 3
  assert {images.shape for images, _ in batches} == {(8, 8, 8, 3)}
  assert batches[0][0].dtype == tf.float32


def test_sixteen_bit_images_and_integer_labels_from_the_summary(tmp_path):
  pixels = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
  uri = _artifact(tmp_path, {'train': [(pixels, [4])]})
  dataset = image_example_gen.read_examples(uri, 'train', shuffle=False)
  assert dataset.class_names == ['0', '1', '2', '3', '4']
  (element,) = dataset.as_numpy_iterator()
  np.testing.assert_allclose(element['image'][..., 0], pixels / 65535.0,
                             atol=1e-6)
  assert element['label'] == 4


def test_multi_label_is_ragged_and_unlabelled_has_no_label(tmp_path):
  uri = _artifact(tmp_path / 'multi', {'train': [
      (_rgb(0), [0, 2]), (_rgb(1), [1])]}, ['a', 'b', 'c'])
  labels = [list(e['label']) for e in image_example_gen.read_examples(
      uri, 'train', shuffle=False).as_numpy_iterator()]
  assert labels == [[0, 2], [1]]
  unlabelled = _artifact(tmp_path / 'none', {'train': [(_rgb(0), [])]})
  dataset = image_example_gen.read_examples(unlabelled, 'train')
  assert dataset.class_names == []
  assert 'label' not in next(iter(dataset))
  with pytest.raises(ValueError, match='no labels'):
    image_example_gen.read_examples(unlabelled, 'train', as_supervised=True)
  with pytest.raises(ValueError, match=r"No split 'test' .* \['train'\]"):
    image_example_gen.read_examples(unlabelled, 'test')


def _folder(root, broken=0):
  for c, name in enumerate(('cat', 'dog')):
    (root / name).mkdir(parents=True)
    for i in range(6):
      (root / name / f'{i}.png').write_bytes(_png(_rgb(10 * c + i)))
  for i in range(broken):
    (root / 'cat' / f'bad{i}.jpg').write_bytes(b'no image here')
  (root / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'dog' / 'meta.xml').write_bytes(b'<x/>')


@pytest.mark.e2e
def test_convert_writes_records_that_read_back(tmp_path, capsys):
  _folder(tmp_path / 'in')
  out = tmp_path / 'out'
  assert cli.main(['convert', str(tmp_path / 'in'), str(out),
                   '--ignore-patterns', '*.xml']) == 0
  assert {p.name for p in out.iterdir()} == {
      'Split-train', 'Split-eval', 'rejects', 'skipped',
      'ingest_summary.json', 'label_vocabulary.txt'}
  summary = json.loads((out / 'ingest_summary.json').read_text())
  assert summary['skips'] == {rejects.HIDDEN_FILE: 1,
                              rejects.IGNORE_PATTERN: 1}
  train = image_example_gen.read_examples(str(out), 'train')
  assert train.class_names == ['cat', 'dog']
  assert len(list(train)) == summary['splits']['train']['examples']
  err = capsys.readouterr().err
  assert 'ImageFolderExampleGen: found 14 files' in err
  assert f"read_examples('{out}', 'train')" in err
  assert cli.main(['convert', str(tmp_path / 'in'), str(out)]) == 1
  assert 'is not empty' in capsys.readouterr().err


@pytest.mark.e2e
def test_a_failed_convert_leaves_its_rejects_in_out(tmp_path, capsys):
  _folder(tmp_path / 'in', broken=4)
  out = tmp_path / 'out'
  assert cli.main(['convert', str(tmp_path / 'in'), str(out)]) == 1
  err = capsys.readouterr().err
  assert f'kept in {out}.' in err
  assert '--max-reject-fraction' in err
  assert {p.name for p in out.iterdir()} == {'rejects', 'skipped',
                                             'ingest_summary.json'}
  assert cli.main(['convert', str(tmp_path / 'in'), str(tmp_path / 'again'),
                   '--max-reject-fraction', '0.5']) == 0


def test_convert_refuses_flags_of_the_other_component(tmp_path, capsys):
  with pytest.raises(SystemExit):
    cli.main(['convert', 'a', 'b', '--source', 'nope'])
  assert cli.main(['convert', str(tmp_path), str(tmp_path / 'o'),
                   '--source', 'dicom', '--class-names', 'a,b']) == 1
  assert 'not an option of the dicom ExampleGen' in capsys.readouterr().err
