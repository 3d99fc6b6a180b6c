"""A new user's first run, under a real LocalDagRunner (SQLite MLMD).

One pipeline holds four ExampleGens: a messy image folder (macOS and Windows
junk, a README and a JSON file beside the classes, a JPEG named `.txt`, a
truncated JPEG, an ignored `.xml`), a DICOM folder with its own junk, and a
large class-per-folder input converted twice (record order). A second,
one-component pipeline fails on `max_reject_fraction`. The tests read what
the console logger printed, the skip and reject records, the record order,
and the records a failed run kept.
"""

import io
import json
import logging
import os
import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from image_example_gen import console
from image_example_gen import DicomExampleGen
from image_example_gen import executor_base
from image_example_gen import ImageFolderExampleGen
from image_example_gen import rejects
from image_example_gen import sample_data

pytestmark = pytest.mark.e2e

_CLASSES = ('cat', 'dog', 'owl')
_PER_CLASS = 12
_ORDER_PER_CLASS = 300


def _image(seed: int, image_format: str = 'PNG', size: int = 8) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3),
                                                np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, image_format)
  return buffer.getvalue()


def _write(root: pathlib.Path, rel_path: str, data: bytes) -> None:
  path = root / rel_path
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)


def _messy_images(root: pathlib.Path):
  """3 class folders and the junk of real folders; (skips, rejects)."""
  for c, name in enumerate(_CLASSES):
    for i in range(_PER_CLASS):
      _write(root, f'{name}/{i}.png', _image(100 * c + i))
  _write(root, 'owl/photo.txt', _image(999, 'JPEG', 16))  # An image.
  _write(root, 'cat/broken.jpg', _image(998, 'JPEG', 16)[:200])
  skips = {
      '.DS_Store': rejects.HIDDEN_FILE,
      'cat/._0.png': rejects.HIDDEN_FILE,
      '.ipynb_checkpoints/cat/0-checkpoint.png': rejects.HIDDEN_FILE,
      'dog/Thumbs.db': rejects.SYSTEM_FILE,
      'desktop.ini': rejects.SYSTEM_FILE,
      'README.md': rejects.NON_IMAGE_FILE,
      'dog/labels.json': rejects.NON_IMAGE_FILE,
      'owl/meta.xml': rejects.IGNORE_PATTERN,
  }
  for rel_path in skips:
    data = (_image(5) if rel_path.endswith('.png') else
            b'{"cat": 0}' if rel_path.endswith('.json') else b'\0\0\0\1Bud1')
    _write(root, rel_path, data)
  return skips, {'cat/broken.jpg': rejects.TRUNCATED}


def _messy_dicom(root: pathlib.Path):
  """A small DICOM tree with junk; (skips, a DICOM named .txt)."""
  sample = sample_data.make_dicom_sample(root, n_images=4, size=32,
                                         broken_files=False)
  base = root / 'train_images'
  shutil.copy(sample.csv_path, base / 'labels.csv')
  shutil.copy(base / sample.images[0].rel_path.split('/', 1)[1],
              base / 'scan.txt')
  _write(base, 'README.md', b'# exported from the PACS\n')
  _write(base, '.DS_Store', b'\0\0\0\1Bud1')
  _write(base, 'SR/report.xml', b'<report/>')
  return base, {'labels.csv': rejects.NON_IMAGE_FILE,
                'README.md': rejects.NON_IMAGE_FILE,
                '.DS_Store': rejects.HIDDEN_FILE,
                'SR/report.xml': rejects.IGNORE_PATTERN}


class _Lines(logging.Handler):

  def __init__(self):
    super().__init__()
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


def _pipeline(name, root, components):
  return tfx.dsl.Pipeline(
      pipeline_name=name, pipeline_root=str(root / 'pipelines' / name),
      components=components, enable_cache=False,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              str(root / f'{name}.sqlite'))))


def _output_uri(root, pipeline_name, component_id):
  (uri,) = [p for p in (root / 'pipelines' / pipeline_name / component_id /
                        'examples').iterdir() if p.name.isdigit()]
  return str(uri)


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('first_run')
  image_skips, image_rejects = _messy_images(root / 'images')
  dicom_base, dicom_skips = _messy_dicom(root / 'dicom')
  for c, name in enumerate(_CLASSES):
    for i in range(_ORDER_PER_CLASS):
      _write(root / 'ordered', f'{name}/{i:03d}.png', _image(10000 * c + i))
  _write(root / 'failing', 'cat/0.png', _image(1))
  for i in range(3):
    _write(root / 'failing', f'cat/bad{i}.jpg', b'not a jpeg at all')
  lines = _Lines()
  console.logger().addHandler(lines)
  try:
    tfx.orchestration.LocalDagRunner().run(_pipeline('first', root, [
        ImageFolderExampleGen(input_base=str(root / 'images'),
                              ignore_patterns=['*.xml']).with_id('Images'),
        DicomExampleGen(input_base=str(dicom_base),
                        ignore_patterns=['SR']).with_id('Dicom'),
        ImageFolderExampleGen(
            input_base=str(root / 'ordered')).with_id('Ordered'),
        ImageFolderExampleGen(
            input_base=str(root / 'ordered')).with_id('OrderedAgain'),
    ]))
    with pytest.raises(RuntimeError) as failure:
      tfx.orchestration.LocalDagRunner().run(_pipeline('failing', root, [
          ImageFolderExampleGen(
              input_base=str(root / 'failing')).with_id('Failing')]))
  finally:
    console.logger().removeHandler(lines)
  return {
      'root': root, 'lines': lines.lines, 'error': str(failure.value),
      'uris': {node: _output_uri(root, 'first', node) for node in
               ('Images', 'Dicom', 'Ordered', 'OrderedAgain')},
      'image_skips': image_skips, 'image_rejects': image_rejects,
      'dicom_skips': dicom_skips,
  }


def _summary(uri):
  with open(os.path.join(uri, executor_base.SUMMARY_FILE)) as f:
    return json.load(f)


def _records(uri, split):
  files = sorted(tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*')))
  return [tf.train.Example.FromString(r.numpy()) for r in
          tf.data.TFRecordDataset(files, compression_type='GZIP')]


def _labels(examples):
  return [e.features.feature['label'].int64_list.value[0] for e in examples]


def test_junk_is_skipped_with_a_reason_and_not_counted(first_run):
  uri = first_run['uris']['Images']
  skips = {s.path: s.reason for s in executor_base.read_skips(uri)}
  assert skips == first_run['image_skips']
  assert {r.path: r.reason for r in executor_base.read_rejects(uri)} == (
      first_run['image_rejects'])
  summary = _summary(uri)
  # 36 images + the JPEG named .txt converted, 1 reject: 2.6% < 5%.
  assert summary['converted_files'] == 3 * _PER_CLASS + 1
  assert summary['input_files'] == 3 * _PER_CLASS + 2
  assert summary['skipped_files'] == len(first_run['image_skips'])
  assert summary['skips'][rejects.HIDDEN_FILE] == 3


def test_an_image_with_a_wrong_extension_is_read(first_run):
  uri = first_run['uris']['Images']
  owls = [e for split in ('train', 'eval') for e in _records(uri, split)
          if e.features.feature['label/name'].bytes_list.value == [b'owl']]
  assert len(owls) == _PER_CLASS + 1
  assert b'jpeg' in {e.features.feature['image/format'].bytes_list.value[0]
                     for e in owls}


def test_dicom_junk_is_skipped_and_a_dicom_named_txt_is_read(first_run):
  uri = first_run['uris']['Dicom']
  assert {s.path: s.reason for s in executor_base.read_skips(uri)} == (
      first_run['dicom_skips'])
  summary = _summary(uri)
  assert summary['converted_files'] == 5  # 4 files + scan.txt
  assert summary['rejected_files'] == 0


def test_the_console_says_what_happened(first_run):
  text = '\n'.join(first_run['lines'])
  assert ('Images: found 46 files in ' + str(first_run['root'] / 'images') +
          ' belonging to 3 classes: 37 converted into 37 Examples, 1 '
          'rejected, 8 skipped.') in text
  assert 'classes: cat, dog, owl' in text
  assert 'rejected: truncated 1 (cat/broken.jpg)' in text
  assert ('skipped (not inputs): hidden_file 3 (.DS_Store, '
          '.ipynb_checkpoints/cat/0-checkpoint.png, cat/._0.png)') in text
  assert 'Dicom: found 9 files' in text
  assert f'output: {first_run["uris"]["Images"]} (' in text
  # A handful of lines per component, the salt warning not among them
  # (the tests set a salt).
  per_component = [line for line in first_run['lines']
                   if line.startswith(('Images:', 'Dicom:', 'Ordered:'))]
  assert len(per_component) == 3
  assert len(first_run['lines']) <= 4 * 8 + 8


def test_records_are_in_mixed_order(first_run):
  labels = np.array(_labels(_records(first_run['uris']['Ordered'], 'train')),
                    dtype=float)
  assert len(labels) > 500
  autocorrelation = np.corrcoef(labels[:-1], labels[1:])[0, 1]
  assert abs(autocorrelation) < 0.1, autocorrelation
  assert len(set(labels[:20])) == 3  # No one-class run at the start.


def test_the_same_input_and_salt_give_the_same_order(first_run):
  def keys(node):
    return [e.features.feature['image/key'].bytes_list.value[0]
            for e in _records(first_run['uris'][node], 'train')]
  assert keys('Ordered') == keys('OrderedAgain')


def test_a_failed_run_keeps_its_rejects_and_says_where(first_run):
  error = first_run['error']
  kept_dirs = list((first_run['root'] / 'pipelines' / 'failing' /
                    'Failing' / 'examples').glob('*-failed'))
  assert len(kept_dirs) == 1, error
  kept = kept_dirs[0]
  # TFX deleted the output folder itself.
  assert not (kept.parent / kept.name[:-len('-failed')]).exists()
  assert str(kept) in error
  assert '3 of 4 input files rejected' in error
  assert 'not_an_image 3 (cat/bad0.jpg, cat/bad1.jpg, cat/bad2.jpg)' in error
  assert 'max_reject_fraction' in error and '--max-reject-fraction' in error
  assert sorted(r.path for r in executor_base.read_rejects(str(kept))) == [
      'cat/bad0.jpg', 'cat/bad1.jpg', 'cat/bad2.jpg']
  assert _summary(str(kept))['rejected_files'] == 3
  assert any(line.startswith('Failing: found 4 files')
             for line in first_run['lines'])


# Construction-time checks: no pipeline runs.


def _dicom_tree(tmp_path, csv_text):
  (tmp_path / 'dcm').mkdir()
  (tmp_path / 'labels.csv').write_text(csv_text)
  return str(tmp_path / 'dcm'), str(tmp_path / 'labels.csv')


@pytest.mark.parametrize('make, message', [
    (lambda p: ImageFolderExampleGen(input_base=str(p / 'nowhere')),
     'input_base .*nowhere does not exist'),
    (lambda p: DicomExampleGen(input_base=str(p / 'nowhere')),
     'input_base .*nowhere does not exist'),
    (lambda p: ImageFolderExampleGen(input_base=str(p / 'cat' / '0.png')),
     r'input_base .*0\.png is not a folder'),
    (lambda p: ImageFolderExampleGen(input_base=str(p),
                                     metadata_file=str(p / 'none.csv')),
     'metadata_file .*none.csv does not exist'),
    (lambda p: ImageFolderExampleGen(input_base=str(p),
                                     class_names=['cat', 'zebra']),
     r"class_names \['zebra'\] have no folder in .* \['cat', 'dog'\]"),
    (lambda p: DicomExampleGen(input_base=str(p),
                               labels_csv=str(p / 'labels.csv'),
                               label_key_column='file'),
     r"missing column\(s\) \['file'\]"),
    (lambda p: DicomExampleGen(input_base=str(p),
                               labels_csv=str(p / 'labels.csv')),
     r"label_column 'label' of .*labels.csv holds no integer among its first "
     r"3 labels \(line 2: 'benign'\)"),
])
def test_wrong_paths_and_tables_fail_at_construction(tmp_path, make, message):
  _write(tmp_path, 'cat/0.png', _image(0))
  _write(tmp_path, 'dog/0.png', _image(1))
  (tmp_path / 'labels.csv').write_text(
      'image_id,label\n1,benign\n2,\n3,malignant\n4,benign\n')
  with pytest.raises(ValueError, match=message):
    make(tmp_path)


def test_the_executor_checks_again_with_the_same_message(tmp_path,
                                                         executor_runner):
  _write(tmp_path / 'in', 'cat/0.png', _image(0))
  component = ImageFolderExampleGen(input_base=str(tmp_path / 'in'),
                                    class_names=['cat'])
  shutil.rmtree(tmp_path / 'in' / 'cat')  # Gone before the run.
  with pytest.raises(ValueError, match=r"class_names \['cat'\] have no "
                     'folder'):
    executor_runner(component, tmp_path / 'out')
  shutil.rmtree(tmp_path / 'in')
  with pytest.raises(ValueError, match='input_base .* does not exist'):
    executor_runner(component, tmp_path / 'out')


def test_integer_labels_with_a_few_bad_ones_are_not_a_construction_error(
    tmp_path):
  (tmp_path / 'labels.csv').write_text('image_id,label\n1,1\n2,x\n3,0\n')
  DicomExampleGen(input_base=str(tmp_path),
                  labels_csv=str(tmp_path / 'labels.csv'))
