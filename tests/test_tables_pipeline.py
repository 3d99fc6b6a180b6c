"""Tables and folder layouts under a real LocalDagRunner (SQLite MLMD).

One pipeline run holds an ExampleGen per layout a peer loader reads (Hugging
Face `imagefolder`, Keras `image_dataset_from_directory`, torchvision
`ImageFolder`, Kaggle):

* Breeds, Tags: a flat folder with a Kaggle `train.csv` (string labels, a
  space-separated multi-label column, text and numbers, a file without a
  row, a key on two rows, bad rows, rows without a file, byte-identical
  images of different classes); Groups: `metadata.jsonl` with list labels
  and a group column;
* Dirty: a Kaggle table with missing-value tokens, a word in a column of
  numbers and declared `column_types` with a value that does not parse;
* PerSplit: `train/metadata.csv`, `validation/metadata.jsonl`,
  `test/metadata.parquet`, keys relative to their folder, and keys that leave
  it (`..`, absolute, URL);
* Flat: a flat folder of every newly read format (Netpbm, PCX, SGI, QOI,
  TGA, ICO, DDS, JPEG 2000), no table: unlabelled;
* Names: labels from file names (`label_pattern`), reject `no_label_in_name`;
* Folders: class folders plus a table without a label column;
* Subjects: a table keyed by folder (`key_source` a pattern);
* Captions: Hugging Face text-to-image `metadata.jsonl` (`file_name`, `text`,
  nested `objects`): unlabelled, text exported, objects left out;
* DicomNew, DicomOld: DicomExampleGen with today's and the deprecated
  parameter names, which must write the same Examples; DicomPatients: a
  patient-level table joined by the patient folder.

Every Example must equal its row, folder or name, every mismatch must be a
reject with its reason, and the counts must reach the artifacts in MLMD.
"""

import io
import json
import logging

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import console
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


def _pixels(seed: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
  high = 256 if dtype == np.uint8 else 65536
  shape = (8, 8) if channels == 1 else (8, 8, channels)
  return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def _encoded(pixels: np.ndarray, pil_format: str, mode=None, **options):
  buffer = io.BytesIO()
  Image.fromarray(pixels, mode).save(buffer, pil_format, **options)
  return buffer.getvalue()


def _dirty(root):
  """dirty/<id>.jpg and dirty.csv, a Kaggle table with dirty values.

  Returns id -> the features its Example must have (None: rejected).
  """
  (root / 'dirty').mkdir()
  # id, label, score, age, weight (float), count (int), comment
  cells = [
      ('d00', 'cat', '0.5', '3', '1.5', '3.0', 'fine, really'),
      ('d01', 'dog', 'n/a', '4', '2.5', '4', ''),
      ('d02', 'cat', 'NA', '5', '', '5', 'says "x"'),
      ('d03', 'dog', '', '6', '3', 'nan', 'None'),
      ('d04', 'cat', 'null', '7', 'heavy', '7', 'x'),   # weight does not parse
      ('d05', 'dog', '#N/A', 'unknown', '4.5', '8', 'y'),  # makes age text
      ('d06', 'cat', '1.5', '9', 'NaN', '9', 'z'),
      ('d07', 'dog', 'None', '10', '6', '1e1', 'N/A'),
      ('d08', 'cat', '2.5', '11', '7', '11', 'w'),
      ('d09', 'dog', '3', '12', '8', '12', 'v'),
  ]
  lines = ['id,label,score,age,weight,count,comment']
  expected = {}
  for i, (image_id, label, score, age, weight, count, comment) in enumerate(
      cells):
    (root / 'dirty' / f'{image_id}.jpg').write_bytes(_jpeg(300 + i))
    lines.append(','.join([image_id, label, score, age, weight, count,
                           '"' + comment.replace('"', '""') + '"']))
    if weight == 'heavy':
      expected[image_id] = None
      continue
    features = {'label/name': [label.encode()], 'age': [age.encode()],
                'score': [float(score)] if score not in _MISSING else [],
                'weight': [float(weight)] if weight not in _MISSING else [],
                'count': [int(float(count))] if count not in _MISSING else [],
                'comment': [comment.encode()] if comment not in _MISSING
                           else []}
    expected[image_id] = features
  lines.append('ghost,cat,1,1,1,1,x')
  (root / 'dirty.csv').write_text('\n'.join(lines) + '\n')
  return expected


_MISSING = ('', 'n/a', 'NA', 'nan', 'null', '#N/A', 'NaN', 'None', 'N/A')


def _per_split(root):
  """train/ (metadata.csv), validation/ (.jsonl), test/ (.parquet).

  Returns rel path -> (split, class name). Keys are relative to each table's
  folder; train's table also holds keys that leave it.
  """
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  expected = {}
  rows = {'train': [], 'validation': [], 'test': []}
  for split, n in (('train', 6), ('validation', 3), ('test', 3)):
    (root / split / 'img').mkdir(parents=True)
    for i in range(n):
      name = f'img/{split[0]}{i}.png'
      (root / split / name).write_bytes(
          _encoded(_pixels(400 + 10 * len(expected)), 'PNG'))
      label = ('cat', 'dog')[i % 2]
      rows[split].append({'file_name': name, 'label': label,
                          'caption': f'{label} {i} in {split}'})
      expected[f'{split}/{name}'] = ({'validation': 'eval'}.get(split, split),
                                     label)
  lines = ['file_name,label,caption'] + [
      f'{r["file_name"]},{r["label"]},{r["caption"]}' for r in rows['train']]
  # Rows whose relative path leaves train/: never joined, counted as written.
  lines += ['../validation/img/v0.png,dog,x', '/abs/train/img/t0.png,dog,x',
            'gs://bucket/img/t1.png,cat,x', 'img/../img/t1.png,dog,x',
            'img/missing.png,cat,x']
  (root / 'train' / 'metadata.csv').write_text('\n'.join(lines) + '\n')
  (root / 'validation' / 'metadata.jsonl').write_text(
      ''.join(json.dumps(r) + '\n' for r in rows['validation']))
  pq.write_table(pa.Table.from_pylist(rows['test']),
                 str(root / 'test' / 'metadata.parquet'))
  return expected


def _flat(root):
  """Every newly read format in one flat folder; name -> expected pixels."""
  root.mkdir()
  gray, rgb, rgba = _pixels(1, 1), _pixels(2), _pixels(3, 4)
  gray16 = _pixels(4, 1, np.uint16)
  bits = (_pixels(5, 1) > 127).astype(np.uint8) * 255
  rgb_1000 = np.random.default_rng(6).integers(0, 1001, (8, 8, 3))
  files = {
      'a.ppm': (_encoded(rgb, 'PPM'), rgb),
      'b.pgm': (_encoded(gray, 'PPM'), gray),
      'c.pgm': (_encoded(gray16, 'PPM', 'I;16'), gray16),
      'd.pbm': (_pbm(bits), bits),
      'e.pcx': (_encoded(rgb, 'PCX'), rgb),
      'f.sgi': (_encoded(rgba, 'SGI'), rgba),
      'g.qoi': (_encoded(rgb, 'QOI'), rgb),
      'h.tga': (_encoded(rgb, 'TGA', compression='tga_rle'), rgb),
      'i.ico': (_encoded(rgba, 'ICO', sizes=[(8, 8)]), rgba),
      'j.dds': (_encoded(rgb, 'DDS'), rgb),
      'k.jp2': (_encoded(rgb, 'JPEG2000'), rgb),
      'l.ppm': (b'P6\n# 10-bit\n8 8\n1000\n' + rgb_1000.astype('>u2').tobytes(),
                np.round(rgb_1000 * 65535 / 1000).astype(np.uint16)),
      'm.png': (_encoded(gray, 'PNG'), gray),
  }
  for name, (data, _) in files.items():
    (root / name).write_bytes(data)
  return {name: pixels for name, (_, pixels) in files.items()}


def _pbm(bits: np.ndarray) -> bytes:
  """A raw PBM (P4): 1 is black."""
  packed = np.packbits(bits == 0, axis=1)
  return b'P4\n8 8\n' + packed.tobytes()


def _names(root):
  """Kaggle dogs-vs-cats names: `cat.0.jpg`; name -> class or None."""
  root.mkdir()
  expected = {}
  for i, name in enumerate(['cat.0.jpg', 'cat.1.jpg', 'dog.0.jpg',
                            'dog.12.jpg', 'cat.2.ppm', 'bird.0.jpg',
                            'cat.jpg']):
    data = (_encoded(_pixels(500 + i), 'PPM') if name.endswith('.ppm') else
            _jpeg(500 + i))
    (root / name).write_bytes(data)
    expected[name] = name.split('.')[0] if name.count('.') == 2 and (
        not name.startswith('bird')) else None
  return expected


def _folders(root):
  """cats/, dogs/ and metadata.csv without a label column."""
  expected = {}
  lines = ['file_name,caption,score']
  for i in range(8):
    folder = ('cats', 'dogs')[i % 2]
    (root / folder).mkdir(parents=True, exist_ok=True)
    rel_path = f'{folder}/{i}.png'
    (root / rel_path).write_bytes(_encoded(_pixels(600 + i), 'PNG'))
    lines.append(f'{rel_path},a photo of {folder} {i},{i / 2}')
    expected[rel_path] = (folder, f'a photo of {folder} {i}', i / 2)
  (root / 'metadata.csv').write_text('\n'.join(lines) + '\n')
  return expected


def _subjects(root):
  """subjects/<subject>/<n>.png and subjects.csv, a row per subject."""
  expected = {}
  lines = ['subject,diagnosis,site']
  for s in range(4):
    subject = f's{s:03d}'
    lines.append(f'{subject},{("healthy", "sick")[s % 2]},site{s % 2}')
    for n in range(3):
      rel_path = f'{subject}/{n}.png'
      (root / 'subjects' / subject).mkdir(parents=True, exist_ok=True)
      (root / 'subjects' / rel_path).write_bytes(
          _encoded(_pixels(700 + 10 * s + n), 'PNG'))
      expected[rel_path] = ('healthy', 'sick')[s % 2]
  (root / 'subjects' / 'loose.png').write_bytes(_encoded(_pixels(799), 'PNG'))
  expected['loose.png'] = None  # No subject folder: no key.
  (root / 'subjects.csv').write_text('\n'.join(lines) + '\n')
  return expected


def _captions(root):
  """Hugging Face text-to-image: metadata.jsonl with text and objects."""
  root.mkdir()
  expected = {}
  with open(root / 'metadata.jsonl', 'w', encoding='utf-8') as f:
    for i in range(5):
      name = f'{i:04d}.png'
      (root / name).write_bytes(_encoded(_pixels(800 + i), 'PNG'))
      text = f'a drawing of {i} birds, naïve style'
      f.write(json.dumps({'file_name': name, 'text': text, 'objects': {
          'bbox': [[0, 0, 4, 4]] * i, 'categories': [1] * i}}) + '\n')
      expected[name] = text
  return expected


def _patient_table(dicom_sample, path):
  """A row per patient: cancer (0/1) and density; patient id -> cancer."""
  patients = sorted({img.patient_id for img in dicom_sample.images} |
                    {rel.split('/')[1] for rel in dicom_sample.rejects})
  cancer = {p: i % 2 for i, p in enumerate(patients)}
  path.write_text('patient_id,cancer,density\n' + ''.join(
      f'{p},{cancer[p]},{"ABCD"[i % 4]}\n' for i, p in enumerate(patients)))
  return cancer


class _Recorder(logging.Handler):
  """Keeps the messages of the records it handles."""

  def __init__(self, level):
    super().__init__(level)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


class _Run:
  """What the pipeline was given, and the Examples artifact of each node."""

  def __init__(self, root, dicom_sample):
    self.kaggle_rows = _kaggle(root)
    (root / 'hf').mkdir()
    _hugging_face(root / 'hf')
    self.dirty = _dirty(root)
    self.per_split = _per_split(root / 'per_split')
    self.flat = _flat(root / 'flat')
    self.names = _names(root / 'names')
    self.folders = _folders(root / 'folders')
    self.subjects = _subjects(root)
    self.captions = _captions(root / 'captions')
    self.dicom_sample = dicom_sample
    self.cancer = _patient_table(dicom_sample, root / 'patients.csv')
    common = dict(input_base=str(root / 'train'),
                  metadata_file=str(root / 'train.csv'), key_column='id',
                  key_source='file_stem', max_reject_fraction=0.5)
    dicom = dict(input_base=str(dicom_sample.root / 'train_images'),
                 extra_columns=['laterality', 'view', 'age'],
                 column_types={'age': 'float'}, max_reject_fraction=0.5)
    with pytest.warns(DeprecationWarning) as warned:
      dicom_old = DicomExampleGen(
          labels_csv=str(dicom_sample.csv_path),
          label_key_column='image_id', label_key_source='file_stem',
          patient_column='patient_id', **dicom).with_id('DicomOld')
    self.deprecation_messages = sorted(str(w.message) for w in warned)
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
        ImageFolderExampleGen(
            input_base=str(root / 'dirty'),
            metadata_file=str(root / 'dirty.csv'), key_column='id',
            key_source='file_stem',
            column_types={'weight': 'float', 'count': 'int'},
            max_reject_fraction=0.5).with_id('Dirty'),
        ImageFolderExampleGen(
            input_base=str(root / 'per_split')).with_id('PerSplit'),
        ImageFolderExampleGen(input_base=str(root / 'flat')).with_id('Flat'),
        ImageFolderExampleGen(
            input_base=str(root / 'names'),
            label_pattern=r'^(cat|dog)\.\d+\.\w+$',
            max_reject_fraction=0.5).with_id('Names'),
        ImageFolderExampleGen(
            input_base=str(root / 'folders')).with_id('Folders'),
        ImageFolderExampleGen(
            input_base=str(root / 'subjects'),
            metadata_file=str(root / 'subjects.csv'), key_column='subject',
            key_source=r'^([^/]+)/', label_column='diagnosis',
            group_column='subject', max_reject_fraction=0.5
        ).with_id('Subjects'),
        ImageFolderExampleGen(
            input_base=str(root / 'captions')).with_id('Captions'),
        DicomExampleGen(
            metadata_file=str(dicom_sample.csv_path), key_column='image_id',
            key_source='file_stem', group_column='patient_id', **dicom
        ).with_id('DicomNew'),
        dicom_old,
        DicomExampleGen(
            input_base=str(dicom_sample.root / 'train_images'),
            metadata_file=str(root / 'patients.csv'), key_column='patient_id',
            key_source=r'^([^/]+)/', label_column='cancer',
            max_reject_fraction=0.5).with_id('DicomPatients'),
    ]
    self.nodes = [c.id for c in components]
    connection = metadata.sqlite_metadata_connection_config(
        str(root / 'metadata.sqlite'))
    handler = _Recorder(logging.WARNING)
    # The module loggers, and the console's own (which does not propagate).
    loggers = (logging.getLogger(), console.logger())
    for logger in loggers:
      logger.addHandler(handler)
    try:
      tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
          pipeline_name='tables', pipeline_root=str(root / 'pipeline'),
          components=components, metadata_connection_config=connection))
    finally:
      for logger in loggers:
        logger.removeHandler(handler)
    self.warnings = handler.messages
    self.artifacts = {}
    self.exec_properties = {}
    with metadata.Metadata(connection) as m:
      for node in self.nodes:
        context = m.store.get_context_by_type_and_name('node',
                                                       f'tables.{node}')
        (execution,) = m.store.get_executions_by_context(context.id)
        assert execution.last_known_state == (
            metadata_store_pb2.Execution.COMPLETE), node
        self.exec_properties[node] = {
            key: getattr(value, value.WhichOneof('value'))
            for key, value in execution.custom_properties.items()}
        (self.artifacts[node],) = [a for a in m.store.get_artifacts_by_context(
            context.id) if a.type == 'Examples']

  def summary(self, node):
    with open(f'{self.artifacts[node].uri}/{executor_base.SUMMARY_FILE}') as f:
      return json.load(f)


@pytest.fixture(scope='module')
def pipeline_run(tmp_path_factory, dicom_sample):
  return _Run(tmp_path_factory.mktemp('tables_pipeline'), dicom_sample)


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
  rows, artifacts = pipeline_run.kaggle_rows, pipeline_run.artifacts
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
  artifacts = pipeline_run.artifacts
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
  artifacts = pipeline_run.artifacts
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
  artifacts = pipeline_run.artifacts
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
  artifacts = pipeline_run.artifacts
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


def _by_path(uri, examples_reader):
  """rel path (below input_base) -> (split, Example), by `image/key`."""
  return {e.features.feature['image/key'].bytes_list.value[0].decode():
          (split, e) for split, examples in examples_reader(uri).items()
          for e in examples}


def _example(by_key, rel_path):
  return by_key.get(keys.keyed_hash(rel_path, SALT, 'image'))


def _details(uri):
  return {r.path: r.detail for r in executor_base.read_rejects(uri)}


def test_missing_values_and_declared_types_of_a_dirty_table(
    pipeline_run, examples_reader):
  uri = pipeline_run.artifacts['Dirty'].uri
  by_key = _by_path(uri, examples_reader)

  for image_id, features in pipeline_run.dirty.items():
    found = _example(by_key, f'{image_id}.jpg')
    if features is None:
      assert found is None
      continue
    for name, values in features.items():
      assert _values(found[1], name) == values, (image_id, name)
  assert _rejects(uri) == {'d04.jpg': rejects.BAD_METADATA_VALUE}
  detail = _details(uri)['d04.jpg']
  assert ("dirty.csv line 6: column 'weight' value 'heavy' is not a float "
          '(column_types)') == detail
  metadata = pipeline_run.summary('Dirty')['metadata']
  assert metadata['metadata_column_types'] == {
      'age': 'bytes', 'comment': 'bytes', 'count': 'int', 'score': 'float',
      'weight': 'float'}
  assert metadata['metadata_missing_values'] == {
      'age': 0, 'comment': 3, 'count': 1, 'score': 6, 'weight': 2}
  made_text = {'age': {'value': 'unknown', 'line': 7, 'file': 'dirty.csv',
                       'text_values': 1, 'number_values': 10}}
  assert metadata['metadata_numbers_made_text'] == made_text
  props = pipeline_run.artifacts['Dirty'].custom_properties
  assert json.loads(
      props['metadata_numbers_made_text'].string_value) == made_text
  assert any("'age' is text" in line and "'unknown' on line 7 of dirty.csv"
             in line for line in pipeline_run.warnings)


def test_a_table_in_each_split_folder(pipeline_run, examples_reader):
  uri = pipeline_run.artifacts['PerSplit'].uri
  by_key = _by_path(uri, examples_reader)

  assert len(by_key) == len(pipeline_run.per_split)
  for rel_path, (split, label) in pipeline_run.per_split.items():
    found_split, example = _example(by_key, rel_path)
    assert found_split == split, rel_path
    assert _values(example, 'label/name') == [label.encode()]
    assert _values(example, 'caption')[0].startswith(label.encode())
    assert 'file_name' not in example.features.feature
  assert not executor_base.read_rejects(uri)  # Tables are no input images.
  metadata = pipeline_run.summary('PerSplit')['metadata']
  assert metadata['metadata_rows'] == 17
  assert metadata['metadata_rows_matched'] == 12
  assert metadata['metadata_duplicate_keys'] == 0
  assert metadata['metadata_rows_without_file'] == 5
  # Keys that leave train/ as written; a key naming no file, qualified.
  assert metadata['metadata_rows_without_file_first_keys'] == [
      '../validation/img/v0.png', '/abs/train/img/t0.png',
      'gs://bucket/img/t1.png', 'img/../img/t1.png', 'train/img/missing.png']
  with open(f'{uri}/label_vocabulary.txt') as f:
    assert f.read() == 'cat\ndog\n'


def test_a_flat_folder_of_every_format_gives_unlabelled_examples(
    pipeline_run, examples_reader):
  uri = pipeline_run.artifacts['Flat'].uri
  by_key = _by_path(uri, examples_reader)

  assert not executor_base.read_rejects(uri)
  assert len(by_key) == len(pipeline_run.flat)
  for name, pixels in pipeline_run.flat.items():
    _, example = _example(by_key, name)
    assert 'label' not in example.features.feature
    assert _values(example, 'image/format') == [b'png']
    encoded = _values(example, 'image/encoded')[0]
    dtype = tf.uint16 if pixels.dtype == np.uint16 else tf.uint8
    decoded = tf.io.decode_png(encoded, dtype=dtype).numpy()
    np.testing.assert_array_equal(
        decoded[..., 0] if pixels.ndim == 2 else decoded, pixels, name)
  assert not tf.io.gfile.exists(f'{uri}/label_vocabulary.txt')
  assert any(line.startswith('No labels:') and 'flat' in line
             for line in pipeline_run.warnings)


def test_labels_from_file_names(pipeline_run, examples_reader):
  uri = pipeline_run.artifacts['Names'].uri
  by_key = _by_path(uri, examples_reader)

  for name, class_name in pipeline_run.names.items():
    found = _example(by_key, name)
    if class_name is None:
      assert found is None
      continue
    assert _values(found[1], 'label') == [('cat', 'dog').index(class_name)]
    assert _values(found[1], 'label/name') == [class_name.encode()]
  got = executor_base.read_rejects(uri)
  assert {r.path: (r.stage, r.reason) for r in got} == {
      'bird.0.jpg': (rejects.LABEL, rejects.NO_LABEL_IN_NAME),
      'cat.jpg': (rejects.LABEL, rejects.NO_LABEL_IN_NAME)}
  with open(f'{uri}/label_vocabulary.txt') as f:
    assert f.read() == 'cat\ndog\n'


def test_folder_labels_and_a_table_without_labels(pipeline_run,
                                                  examples_reader):
  uri = pipeline_run.artifacts['Folders'].uri
  by_key = _by_path(uri, examples_reader)

  assert not executor_base.read_rejects(uri)
  for rel_path, (folder, caption, score) in pipeline_run.folders.items():
    _, example = _example(by_key, rel_path)
    assert _values(example, 'label') == [('cats', 'dogs').index(folder)]
    assert _values(example, 'label/name') == [folder.encode()]
    assert _values(example, 'caption') == [caption.encode()]
    assert _values(example, 'score') == [score]
  with open(f'{uri}/label_vocabulary.txt') as f:
    assert f.read() == 'cats\ndogs\n'


def test_a_table_keyed_by_folder(pipeline_run, examples_reader):
  uri = pipeline_run.artifacts['Subjects'].uri
  by_key = _by_path(uri, examples_reader)
  splits = {}

  for rel_path, diagnosis in pipeline_run.subjects.items():
    found = _example(by_key, rel_path)
    if diagnosis is None:
      assert found is None
      continue
    split, example = found
    assert _values(example, 'label/name') == [diagnosis.encode()]
    assert _values(example, 'site')[0].startswith(b'site')
    assert 'subject' not in example.features.feature
    splits.setdefault(rel_path.split('/')[0], set()).add(split)
  assert all(len(s) == 1 for s in splits.values())  # A subject, one split.
  assert _rejects(uri) == {'loose.png': rejects.NO_METADATA_ROW}
  metadata = pipeline_run.summary('Subjects')['metadata']
  assert metadata['metadata_rows_matched'] == 4
  # Pattern keys (here subjects, elsewhere patients) are never listed.
  assert 'metadata_rows_without_file_first_keys' not in metadata


def test_captions_exported_and_nested_objects_left_out(pipeline_run,
                                                       examples_reader):
  uri = pipeline_run.artifacts['Captions'].uri
  by_key = _by_path(uri, examples_reader)

  assert not executor_base.read_rejects(uri)
  for name, text in pipeline_run.captions.items():
    _, example = _example(by_key, name)
    assert _values(example, 'text') == [text.encode('utf-8')]
    assert 'label' not in example.features.feature
    assert 'objects' not in example.features.feature
  metadata = pipeline_run.summary('Captions')['metadata']
  assert metadata['metadata_column_types'] == {'text': 'bytes'}
  assert metadata['metadata_columns_left_out'] == {
      'objects': 'holds JSON objects or nested lists'}
  assert sum("'objects' is not exported" in line
             for line in pipeline_run.warnings) == 1


def test_deprecated_dicom_names_warn_and_write_the_same_examples(
    pipeline_run, examples_reader, serialized):
  new = examples_reader(pipeline_run.artifacts['DicomNew'].uri)
  old = examples_reader(pipeline_run.artifacts['DicomOld'].uri)

  assert pipeline_run.deprecation_messages == [
      f'DicomExampleGen(..., {old_name}=...) is deprecated: use {new_name}= '
      '(the same meaning); the old name goes in the next release.'
      for old_name, new_name in sorted((
          ('label_key_column', 'key_column'), ('label_key_source', 'key_source'),
          ('labels_csv', 'metadata_file'),
          ('patient_column', 'group_column')))]
  assert serialized(old) == serialized(new)
  assert sum(len(e) for e in new.values()) == len(
      pipeline_run.dicom_sample.images)
  ages = {_values(e, 'age')[0] for examples in new.values() for e in examples}
  assert all(isinstance(age, float) for age in ages)  # column_types
  properties = pipeline_run.exec_properties['DicomOld']
  assert properties['metadata_file'] == str(pipeline_run.dicom_sample.csv_path)
  assert properties['group_column'] == 'patient_id'
  assert not {'labels_csv', 'patient_column', 'label_key_column',
              'label_key_source'} & set(properties)


def test_a_dicom_table_keyed_by_patient_folder(pipeline_run, examples_reader):
  sample = pipeline_run.dicom_sample
  uri = pipeline_run.artifacts['DicomPatients'].uri
  by_key = _by_path(uri, examples_reader)
  patient_of = {keys.keyed_hash(img.sop_instance_uid, SALT, 'image'):
                img.patient_id for img in sample.images}

  for key, (_, example) in by_key.items():
    if key in patient_of:
      assert _values(example, 'label') == [pipeline_run.cancer[
          patient_of[key]]]
  assert len(by_key) == len(sample.images) + 1  # The file without a row too.
  assert _rejects(uri) == {
      path[len('train_images/'):]: reason
      for path, reason in sample.rejects.items()
      if reason != rejects.NO_METADATA_ROW}
  metadata = pipeline_run.summary('DicomPatients')['metadata']
  assert 'metadata_rows_without_file_first_keys' not in metadata
  assert metadata['metadata_column_types'] == {}
