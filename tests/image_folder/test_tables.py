"""ImageFolderExampleGen with a metadata table (real Beam runs of the executor).

One Hugging Face-style folder (`metadata.jsonl` at the top) and one
Kaggle-style folder (`train.csv` keyed by file stem, space-separated tags)
hold every join case: a row per file, files without a row, a key on two
rows, a bad value, rows naming no file, byte-identical files and groups.
"""

import io
import json

import numpy as np
from PIL import Image
import pytest

from image_example_gen import ImageFolderExampleGen
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen.executor_base import read_rejects
from image_example_gen.image_folder import executor

SALT = 'test-salt-not-secret'


def _png(seed: int) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _feature(example, key):
  feature = example.features.feature[key]
  kind = feature.WhichOneof('kind')
  return list(getattr(feature, kind).value) if kind else []


def _by_key(examples):
  """image/key -> (split, Example)."""
  return {e.features.feature['image/key'].bytes_list.value[0].decode():
          (split, e) for split, split_examples in examples.items()
          for e in split_examples}


def _image_key(rel_path):
  return keys.keyed_hash(rel_path, SALT, 'image')


@pytest.fixture(scope='module')
def hugging_face(tmp_path_factory, executor_runner, examples_reader):
  root = tmp_path_factory.mktemp('hf')
  (root / 'images').mkdir()
  rows = []
  for i in range(40):
    (root / 'images' / f'{i:03d}.png').write_bytes(_png(i % 30))
    rows.append({'file_name': f'images/{i:03d}.png',
                 'label': ['cat', 'dog', 'bird'][i % 3],
                 'caption': f'photo {i}', 'score': i / 2,
                 'photographer': f'p{i % 7}'})
  rows[5]['score'] = {'x': 1}                      # a bad value
  rows.append(dict(rows[6]))                        # a key on two rows
  rows.append({'file_name': 'images/gone.png', 'label': 'cat'})
  rows.append({'file_name': 'images/also_gone.png', 'label': 'dog'})
  (root / 'images' / 'stray.png').write_bytes(_png(99))  # no row
  (root / 'metadata.jsonl').write_text(
      ''.join(json.dumps(r) + '\n' for r in rows))
  out = tmp_path_factory.mktemp('hf_out')
  component = ImageFolderExampleGen(
      input_base=str(root), extra_columns=['caption', 'score'],
      max_reject_fraction=0.5)
  artifact = executor_runner(component, out)
  return root, artifact, examples_reader(str(out))


def test_rows_become_labels_and_typed_features(hugging_face):
  _, _, examples = hugging_face
  by_key = _by_key(examples)
  _, example = by_key[_image_key('images/003.png')]

  assert _feature(example, 'label') == [1]  # bird, cat, dog sorted
  assert _feature(example, 'label/name') == [b'cat']
  assert _feature(example, 'caption') == [b'photo 3']
  assert _feature(example, 'score') == [1.5]
  assert 'photographer' not in example.features.feature


def test_every_file_is_joined_or_rejected_with_its_reason(hugging_face):
  _, artifact, examples = hugging_face
  got = {r.path: r.reason for r in read_rejects(artifact.uri)}

  assert got == {
      'images/005.png': rejects.BAD_METADATA_VALUE,
      'images/006.png': rejects.DUPLICATE_METADATA_ROW,
      'images/stray.png': rejects.NO_METADATA_ROW,
  }
  assert sum(len(e) for e in examples.values()) == 38
  assert 'metadata.jsonl' not in got  # The table is not an input image.
  detail = {r.path: r.detail for r in read_rejects(artifact.uri)}
  assert "column 'score'" in detail['images/005.png']
  assert 'line 6' in detail['images/005.png']


def test_summary_counts_rows_without_a_file(hugging_face):
  _, artifact, _ = hugging_face
  summary = json.load(open(f'{artifact.uri}/{executor_base.SUMMARY_FILE}'))
  metadata = summary['metadata']

  assert metadata['metadata_rows'] == 43
  assert metadata['metadata_rows_without_file'] == 2
  assert metadata['metadata_rows_without_file_first_keys'] == [
      'images/also_gone.png', 'images/gone.png']
  assert metadata['metadata_duplicate_keys'] == 1
  # Typed over the whole table; row 5's object is skipped, then rejected.
  assert metadata['metadata_column_types'] == {'caption': 'bytes',
                                               'score': 'float'}
  props = artifact.mlmd_artifact.custom_properties
  assert props['metadata_rows_without_file'].int_value == 2
  assert json.loads(props['metadata_column_types'].string_value) == {
      'caption': 'bytes', 'score': 'float'}
  with open(f'{artifact.uri}/label_vocabulary.txt') as f:
    assert f.read() == 'bird\ncat\ndog\n'


def test_byte_identical_images_share_a_split_and_are_counted(hugging_face):
  _, artifact, examples = hugging_face
  by_key = _by_key(examples)
  splits_by_content = {}
  for split, example in by_key.values():
    content = _feature(example, 'image/content_key')[0]
    splits_by_content.setdefault(content, set()).add(split)

  assert all(len(s) == 1 for s in splits_by_content.values())
  summary = json.load(open(f'{artifact.uri}/{executor_base.SUMMARY_FILE}'))
  # Files i and i + 30 (i < 10) hold the same bytes; 5 and 6 are rejected.
  assert summary['duplicates'] == {
      'duplicate_images': 16, 'duplicate_groups': 8,
      'duplicate_images_across_splits': 0}


def test_groups_never_span_splits(hugging_face, tmp_path, executor_runner,
                                  examples_reader):
  root, _, _ = hugging_face
  component = ImageFolderExampleGen(
      input_base=str(root), group_column='photographer',
      max_reject_fraction=0.5)
  artifact = executor_runner(component, tmp_path)
  examples = examples_reader(str(tmp_path))
  splits_by_group = {}
  for split, split_examples in examples.items():
    for example in split_examples:
      group = _feature(example, 'group/key')[0]
      splits_by_group.setdefault(group, set()).add(split)

  assert len(splits_by_group) == 7
  assert all(len(s) == 1 for s in splits_by_group.values())
  assert set(splits_by_group) == {
      keys.keyed_hash(f'p{i}', SALT, 'group').encode() for i in range(7)}
  summary = json.load(open(f'{artifact.uri}/{executor_base.SUMMARY_FILE}'))
  # Without `score`, row 5 is good: only 6 (two rows) is rejected.
  assert summary['duplicates']['duplicate_images'] == 18
  across = summary['duplicates']['duplicate_images_across_splits']
  assert across == sum(
      2 for i in range(10) if i != 6 and
      _split_of(examples, f'images/{i:03d}.png') !=
      _split_of(examples, f'images/{i + 30:03d}.png'))
  assert summary['splits']['train']['patients'] + summary['splits'][
      'eval']['patients'] == 7


def _split_of(examples, rel_path):
  return _by_key(examples)[_image_key(rel_path)][0]


def test_kaggle_csv_with_file_stems_and_multi_labels(tmp_path, executor_runner,
                                                    examples_reader):
  root = tmp_path / 'train-jpg'
  root.mkdir()
  lines = ['image_name,tags']
  for i in range(12):
    (root / f'train_{i}.png').write_bytes(_png(100 + i))
    lines.append(f'train_{i},{"clear primary" if i % 2 else "haze"}')
  csv_path = tmp_path / 'train_v2.csv'
  csv_path.write_text('\n'.join(lines) + '\n')
  component = ImageFolderExampleGen(
      input_base=str(root), metadata_file=str(csv_path),
      key_column='image_name', key_source='file_stem', label_column='tags',
      label_separator=' ')
  artifact = executor_runner(component, tmp_path / 'out')
  by_key = _by_key(examples_reader(str(tmp_path / 'out')))

  _, one = by_key[_image_key('train_1.png')]
  _, two = by_key[_image_key('train_2.png')]
  assert _feature(one, 'label') == [0, 2]  # clear, haze, primary
  assert _feature(one, 'label/name') == [b'clear', b'primary']
  assert _feature(two, 'label') == [1]
  assert not read_rejects(artifact.uri)


def test_integer_labels_named_by_class_names(tmp_path, executor_runner,
                                             examples_reader):
  (tmp_path / 'in').mkdir()
  for i in range(4):
    (tmp_path / 'in' / f'{i}.png').write_bytes(_png(200 + i))
  (tmp_path / 'in' / 'metadata.csv').write_text(
      'file_name,label\n0.png,0\n1.png,1\n2.png,1\n3.png,2\n')
  component = ImageFolderExampleGen(
      input_base=str(tmp_path / 'in'), class_names=['cat', 'dog'],
      max_reject_fraction=0.5)
  artifact = executor_runner(component, tmp_path / 'out')
  by_key = _by_key(examples_reader(str(tmp_path / 'out')))

  assert _feature(by_key[_image_key('1.png')][1], 'label/name') == [b'dog']
  assert {r.path: r.reason for r in read_rejects(artifact.uri)} == {
      '3.png': rejects.UNKNOWN_CLASS}


@pytest.mark.parametrize('text, kwargs, match', [
    ('name,label\na.png,cat\n', {}, r"missing column\(s\) \['file_name'\]; "
     r"it has \['name', 'label'\]"),
    ('file_name,label\n', {}, 'has no rows'),
    # The default label column is optional; one named explicitly is not.
    ('file_name,text\na.png,a cat\n', {'label_column': 'label'},
     r"missing column\(s\) \['label'\]; it has \['file_name', 'text'\]"),
    ('file_name,text\na.png,a cat\n', {'column_types': {'score': 'int'}},
     r"missing column\(s\) \['score'\]"),
])
def test_bad_tables_fail_at_once(tmp_path, text, kwargs, match):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'a.png').write_bytes(_png(0))
  (tmp_path / 'in' / 'metadata.csv').write_text(text)
  with pytest.raises(ValueError, match=match):  # At construction.
    ImageFolderExampleGen(input_base=str(tmp_path / 'in'), **kwargs)


def test_a_missing_metadata_file_fails_at_once(tmp_path):
  (tmp_path / 'in').mkdir()
  with pytest.raises(ValueError, match='nowhere.csv does not exist'):
    ImageFolderExampleGen(input_base=str(tmp_path / 'in'),
                          metadata_file=str(tmp_path / 'nowhere.csv'))


@pytest.mark.parametrize('files, patterns, expected', [
    ({'metadata.csv'}, ['**'], ['metadata.csv']),
    ({'metadata.parquet'}, ['train/**', 'test/**'], ['metadata.parquet'] * 2),
    ({'train/metadata.csv', 'test/metadata.jsonl'}, ['train/**', 'test/**'],
     ['train/metadata.csv', 'test/metadata.jsonl']),
    (set(), ['train/**', 'test/**'], [None, None]),
    ({'train/metadata.csv'}, ['**'], [None]),
])
def test_tables_are_found_at_the_top_or_in_each_split_folder(files, patterns,
                                                             expected):
  exists = lambda path: path[len('/in/'):] in files
  found = executor.find_tables('/in', patterns, exists)
  assert found == [path and f'/in/{path}' for path in expected]


@pytest.mark.parametrize('files, match', [
    ({'metadata.csv', 'metadata.jsonl'}, 'pass metadata_file'),
    ({'metadata.csv', 'train/metadata.csv'}, 'at the top and tables in split'),
    ({'train/metadata.csv'}, r"\['test/'\] .* hold no metadata table"),
])
def test_ambiguous_or_partial_tables_fail_at_the_start(files, match):
  exists = lambda path: path[len('/in/'):] in files
  with pytest.raises(ValueError, match=match):
    executor.find_tables('/in', ['train/**', 'test/**'], exists)
