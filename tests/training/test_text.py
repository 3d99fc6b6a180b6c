"""Text features: the captioned sample, Transform's text ids, an image+text model.

The Examples are built here from the sample's metadata.jsonl as
ImageFolderExampleGen writes them (test scaffolding for the training code
only), with the curated schema of the `captioned` source; the transform
graph is the real preprocessing_fn's (`transform_graph.write_transform_graph`).
"""

import json
import pathlib
from typing import List

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx

from image_example_gen import example
from image_example_gen import sample_data
from image_example_gen.training import model
from image_example_gen.training import preprocessing
from image_example_gen.training import transform_graph

_SCHEMA = (pathlib.Path(__file__).resolve().parents[2] / 'schemas' /
           'captioned' / 'schema.pbtxt')
_TEXT = 'description'
_SIZE = 16
_CONFIG = {preprocessing.IMAGE_SIZE_KEY: _SIZE,
           preprocessing.TEXT_FEATURE_KEY: _TEXT,
           model.EPOCHS_KEY: 6, model.BATCH_SIZE_KEY: 16}
_N_TRAIN, _N_EVAL = 300, 150


def _examples(sample: sample_data.CaptionedSample) -> List[bytes]:
  """The sample as serialized Examples, in metadata.jsonl order."""
  records = []
  for line in sample.metadata_path.read_text(encoding='utf-8').splitlines():
    row = json.loads(line)
    encoded = (sample.root / row['file_name']).read_bytes()
    height, width, channels = tf.io.decode_png(encoded).shape
    features = example.image_features(encoded, 'png', height, width,
                                      channels, f'key-{row["file_name"]}')
    features.update({
        'image/content_key': f'content-{row["file_name"]}',
        example.LABEL: sample.class_names.index(row['label']),
        example.LABEL_NAME: row['label'],
        _TEXT: row[_TEXT],
    })
    records.append(example.make_example(features).SerializeToString())
  return records


def _with_text(records: List[bytes], text: str) -> List[bytes]:
  """The Examples with `description` replaced by `text`."""
  result = []
  for record in records:
    parsed = tf.train.Example.FromString(record)
    parsed.features.feature[_TEXT].bytes_list.value[:] = [text.encode()]
    result.append(parsed.SerializeToString())
  return result


def _write(path: pathlib.Path, records: List[bytes]) -> str:
  path.parent.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(path), 'GZIP') as writer:
    for record in records:
      writer.write(record)
  return str(path.parent / '*')


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
  return sample_data.make_captioned_images(
      tmp_path_factory.mktemp('captioned'), _N_TRAIN + _N_EVAL, size=_SIZE)


@pytest.fixture(scope='module')
def data(sample, tmp_path_factory):
  """(train pattern, eval pattern, transform output dir)."""
  root = tmp_path_factory.mktemp('text')
  # As ImageFolderExampleGen writes it: run_fn takes the class count from it.
  (root / 'label_vocabulary.txt').write_text(
      ''.join(f'{name}\n' for name in sample.class_names))
  records = _examples(sample)
  train = _write(root / 'Split-train' / 'data.gz', records[:_N_TRAIN])
  eval_ = _write(root / 'Split-eval' / 'data.gz', records[_N_TRAIN:])
  transform_graph.write_transform_graph(
      train, str(_SCHEMA), str(root / 'transform'), str(root / 'tmp'),
      _CONFIG)
  return train, eval_, str(root / 'transform')


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
  """run_fn's exported model directory."""
  train, eval_, transform_dir = data
  root = tmp_path_factory.mktemp('trained_text')
  model.run_fn(tfx.components.FnArgs(
      train_files=[train], eval_files=[eval_],
      transform_output=transform_dir,
      serving_model_dir=str(root / 'serving'),
      model_run_dir=str(root / 'logs'),
      custom_config=_CONFIG))
  return str(root / 'serving')


def test_sample_is_deterministic_and_hugging_face_shaped(sample, tmp_path):
  again = sample_data.make_captioned_images(tmp_path, 20, size=_SIZE)
  # Labels index the classes that occur: compare the rest.
  assert ([(i.file_name, i.class_name, i.description) for i in again.images]
          == [(i.file_name, i.class_name, i.description)
              for i in sample.images[:20]])
  assert ((again.root / 'images' / '00007.png').read_bytes() ==
          (sample.root / 'images' / '00007.png').read_bytes())
  rows = [json.loads(line) for line in
          again.metadata_path.read_text(encoding='utf-8').splitlines()]
  assert rows[3] == {'file_name': 'images/00003.png',
                     'label': again.images[3].class_name,
                     'description': again.images[3].description}
  assert sample.class_names == sorted(sample_data.DIGIT_NAMES)


def test_descriptions_say_parity_magnitude_and_thirds(sample):
  for image in sample.images[:50]:
    digit = sample_data.DIGIT_NAMES.index(image.class_name)
    words = set(image.description.lower().strip('.').replace(',', '').split())
    assert bool(words & {'even', 'two'}) == (digit % 2 == 0), image
    assert bool(words & {'greater', 'more', 'large'}) == (digit > 4), image
    assert 'three' in words and ('not' in words) == (digit % 3 != 0), image
    assert image.label == sample.class_names.index(image.class_name)


def test_tokenize_lowercases_and_splits_on_non_letters():
  tokens = preprocessing.tokenize(tf.constant(
      [['Ünïcode, WORDS! a-b  42'], [''], ['one']]))
  assert tokens.dense_shape.numpy().tolist() == [3, 5]
  assert [t.decode() for t in tokens.values.numpy()] == [
      'ünïcode', 'words', 'a', 'b', '42', 'one']
  assert tokens.indices.numpy()[:, 0].tolist() == [0, 0, 0, 0, 0, 2]


@pytest.mark.parametrize('value', ['', 3])
def test_text_feature_refuses_bad_values(value):
  with pytest.raises(ValueError, match=preprocessing.TEXT_FEATURE_KEY):
    preprocessing.text_feature({preprocessing.TEXT_FEATURE_KEY: value})


def _records(pattern: str) -> List[bytes]:
  return [r.numpy() for r in tf.data.TFRecordDataset(
      tf.io.gfile.glob(pattern), compression_type='GZIP')]


def test_transform_maps_words_to_vocabulary_ids(data):
  _, eval_, transform_dir = data
  output = tft.TFTransformOutput(transform_dir)
  assert isinstance(output.transformed_feature_spec()[preprocessing.TEXT_IDS],
                    tf.io.VarLenFeature)
  vocabulary = [w.decode() for w in
                output.vocabulary_by_name(preprocessing.TEXT_VOCABULARY)]
  assert {'even', 'odd', 'greater', 'less', 'digit'} <= set(vocabulary)
  assert model.text_tokens(output) == len(vocabulary) + 1
  records = _with_text(_records(eval_)[:2], 'An ODD digit, zebra!')
  spec = {key: output.raw_feature_spec()[key]
          for key in (preprocessing.RAW_IMAGE, _TEXT)}
  features = output.transform_features_layer()(
      tf.io.parse_example(tf.constant(records), spec))
  ids = tf.sparse.to_dense(features[preprocessing.TEXT_IDS]).numpy()
  oov = len(vocabulary)  # 'zebra', never seen.
  expected = [vocabulary.index(w) for w in ('an', 'odd', 'digit')] + [oov]
  assert ids.tolist() == [expected, expected]


def test_make_dataset_gives_images_and_text_ids(data):
  train, _, transform_dir = data
  inputs, labels = next(iter(model.make_dataset(
      [train], tft.TFTransformOutput(transform_dir), batch_size=8,
      shuffle=False, text_feature=_TEXT)))
  assert inputs[preprocessing.IMAGE].shape == (8, _SIZE, _SIZE, 1)
  assert isinstance(inputs[preprocessing.TEXT_IDS], tf.SparseTensor)
  assert inputs[preprocessing.TEXT_IDS].dense_shape[0] == 8
  assert labels.shape == (8,)


def test_run_fn_needs_the_text_feature_transform_used(data, tmp_path):
  train, _, transform_dir = data
  config = dict(_CONFIG)
  del config[preprocessing.TEXT_FEATURE_KEY]
  with pytest.raises(ValueError, match='same .text_feature.'):
    model.run_fn(tfx.components.FnArgs(
        train_files=[train], eval_files=[train],
        transform_output=transform_dir,
        serving_model_dir=str(tmp_path / 'serving'),
        model_run_dir=str(tmp_path / 'logs'), custom_config=config))


def _accuracy(serving_dir: str, records: List[bytes]) -> float:
  serve = tf.saved_model.load(serving_dir).signatures[model.SERVING_SIGNATURE]
  probabilities = serve(**{model.SERVING_INPUT: tf.constant(records)})[
      model.SERVING_OUTPUT].numpy()
  labels = [tf.train.Example.FromString(r).features.feature[example.LABEL]
            .int64_list.value[0] for r in records]
  return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def test_serving_uses_the_text(trained, data):
  """Raw Examples in; the real descriptions beat empty ones clearly."""
  records = _records(data[1])
  with_text = _accuracy(trained, records)
  without = _accuracy(trained, _with_text(records, ''))
  assert with_text >= without + 0.15, (with_text, without)


def test_serving_matches_the_training_input_pipeline(trained, data):
  _, eval_, transform_dir = data
  inputs = [inputs for inputs, _ in model.make_dataset(
      [eval_], tft.TFTransformOutput(transform_dir), batch_size=_N_EVAL,
      shuffle=False, text_feature=_TEXT)]
  serve = tf.saved_model.load(trained).signatures[model.SERVING_SIGNATURE]
  served = serve(**{model.SERVING_INPUT: tf.constant(_records(eval_))})
  np.testing.assert_allclose(
      served[model.SERVING_OUTPUT].numpy(),
      tf_keras.models.load_model(trained).predict(inputs[0], verbose=0),
      atol=1e-5)
