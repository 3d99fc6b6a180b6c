"""Image tables under a real LocalDagRunner (SQLite MLMD), one pipeline run.

A Kaggle-style flat folder with `train.csv` beside it (string labels, a
space-separated multi-label column, text and numbers, a file without a row,
a key on two rows, bad rows, rows without a file, two byte-identical images
of different classes) feeds two ImageFolderExampleGens; a Hugging Face-style
folder with `metadata.jsonl` (JSON list labels, a group column) feeds a
third. Every Example must equal its row, and every mismatch must be a reject
with its reason; the counts must reach the artifacts in MLMD.
"""

import io
import json

import numpy as np
from PIL import Image
import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import ImageFolderExampleGen
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import rejects

from ml_metadata.proto import metadata_store_pb2

pytestmark = pytest.mark.e2e

SALT = 'test-salt-not-secret'
_BREEDS = ('beagle', 'corgi', 'pug')
_TAGS = ('clear', 'haze', 'primary', 'water')
_N = 24


def _jpeg(seed: int) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'JPEG', quality=90)
  return buffer.getvalue()


def _kaggle(root):
  """train/<id>.jpg and train.csv; returns id -> its good row."""
  (root / 'train').mkdir()
  rows, lines = {}, ['id,breed,tags,note,age,score']
  for i in range(_N):
    image_id = f'img{i:02d}'
    # img10 holds img00's bytes, under another class.
    (root / 'train' / f'{image_id}.jpg').write_bytes(_jpeg(i % 10 if i < 11
                                                           else i))
    row = {'breed': _BREEDS[i % 3],
           'tags': ' '.join(_TAGS[j] for j in range(4) if (i >> j) & 1) or
                   'haze',
           'note': f'dog number {i}, "good"', 'age': i, 'score': i / 4}
    if i == 20:
      continue  # No row.
    line = (f'{image_id},{row["breed"]},{row["tags"]},'
            f'"{row["note"].replace(chr(34), chr(34) * 2)}",{row["age"]},'
            f'{row["score"]}')
    if i == 21:
      lines.append(line)  # The key on two rows.
    if i == 22:
      line = f'{image_id},,{row["tags"]},x,1,1.5'  # No breed.
    if i == 23:
      line += ',extra'  # A field too many.
    lines.append(line)
    rows[image_id] = row
  lines += ['ghost1,pug,haze,x,1,2', 'ghost2,pug,haze,x,1,2']
  (root / 'train.csv').write_text('\n'.join(lines) + '\n')
  return rows


def _hugging_face(root):
  """images/*.png, metadata.jsonl with list labels and a photographer."""
  (root / 'images').mkdir()
  with open(root / 'metadata.jsonl', 'w') as f:
    for i in range(18):
      buffer = io.BytesIO()
      Image.fromarray(np.full((8, 8), i % 12, np.uint8)).save(buffer, 'PNG')
      (root / 'images' / f'{i}.png').write_bytes(buffer.getvalue())
      f.write(json.dumps({'file_name': f'images/{i}.png',
                          'label': ['cat', 'dog'][:1 + i % 2],
                          'photographer': f'p{i % 5}'}) + '\n')


@pytest.fixture(scope='module')
def pipeline_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('tables_pipeline')
  kaggle_rows = _kaggle(root)
  (root / 'hf').mkdir()
  _hugging_face(root / 'hf')
  common = dict(input_base=str(root / 'train'),
                metadata_file=str(root / 'train.csv'), key_column='id',
                key_source='file_stem', max_reject_fraction=0.5)
  components = [
      ImageFolderExampleGen(
          label_column='breed', extra_columns=['note', 'age', 'score'],
          **common).with_id('Breeds'),
      ImageFolderExampleGen(
          label_column='tags', label_separator=' ', extra_columns=[],
          **common).with_id('Tags'),
      ImageFolderExampleGen(
          input_base=str(root / 'hf'),
          group_column='photographer').with_id('Groups'),
  ]
  connection = metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite'))
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='tables', pipeline_root=str(root / 'pipeline'),
      components=components, metadata_connection_config=connection))
  artifacts = {}
  with metadata.Metadata(connection) as m:
    for node in ('Breeds', 'Tags', 'Groups'):
      context = m.store.get_context_by_type_and_name('node', f'tables.{node}')
      executions = m.store.get_executions_by_context(context.id)
      assert [e.last_known_state for e in executions] == [
          metadata_store_pb2.Execution.COMPLETE], node
      (artifacts[node],) = [a for a in m.store.get_artifacts_by_context(
          context.id) if a.type == 'Examples']
  return kaggle_rows, artifacts


def _by_image(uri, examples_reader):
  """image id (file stem) -> (split, Example)."""
  wanted = {keys.keyed_hash(f'img{i:02d}.jpg', SALT, 'image'): f'img{i:02d}'
            for i in range(_N)}
  wanted.update({keys.keyed_hash(f'images/{i}.png', SALT, 'image'): str(i)
                 for i in range(18)})
  return {wanted[e.features.feature['image/key'].bytes_list.value[0]
                 .decode()]: (split, e)
          for split, examples in examples_reader(uri).items()
          for e in examples}


def _values(example, key):
  feature = example.features.feature[key]
  kind = feature.WhichOneof('kind')
  return list(getattr(feature, kind).value) if kind else []


def _rejects(uri):
  return {r.path: r.reason for r in executor_base.read_rejects(uri)}


def test_every_example_equals_its_row(pipeline_run, examples_reader):
  rows, artifacts = pipeline_run
  breeds = _by_image(artifacts['Breeds'].uri, examples_reader)
  tags = _by_image(artifacts['Tags'].uri, examples_reader)

  assert set(breeds) == set(rows) - {'img21', 'img22', 'img23'}
  assert set(tags) == set(rows) - {'img21', 'img23'}
  for image_id, (_, example) in breeds.items():
    row = rows[image_id]
    assert _values(example, 'label') == [_BREEDS.index(row['breed'])]
    assert _values(example, 'label/name') == [row['breed'].encode()]
    assert _values(example, 'note') == [row['note'].encode()]
    assert _values(example, 'age') == [row['age']]
    assert _values(example, 'score') == [row['score']]
  for image_id, (_, example) in tags.items():
    names = sorted(set(rows[image_id]['tags'].split()))
    assert _values(example, 'label') == [_TAGS.index(n) for n in names]
    assert _values(example, 'label/name') == [n.encode() for n in names]
    assert 'note' not in example.features.feature


def test_every_mismatch_is_a_reject_with_its_reason(pipeline_run):
  _, artifacts = pipeline_run
  common = {'img20.jpg': rejects.NO_METADATA_ROW,
            'img21.jpg': rejects.DUPLICATE_METADATA_ROW,
            'img23.jpg': rejects.BAD_METADATA_VALUE}

  assert _rejects(artifacts['Breeds'].uri) == {
      **common, 'img22.jpg': rejects.BAD_METADATA_VALUE}
  assert _rejects(artifacts['Tags'].uri) == common
  details = {r.path: r.detail for r in
             executor_base.read_rejects(artifacts['Breeds'].uri)}
  assert "label column 'breed' is empty" in details['img22.jpg']
  assert 'has 7 fields, the header 6' in details['img23.jpg']


def test_counts_reach_the_artifacts_in_mlmd(pipeline_run):
  _, artifacts = pipeline_run
  props = artifacts['Breeds'].custom_properties

  assert props['num_input_files'].int_value == _N
  assert props['num_rejected_files'].int_value == 4
  assert props['metadata_rows_without_file'].int_value == 2
  assert json.loads(props['metadata_column_types'].string_value) == {
      'age': 'int', 'note': 'bytes', 'score': 'float'}
  summary = json.load(open(
      f'{artifacts["Breeds"].uri}/{executor_base.SUMMARY_FILE}'))
  assert summary['metadata']['metadata_rows_without_file_first_keys'] == [
      'ghost1', 'ghost2']


def test_identical_images_of_two_classes_share_a_split(pipeline_run,
                                                       examples_reader):
  _, artifacts = pipeline_run
  for node in ('Breeds', 'Tags'):
    by_image = _by_image(artifacts[node].uri, examples_reader)
    props = artifacts[node].custom_properties

    assert by_image['img00'][0] == by_image['img10'][0]
    assert props['duplicate_images'].int_value == 2
    assert props['duplicate_images_across_splits'].int_value == 0
  breeds = _by_image(artifacts['Breeds'].uri, examples_reader)
  assert (_values(breeds['img00'][1], 'label/name') !=
          _values(breeds['img10'][1], 'label/name'))


def test_groups_decide_the_split_and_list_labels_are_multi_label(
    pipeline_run, examples_reader):
  _, artifacts = pipeline_run
  by_image = _by_image(artifacts['Groups'].uri, examples_reader)
  splits_of_group = {}
  for image_id, (split, example) in by_image.items():
    group = _values(example, 'group/key')[0]
    splits_of_group.setdefault(group, set()).add(split)
    assert _values(example, 'label') == [0, 1][:1 + int(image_id) % 2]
    assert 'photographer' not in example.features.feature

  assert len(by_image) == 18
  assert len(splits_of_group) == 5
  assert all(len(splits) == 1 for splits in splits_of_group.values())
  props = artifacts['Groups'].custom_properties
  # Images i and i + 12 (i < 6) are identical; their groups may differ.
  across = sum(2 for i in range(6)
               if by_image[str(i)][0] != by_image[str(i + 12)][0])
  assert props['duplicate_images'].int_value == 12
  assert props['duplicate_images_across_splits'].int_value == across
