"""ImageFolderExampleGen's executor on the generated PetImages-like folder."""

import os

import numpy as np
from PIL import Image
from PIL import ImageOps
import pytest
import tensorflow as tf

from image_example_gen import ImageFolderExampleGen
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen import sample_data
from image_example_gen.executor_base import read_rejects
from image_example_gen.executor_base import read_skips

SALT = os.environ['IMAGE_EXAMPLE_GEN_SALT']


@pytest.fixture(scope='module')
def run(image_folder_sample, tmp_path_factory, executor_runner,
        examples_reader):
  out = tmp_path_factory.mktemp('image_folder_run')
  component = ImageFolderExampleGen(input_base=str(image_folder_sample.root),
                                    max_reject_fraction=0.2)
  artifact = executor_runner(component, out)
  return artifact, examples_reader(str(out))


def _by_path(sample, examples):
  by_hash = {keys.keyed_hash(img.rel_path, SALT, 'image'): img
             for img in sample.images}
  result = {}
  for split, split_examples in examples.items():
    for ex in split_examples:
      key = ex.features.feature['image/key'].bytes_list.value[0].decode()
      assert key not in result
      result[key] = (by_hash[key], ex, split)
  return result


def _pillow_pixels(path) -> np.ndarray:
  """The source as a person sees it: EXIF orientation applied, no alpha."""
  with Image.open(path) as image:
    image = ImageOps.exif_transpose(image)
    if image.mode not in ('L', 'RGB', 'I;16'):
      image = image.convert('RGB')
    return np.asarray(image)


def test_every_file_is_one_example_or_one_reject(image_folder_sample, run):
  artifact, examples = run
  found = _by_path(image_folder_sample, examples)
  assert sorted(img.rel_path for img, _, _ in found.values()) == sorted(
      img.rel_path for img in image_folder_sample.images)
  got = {r.path: r.reason for r in read_rejects(artifact.uri)}
  assert got == image_folder_sample.rejects
  assert {s.path: s.reason for s in read_skips(artifact.uri)} == (
      image_folder_sample.skips)
  n_files = sum(1 for p in image_folder_sample.root.rglob('*') if p.is_file())
  props = artifact.mlmd_artifact.custom_properties
  assert (props['num_input_files'].int_value +
          props['num_skipped_files'].int_value == n_files)
  assert (props['num_converted_files'].int_value +
          props['num_rejected_files'].int_value +
          props['num_skipped_files'].int_value == n_files)


def test_pixels_labels_and_formats(image_folder_sample, run):
  artifact, examples = run
  vocabulary = (artifact.uri + '/label_vocabulary.txt')
  with open(vocabulary) as f:
    assert f.read().split() == image_folder_sample.class_names
  for img, ex, _ in _by_path(image_folder_sample, examples).values():
    feature = ex.features.feature
    assert feature['label'].int64_list.value == [img.label]
    assert feature['label/name'].bytes_list.value == [img.class_name.encode()]
    assert feature['image/format'].bytes_list.value == [
        img.stored_format.encode()]
    encoded = feature['image/encoded'].bytes_list.value[0]
    source = image_folder_sample.root / img.rel_path
    if img.stored_format == img.source_format:
      assert encoded == source.read_bytes(), img  # stored unchanged
    decoded = tf.io.decode_image(encoded, expand_animations=False)
    if img.stored_format == 'jpeg':
      decoded = tf.io.decode_jpeg(encoded, dct_method='INTEGER_ACCURATE')
    decoded = decoded.numpy()
    assert list(decoded.shape) == [feature['image/height'].int64_list.value[0],
                                   feature['image/width'].int64_list.value[0],
                                   feature['image/channels'].int64_list.value[0]]
    want = _pillow_pixels(source)
    got = decoded[..., 0] if want.ndim == 2 else decoded[..., :3]
    assert got.shape == want.shape, img
    assert np.array_equal(got, want), img


def test_same_input_gives_same_splits(image_folder_sample, run, tmp_path,
                                      executor_runner, examples_reader,
                                      split_keys):
  _, first = run
  executor_runner(ImageFolderExampleGen(
      input_base=str(image_folder_sample.root), max_reject_fraction=0.2),
                  tmp_path)
  second = examples_reader(str(tmp_path))
  assert split_keys(first) == split_keys(second)


def test_multi_processing_gives_the_same_examples(image_folder_sample, run,
                                                  tmp_path, executor_runner,
                                                  examples_reader, serialized):
  _, in_memory = run
  executor_runner(
      ImageFolderExampleGen(input_base=str(image_folder_sample.root),
                            max_reject_fraction=0.2), tmp_path,
      ['--direct_running_mode=multi_processing', '--direct_num_workers=2'])
  parallel = examples_reader(str(tmp_path))
  assert serialized(parallel) == serialized(in_memory)


def test_split_folders_become_splits(tmp_path, executor_runner,
                                     examples_reader):
  sample = sample_data.make_image_folder(tmp_path / 'in', n_images=40,
                                         size=16, split_folders=True)
  artifact = executor_runner(
      ImageFolderExampleGen(input_base=str(sample.root),
                            max_reject_fraction=0.3), tmp_path / 'out')
  examples = examples_reader(artifact.uri)
  assert set(examples) == {'train', 'eval', 'test'}
  by_split = {'train': 'train', 'val': 'eval', 'test': 'test'}
  found = _by_path(sample, examples)
  assert all(split == by_split[img.split] for img, _, split in found.values())
  assert len(found) == len(sample.images)


def test_explicit_class_names_reject_other_folders(image_folder_sample,
                                                   tmp_path, executor_runner):
  kept = image_folder_sample.class_names[:3]
  artifact = executor_runner(
      ImageFolderExampleGen(input_base=str(image_folder_sample.root),
                            class_names=kept, max_reject_fraction=1.0),
      tmp_path)
  unknown = [r for r in read_rejects(artifact.uri)
             if r.reason == rejects.UNKNOWN_CLASS]
  outside = [img.rel_path for img in image_folder_sample.images
             if img.class_name not in kept]
  outside += [path for path in image_folder_sample.rejects
              if path.split('/')[0] not in kept]
  assert sorted(r.path for r in unknown) == sorted(outside)


@pytest.mark.parametrize('kwargs, message', [
    ({'max_size': 0}, 'max_size'),
    ({'class_names': []}, 'class'),
    ({'class_names': ['a', 'a']}, 'a'),
    ({'max_reject_fraction': -0.1}, 'max_reject_fraction'),
    ({'label_pattern': r'^cat\.\d+'}, 'exactly one group'),
    ({'label_pattern': r'^(cat)|(dog)'}, 'exactly one group'),
    ({'label_pattern': '(cat'}, 'not a regular expression'),
    ({'label_pattern': r'^(cat|dog)\.', 'label_column': 'breed'},
     'pass neither label_column'),
    ({'label_pattern': r'^(cat|dog)\.', 'label_separator': ' '},
     'pass neither'),
    ({'key_source': 'SOPInstanceUID'}, 'one group'),
    ({'key_source': 'stem'}, "'relative_path', 'file_stem' or a regular"),
    ({'column_types': {'score': 'double'}}, 'one of'),
    ({'column_types': {'file_name': 'int'}}, 'not exported'),
    ({'column_types': {'a': 'int'}, 'extra_columns': ['b']}, 'not exported'),
    ({'extra_columns': 'caption'}, 'sequence'),
])
def test_bad_parameters_fail_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    ImageFolderExampleGen(input_base='gs://bucket/data', **kwargs)

