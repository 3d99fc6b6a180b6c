"""`pipeline.py run` on a user's folders: 3 and 11 classes, one fixture.

The 3-class folder (with macOS junk and a README) runs through the real
command line in a fresh interpreter, as a user types it, so that every line
it prints is counted; the 11-class folder runs through `pipeline.main` in
this process. Both train one epoch on tiny images; the models must have as
many outputs as the folders have classes (the class count comes from the
data, not from the curated schema), and ExampleValidator must find no
anomaly with the curated schema.
"""

import io
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from image_example_gen.report import mlmd
from image_example_gen.training import model
from image_example_gen.training import runs

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(_REPO_ROOT))  # pipeline.py is not in the package.
import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position

pytestmark = pytest.mark.e2e

_FLAGS = ['--epochs', '1', '--image-size', '8', '--batch-size', '8',
          '--accuracy-threshold', '0.01']
# Lines that are library noise, never the user's business.
_NOISE = re.compile(r'FutureWarning|warnings\.warn|^WARNING:|Unable to '
                    r'register|property_predicate|Traceback|deprecated')


def _png(seed: int) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _folder(root: pathlib.Path, n_classes: int, per_class: int) -> None:
  for c in range(n_classes):
    (root / f'class{c:02d}').mkdir(parents=True)
    for i in range(per_class):
      (root / f'class{c:02d}' / f'{i}.png').write_bytes(_png(100 * c + i))


def _trainer_model(metadata_path: str, name: str) -> str:
  store = mlmd.open_store(metadata_path)
  trainer = {r.component_id: r for r in runs.latest_run(store, name)}[
      'Trainer']
  return os.path.join(trainer.uri('model'), 'Format-Serving')


def _eval_records(metadata_path: str, name: str):
  store = mlmd.open_store(metadata_path)
  gen = {r.component_id: r for r in runs.latest_run(store, name)}[
      'ImageFolderExampleGen']
  files = tf.io.gfile.glob(os.path.join(gen.uri('examples'), 'Split-eval',
                                        '*'))
  return [r.numpy() for r in tf.data.TFRecordDataset(
      files, compression_type='GZIP')]


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('cli')
  _folder(root / 'three', 3, 12)
  (root / 'three' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'three' / 'README.md').write_text('# my photos\n')
  (root / 'three' / 'class00' / '._0.png').write_bytes(b'\0\5\26\7')
  _folder(root / 'eleven', 11, 8)
  env = {key: value for key, value in os.environ.items()
         if key not in ('TF_CPP_MIN_LOG_LEVEL', 'TF_USE_LEGACY_KERAS')}
  three = subprocess.run(
      [sys.executable, str(_REPO_ROOT / 'pipeline.py'), 'run', '--source',
       'images', '--input-base', str(root / 'three'), '--output-dir',
       str(root / 'out3'), *_FLAGS],
      capture_output=True, text=True, env=env, timeout=900, check=False)
  status = pipeline.main(['run', '--source', 'images', '--input-base',
                          str(root / 'eleven'), '--output-dir',
                          str(root / 'out11'), *_FLAGS])
  return {'root': root, 'three': three, 'eleven_status': status}


def test_a_user_folder_runs_and_says_what_it_converted(cli_runs):
  three = cli_runs['three']
  assert three.returncode == 0, three.stderr[-3000:]
  output = three.stdout + three.stderr
  assert ('ImageFolderExampleGen: found 39 files in '
          f'{cli_runs["root"] / "three"} belonging to 3 classes: 36 converted '
          'into 36 Examples, 0 rejected, 3 skipped.') in output
  assert 'skipped (not inputs): hidden_file 2' in output
  assert 'ingestion   36 files -> 36 Examples, 0 rejected, 3 skipped' in output
  # The curated schema fits: every feature the component writes is in it.
  assert 'validation  0 anomalies' in output


def test_the_run_prints_a_handful_of_lines_and_no_library_noise(cli_runs):
  lines = (cli_runs['three'].stdout + cli_runs['three'].stderr).splitlines()
  noise = [line for line in lines if _NOISE.search(line)]
  assert not noise, noise
  # 6 from the ExampleGen, 1 per epoch, 12 of outputs, 10 of wall times, 2
  # of the report (240 lines before, 87 of them library warnings).
  assert len(lines) <= 35, '\n'.join(lines)


@pytest.mark.parametrize('name, n_classes', [('three', 3), ('eleven', 11)])
def test_the_model_has_as_many_outputs_as_classes(cli_runs, name, n_classes):
  if name == 'eleven':
    assert cli_runs['eleven_status'] == 0
  out = cli_runs['root'] / ('out3' if name == 'three' else 'out11')
  metadata_path = str(out / 'metadata.sqlite')
  pipeline_name = 'image-example-gen-images'
  serve = tf.saved_model.load(
      _trainer_model(metadata_path, pipeline_name)).signatures[
          model.SERVING_SIGNATURE]
  records = _eval_records(metadata_path, pipeline_name)
  probabilities = serve(**{model.SERVING_INPUT: tf.constant(records)})[
      model.SERVING_OUTPUT].numpy()
  assert probabilities.shape == (len(records), n_classes)


def test_help_answers_fast_and_shows_every_example_gen_flag():
  result = subprocess.run(
      [sys.executable, str(_REPO_ROOT / 'pipeline.py'), 'run', '--help'],
      capture_output=True, text=True, check=True, timeout=60)
  for flag in ('--metadata-file', '--key-column', '--key-source',
               '--label-column', '--label-separator', '--text-column',
               '--class-names', '--max-size', '--group-column',
               '--max-reject-fraction', '--allowed-extensions',
               '--ignore-patterns'):
    assert flag in result.stdout
  assert '(default: 12)' in result.stdout  # --epochs
  # Nothing heavy was imported to answer (the 2 s budget on this machine).
  probe = subprocess.run(
      [sys.executable, '-c',
       'import runpy, sys; sys.argv = ["pipeline.py", "--help"]\n'
       'try:\n'
       f'  runpy.run_path({str(_REPO_ROOT / "pipeline.py")!r}, '
       'run_name="__main__")\n'
       'except SystemExit:\n'
       '  pass\n'
       'print(sorted(m for m in ("tfx", "tensorflow", "apache_beam") '
       'if m in sys.modules))'],
      capture_output=True, text=True, check=True, timeout=60)
  assert probe.stdout.strip().splitlines()[-1] == '[]'


def test_flags_become_the_component_parameters():
  args = pipeline._parser().parse_args([  # pylint: disable=protected-access
      'run', '--source', 'dicom', '--input-base', 'x', '--labels-csv', 't.csv',
      '--key-column', 'id', '--patient-column', 'pid', '--extra-columns',
      'a, b', '--max-reject-fraction', '0.2', '--ignore-patterns', '*.xml'])
  from image_example_gen import options  # pylint: disable=g-import-not-at-top
  # The deprecated flags (--labels-csv, --patient-column) still work.
  assert options.example_gen_args(args, options.DICOM) == {
      'metadata_file': 't.csv', 'key_column': 'id',
      'group_column': 'pid', 'extra_columns': ['a', 'b'],
      'max_reject_fraction': 0.2, 'ignore_patterns': ['*.xml']}
  args = pipeline._parser().parse_args([  # pylint: disable=protected-access
      'run', '--source', 'images', '--input-base', 'x', '--class-names',
      'b,a', '--max-size', '64', '--allowed-extensions', '.jpg,.png',
      '--column-types', 'score=float, id=bytes'])
  assert options.example_gen_args(args, options.IMAGES) == {
      'class_names': ['b', 'a'], 'max_size': 64,
      'allowed_extensions': ['.jpg', '.png'],
      'column_types': {'score': 'float', 'id': 'bytes'}}
  with pytest.raises(ValueError, match='--class-names'):
    options.example_gen_args(args, options.DICOM)
