"""The Examples report on real runs of both ExampleGens.

DICOM: the executor run directly on the sample tree, reported by
`write_report`. Image folder: a real LocalDagRunner pipeline (ExampleGen and
StatisticsGen, SQLite MLMD), reported by the command line from the MLMD
database, then a later run on other input for "latest" to tell apart.
"""

import base64
import contextlib
import html.parser
import io
import json
import os
import pathlib
import re
from typing import Dict, List

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from image_example_gen import DicomExampleGen
from image_example_gen import ImageFolderExampleGen
from image_example_gen import codecs
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen import report
from image_example_gen import sample_data
from image_example_gen.report import __main__ as cli
from image_example_gen.report import data
from image_example_gen.report import render

SALT = os.environ['IMAGE_EXAMPLE_GEN_SALT']
PIPELINE = 'report-test'
PER_LABEL = 3


class _Page(html.parser.HTMLParser):
  """The tags of an HTML page with their attributes and text."""

  def __init__(self, text: str):
    super().__init__()
    self.tags: List[Dict[str, str]] = []
    self._open: List[Dict[str, str]] = []
    self.feed(text)

  def handle_starttag(self, tag, attrs):
    element = {'tag': tag, 'text': '', 'parents': list(self._open),
               **{k: v or '' for k, v in attrs}}
    self.tags.append(element)
    if tag not in ('img', 'br', 'meta'):
      self._open.append(element)

  def handle_endtag(self, tag):
    if self._open and self._open[-1]['tag'] == tag:
      self._open.pop()

  def handle_data(self, data):
    for element in self._open:
      element['text'] += data

  def find(self, tag: str, within=None, **attrs) -> List[Dict[str, str]]:
    """Tags named `tag` with these attributes (`data_x` for `data-x`)."""
    return [t for t in self.tags if t['tag'] == tag and all(
        t.get(k.replace('_', '-')) == v for k, v in attrs.items()) and (
            within is None or any(p is within for p in t['parents']))]

  def cell(self, row, **attrs) -> str:
    """The text of the one cell of `row` with these attributes."""
    cells = self.find('td', within=row, **attrs)
    assert len(cells) == 1, (row['text'], attrs)
    return cells[0]['text']


def _counts(examples: Dict[str, list]) -> Dict[str, dict]:
  """Independent counts of Examples: per split examples, patients, labels."""
  result = {}
  for split, split_examples in examples.items():
    features = [e.features.feature for e in split_examples]
    labels = {}
    for f in features:
      label = str(f['label'].int64_list.value[0])
      labels[label] = labels.get(label, 0) + 1
    result[split] = {
        'examples': len(features),
        'patients': len({f['patient/key'].bytes_list.value[0]
                         for f in features if 'patient/key' in f}),
        'labels': labels}
  return result


@pytest.fixture(scope='module')
def dicom_run(dicom_sample, tmp_path_factory, executor_runner,
              examples_reader):
  out = tmp_path_factory.mktemp('report_dicom')
  component = DicomExampleGen(
      input_base=str(dicom_sample.root / 'train_images'),
      metadata_file=str(dicom_sample.csv_path), group_column='patient_id',
      extra_columns=['laterality', 'view'], max_reject_fraction=0.5)
  artifact = executor_runner(component, out / 'examples')
  paths = report.write_report(artifact.uri, str(out / 'report'),
                              samples_per_label=PER_LABEL)
  return {'uri': artifact.uri, 'paths': paths, 'html_path': paths.html,
          'contact_sheet_path': paths.contact_sheet,
          'examples': examples_reader(artifact.uri),
          'rejects': {p[len('train_images/'):]: reason
                      for p, reason in dicom_sample.rejects.items()}}


def _run_pipeline(input_base: str, root: str, metadata: str,
                  with_statistics: bool = True) -> None:
  """ImageFolderExampleGen (+ StatisticsGen) under LocalDagRunner, no cache."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  example_gen = ImageFolderExampleGen(input_base=input_base,
                                      max_reject_fraction=0.2)
  components = [example_gen]
  if with_statistics:
    components.append(tfx.components.StatisticsGen(
        examples=example_gen.outputs['examples']))
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name=PIPELINE, pipeline_root=root, components=components,
      enable_cache=False,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              metadata))))


def _artifact_uris(root: str, component: str, output: str) -> List[str]:
  """The artifact folders a component wrote, in execution order."""
  base = os.path.join(root, component, output)
  return [os.path.join(base, name)
          for name in sorted(os.listdir(base), key=int)]


def _tiny_folder(root) -> str:
  """Two classes of one PNG each."""
  for name in ('a', 'b'):
    (root / name).mkdir(parents=True)
    Image.new('L', (8, 8), 200).save(root / name / '0.png')
  return str(root)


@pytest.fixture(scope='module')
def folder_run(image_folder_sample, tmp_path_factory, examples_reader):
  """The sample through ExampleGen and StatisticsGen, reported by the CLI.

  Then a second, later run of ExampleGen alone on other input, for the
  "latest" lookups to tell apart.
  """
  out = tmp_path_factory.mktemp('report_folder')
  root, metadata = str(out / 'root'), str(out / 'mlmd.sqlite')
  _run_pipeline(str(image_folder_sample.root), root, metadata)
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert cli.main(['--metadata', metadata, '--pipeline', PIPELINE, '--out',
                     str(out / 'report'), '--samples-per-label',
                     str(PER_LABEL)]) == 0
  _run_pipeline(_tiny_folder(out / 'tiny'), root, metadata,
                with_statistics=False)
  examples = _artifact_uris(root, 'ImageFolderExampleGen', 'examples')
  assert len(examples) == 2
  return {'uri': examples[0], 'later_uri': examples[1],
          'statistics': _artifact_uris(root, 'StatisticsGen', 'statistics'),
          'metadata': metadata, 'out': out / 'report',
          'html_path': str(out / 'report' / 'report.html'),
          'contact_sheet_path': str(out / 'report' / 'contact_sheet.png'),
          'printed': printed.getvalue(),
          'examples': examples_reader(examples[0]),
          'rejects': image_folder_sample.rejects}


@pytest.fixture(params=['dicom', 'folder'])
def run(request):
  result = request.getfixturevalue(f'{request.param}_run')
  text = pathlib.Path(result['html_path']).read_text(encoding='utf-8')
  return {**result, 'html': text, 'page': _Page(text), 'kind': request.param}


def test_counts_equal_the_artifacts(run):
  page = run['page']
  want = _counts(run['examples'])
  with open(os.path.join(run['uri'], 'ingest_summary.json')) as f:
    summary = json.load(f)
  assert set(want) == set(summary['splits']) == {'train', 'eval'}
  for split, counts in want.items():
    assert counts['examples'] == summary['splits'][split]['examples']
    assert counts['labels'] == summary['splits'][split]['labels']
    [row] = page.find('tr', data_split=split)
    assert page.cell(row, data_count='examples') == str(counts['examples'])
    if run['kind'] == 'dicom':
      assert counts['patients'] == summary['splits'][split]['patients'] > 0
      assert page.cell(row, data_count='patients') == str(counts['patients'])
    for label, n in counts['labels'].items():
      assert page.cell(row, data_label=label) == str(n)


def test_each_label_in_each_split_has_its_first_thumbnails_by_key(run):
  page = run['page']
  for split, split_examples in run['examples'].items():
    keys_by_label = {}
    for e in split_examples:
      label = str(e.features.feature['label'].int64_list.value[0])
      keys_by_label.setdefault(label, []).append(
          e.features.feature['image/key'].bytes_list.value[0].decode())
    assert len(keys_by_label) > 1
    for label, label_keys in keys_by_label.items():
      shown = [t['data-key'] for t in page.find(
          'img', data_split=split, data_label=label)]
      assert shown == sorted(label_keys)[:PER_LABEL], (split, label)


def test_captions_carry_the_key_metadata(run):
  captions = [t['text'] for t in run['page'].find('figcaption')]
  assert captions
  if run['kind'] == 'dicom':
    assert all(re.search(r'(MG|CT|DX|CR) MONOCHROME[12]', c) for c in captions)
    assert any('MONOCHROME1' in c for c in captions)
    assert any(re.search(r'W -?[\d.]+/[\d.]+', c) for c in captions)
    assert any('no window' in c for c in captions)
    assert any('16-bit PNG' in c for c in captions)
  else:
    assert all(re.search(r'label \d digit_\d', c) for c in captions)
    assert any('jpeg 32x32x3' in c for c in captions)


def test_every_reject_reason_appears_with_its_paths(run):
  page = run['page']
  expected = run['rejects']
  assert expected
  for reason in set(expected.values()):
    paths = {p for p, r in expected.items() if r == reason}
    [count_row] = page.find('tr', data_stage=rejects.REASON_STAGE[reason],
                            data_reason=reason)
    assert page.cell(count_row, data_count='rejects') == str(len(paths))
    listed = {page.find('code', within=row)[0]['text']
              for row in page.find('tr', data_reason=reason)
              if not row.get('data-stage')}
    assert listed == paths


def test_html_references_no_external_url(run):
  text = run['html']
  assert len(text) < 300_000
  assert not re.search(r'[a-zA-Z][a-zA-Z0-9+.-]*://', text)
  for tag in run['page'].tags:
    for attr in ('src', 'href'):
      value = tag.get(attr)
      if value:
        assert value.startswith('data:image/png;base64,') or (
            re.fullmatch(r'[\w.-]+', value)), value
  assert not re.search(r'<(script|link|iframe)\b|url\(|@import', text)


def test_contact_sheet_is_a_png_sized_for_the_thumbnails(run):
  with Image.open(run['contact_sheet_path']) as image:
    assert image.format == 'PNG'
    width, height = image.size
    pixels = np.asarray(image.convert('L'), np.float64)
  n_thumbs = len(run['page'].find('img')) - 1  # Less the chart.
  assert width >= 8 * 96 and height * width >= n_thumbs * 96 * 96
  assert pixels.std() > 20  # Not blank: dark thumbnails on white.


def _monochrome1(dicom_sample):
  return {keys.keyed_hash(img.sop_instance_uid, SALT, 'image'): img
          for img in dicom_sample.images if img.photometric == 'MONOCHROME1'}


def _dense_is_bright(pixels: np.ndarray, index: int) -> bool:
  intensity, _ = sample_data.render_digit(index, size=32)
  digit, background = intensity > 0.5, intensity < 0.1
  return pixels[digit].mean() > pixels[background].mean() + 100


def test_monochrome1_thumbnails_are_bright_where_dense(dicom_sample, dicom_run):
  by_key = _monochrome1(dicom_sample)
  checked = 0
  for split_examples in dicom_run['examples'].values():
    for e in split_examples:
      key = e.features.feature['image/key'].bytes_list.value[0].decode()
      if key in by_key:
        pixels = render.thumbnail(
            e.features.feature['image/encoded'].bytes_list.value[0])
        assert pixels.shape == (32, 32) and pixels.dtype == np.uint8
        assert _dense_is_bright(pixels, by_key[key].index), by_key[key]
        checked += 1
  assert checked == len(by_key) > 0
  page = _Page(pathlib.Path(dicom_run['html_path']).read_text())
  shown = [t for t in page.find('img') if t.get('data-key') in by_key]
  assert shown
  for tag in shown:
    png = base64.b64decode(tag['src'].split(',', 1)[1])
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    assert _dense_is_bright(pixels, by_key[tag['data-key']].index)


def test_thumbnail_decodes_16_bit_as_the_trainer_and_shrinks_to_fit():
  ramp = np.linspace(0, 65535, 200 * 100).reshape(100, 200).astype(np.uint16)
  small = render.thumbnail(codecs.encode_png(ramp[:10, :20]))
  np.testing.assert_array_equal(
      small, np.round(ramp[:10, :20] / 65535 * 255).astype(np.uint8))
  large = render.thumbnail(codecs.encode_png(ramp), size=96)
  assert large.shape == (48, 96)
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[..., 0] = 255
  rgb = render.thumbnail(tf.io.encode_png(rgba).numpy())
  assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == 255).all()


def test_statistics_pages_are_linked_siblings(dicom_run, folder_run):
  page = _Page(pathlib.Path(folder_run['html_path']).read_text())
  links = [t['href'] for t in page.find('a')]
  for name in ('statistics-train.html', 'statistics-eval.html',
               'statistics-train-vs-eval.html'):
    assert name in links
    text = (folder_run['out'] / name).read_text()
    assert 'facets-overview' in text and 'proto-input=' in text
  dicom_text = pathlib.Path(dicom_run['html_path']).read_text()
  assert 'No statistics' in dicom_text and dicom_run['paths'].statistics == ()


def test_latest_artifacts_from_mlmd(folder_run):
  metadata = folder_run['metadata']
  first, later = folder_run['uri'], folder_run['later_uri']
  [statistics] = folder_run['statistics']
  assert f'Examples: {first}' in folder_run['printed']
  assert report.latest_examples_uri(metadata, PIPELINE) == later
  assert report.latest_statistics_uri(metadata, PIPELINE) == statistics
  assert report.latest_statistics_uri(metadata, PIPELINE, first) == statistics
  assert report.latest_statistics_uri(metadata, PIPELINE, later) is None
  with pytest.raises(LookupError, match='no-such-pipeline'):
    report.latest_examples_uri(metadata, 'no-such-pipeline')
  with pytest.raises(FileNotFoundError):
    report.latest_examples_uri(metadata + '.missing', PIPELINE)


@pytest.mark.parametrize('argv', [
    ['--out', 'x'],
    ['--out', 'x', '--examples', 'e', '--metadata', 'm', '--pipeline', 'p'],
    ['--out', 'x', '--metadata', 'm'],
])
def test_command_line_needs_one_source(argv):
  with pytest.raises(SystemExit):
    cli.main(argv)


@pytest.fixture(scope='module')
def captioned_run(tmp_path_factory, executor_runner):
  """A Hugging Face folder with descriptions, reported."""
  out = tmp_path_factory.mktemp('report_captioned')
  sample = sample_data.make_captioned_images(out / 'data', 12, size=16)
  artifact = executor_runner(ImageFolderExampleGen(input_base=str(sample.root)),
                             out / 'examples')
  paths = report.write_report(artifact.uri, str(out / 'report'),
                              samples_per_label=1)
  return sample, paths


def test_text_columns_caption_the_thumbnails_shortened(captioned_run):
  sample, paths = captioned_run
  page = _Page(pathlib.Path(paths.html).read_text(encoding='utf-8'))
  captions = [t['text'] for t in page.find('figcaption')]
  shortened = {data.shorten(image.description) for image in sample.images}

  assert captions
  for text in captions:
    (line,) = [d for d in shortened if f'description: {d}' in text]
    assert len(line) == data.CAPTION_TEXT_LENGTH and line.endswith('\u2026')


def test_table_section_gives_each_column_type_and_missing_values(
    captioned_run, dicom_run):
  _, paths = captioned_run
  page = _Page(pathlib.Path(paths.html).read_text(encoding='utf-8'))
  [row] = page.find('tr', data_column='description')
  assert 'bytes' in row['text'] and page.cell(row, data_count='missing') == '0'
  dicom = _Page(pathlib.Path(dicom_run['html_path']).read_text(
      encoding='utf-8'))
  for column in ('laterality', 'view'):
    [row] = dicom.find('tr', data_column=column)
    assert 'bytes' in row['text']
    assert dicom.cell(row, data_count='missing') == '0'
  assert all(re.search(r'laterality: [LR]', t['text'])
             for t in dicom.find('figcaption'))
def test_statistics_pages_hold_plain_tables_that_need_no_network(folder_run):
  text = (folder_run['out'] / 'statistics-train-vs-eval.html').read_text()
  page = _Page(text)
  assert 'without internet' in text
  tables = page.find('table', **{'class': 'statistics'})
  assert len(tables) == 2  # train and eval.
  rows = page.find('tr', within=tables[0], data_feature='image/encoded')
  assert len(rows) == 1
  labels = page.find('tr', within=tables[0], data_feature='label')
  assert labels and page.find('td', within=labels[0])[2]['text'] != ''


def _summary_page(summary, splits, label_names=None):
  from image_example_gen.report import data as data_lib  # pylint: disable=g-import-not-at-top
  data = data_lib.ArtifactData(
      uri='/x', splits={name: data_lib.SplitCounts(n, 0, labels)
                        for name, (n, labels) in splits.items()},
      samples={name: {} for name in splits}, label_names=label_names or {},
      rejects=[], summary=summary, is_dicom=False)
  return render.report_html(data, {name: {} for name in splits}, b'', 'c.png')


def test_the_report_tells_the_ingestion_story_and_warns_about_splits():
  summary = {'input_files': 10, 'converted_files': 9, 'rejected_files': 1,
             'skipped_files': 2, 'examples': 9, 'skips': {'hidden_file': 2},
             'duplicates': {'duplicate_images': 2, 'duplicate_groups': 1,
                            'duplicate_images_across_splits': 2},
             'reencoded_files': 3,
             'metadata': {'metadata_rows': 12, 'metadata_rows_matched': 9,
                          'metadata_rows_without_file': 3,
                          'metadata_rows_without_file_first_keys': ['k1']}}
  text = _summary_page(summary, {'train': (6, {'0': 3, '1': 3}),
                                 'eval': (3, {'0': 3})},
                       {'0': 'cat', '1': 'dog'})
  page = _Page(text)
  counts = {row['data-count']: page.find('td', within=row)[-1]['text']
            for row in page.find('tr') if row.get('data-count') and
            page.find('td', within=row)}
  assert counts['duplicate_images_across_splits'] == '2'
  assert counts['reencoded_files'] == '3'
  assert counts['metadata_rows_without_file'] == '3'
  assert '2 files skipped as not inputs (hidden_file 2)' in text
  assert 'Warning: split eval holds one class only (cat).' in text
  assert 'First table keys without a file: k1' in text
  balanced = _summary_page(summary, {'train': (6, {'0': 3, '1': 3}),
                                     'eval': (3, {'0': 2, '1': 1})})
  assert 'Warning' not in balanced
