"""Tests for image_example_gen.dicom.labels: the labels CSV and its join."""

import io

from pydicom.dataset import Dataset
import pytest

from image_example_gen import rejects
from image_example_gen.dicom import labels

RSNA_HEADER = 'patient_id,image_id,laterality,view,age,label\n'


def _write(tmp_path, text, name='labels.csv'):
  path = tmp_path / name
  path.write_bytes(text.encode('utf-8') if isinstance(text, str) else text)
  return str(path)


def _rsna_spec(path, **kwargs):
  kwargs.setdefault('patient_column', 'patient_id')
  return labels.LabelSpec(csv_path=path, key_column='image_id', **kwargs)


def test_reads_rsna_rows_with_typed_extras(tmp_path):
  path = _write(tmp_path, RSNA_HEADER +
                '10006,462822612,L,CC,61,0\n'
                '10006,1459541791,L,MLO,61,1\n'
                '10011,220375232,R,CC,,0\n')
  spec = _rsna_spec(path, extra_columns=('laterality', 'view', 'age'))

  table = labels.read_label_table(spec)

  assert table.num_rows == 3
  assert table.column_types == {'laterality': bytes, 'view': bytes,
                                'age': int}
  assert table.lookup('1459541791') == labels.LabelRow(
      patient_id='10006', label=1,
      extras={'laterality': b'L', 'view': b'MLO', 'age': 61})
  # An empty cell is left out of the extras.
  assert table.lookup('220375232').extras == {'laterality': b'R',
                                              'view': b'CC'}
  assert not table.duplicate_keys and not table.invalid_keys


def test_column_type_is_decided_over_the_whole_csv(tmp_path):
  path = _write(tmp_path, 'image_id,label,age,density,site,dose\n'
                'a,0,61,1,1,1.5\n'
                'b,1,62.5,2,x,1e999\n'
                'c,1,70,3,2,2\n')
  spec = labels.LabelSpec(path, 'image_id',
                          extra_columns=('age', 'density', 'site', 'dose'))

  table = labels.read_label_table(spec)

  assert table.column_types == {'age': float, 'density': int, 'site': bytes,
                                'dose': bytes}
  assert table.rows['a'].extras == {'age': 61.0, 'density': 1, 'site': b'1',
                                    'dose': b'1.5'}
  assert isinstance(table.rows['a'].extras['age'], float)


def test_bom_crlf_whitespace_and_blank_lines(tmp_path):
  path = _write(tmp_path, '\ufeff patient_id , image_id ,label \r\n'
                '\r\n'
                ' p1 , 101 , 1 \r\n'
                ',,\r\n'
                'p2,"102",0\r\n')

  table = labels.read_label_table(_rsna_spec(path))

  assert table.num_rows == 2
  assert table.lookup('101') == labels.LabelRow('p1', 1, {})
  assert table.lookup(' 102\x00') == labels.LabelRow('p2', 0, {})


def test_duplicate_keys_are_rejected_whatever_their_rows_hold(tmp_path):
  path = _write(tmp_path, RSNA_HEADER +
                'p1,101,L,CC,50,1\n'
                'p1,101,L,CC,50,1\n'
                'p2,102,L,CC,50,x\n'
                'p2,102,L,CC,50,0\n'
                'p3,103,L,CC,50,0\n')

  table = labels.read_label_table(_rsna_spec(path))

  assert table.duplicate_keys == frozenset({'101', '102'})
  assert table.duplicate_rows == {'101': 2, '102': 2}
  assert table.lookup('101') == rejects.DUPLICATE_LABEL_ROW
  assert table.lookup('102') == rejects.DUPLICATE_LABEL_ROW
  assert not table.invalid_keys
  assert table.lookup('103').label == 0


@pytest.mark.parametrize('cell, label', [
    ('0', 0), ('1', 1), ('+3', 3), ('1.0', 1), ('7', 7)])
def test_valid_labels(tmp_path, cell, label):
  path = _write(tmp_path, f'image_id,label\na,{cell}\n')
  table = labels.read_label_table(labels.LabelSpec(path, 'image_id'))
  assert table.lookup('a').label == label


@pytest.mark.parametrize('cell', [
    '', '-1', '1.5', 'cancer', 'nan', '1e30', '99999999999999999999', '٣',
    '1_0'])
def test_invalid_labels(tmp_path, cell):
  path = _write(tmp_path, f'image_id,label\na,{cell}\nb,1\n')

  table = labels.read_label_table(labels.LabelSpec(path, 'image_id'))

  assert table.lookup('a') == rejects.INVALID_LABEL
  assert 'label' in table.invalid_keys['a']
  assert table.lookup('b').label == 1


def test_row_problems_become_invalid_label(tmp_path):
  path = _write(tmp_path, RSNA_HEADER +
                'p1,101,L,CC,50\n'          # a field short
                'p1,102,L,CC,50,1,extra\n'  # a field too many
                ',103,L,CC,50,1\n')         # no patient id

  table = labels.read_label_table(_rsna_spec(path))

  assert set(table.invalid_keys) == {'101', '102', '103'}
  assert 'fields' in table.invalid_keys['101']
  assert 'patient_id' in table.invalid_keys['103']
  assert not table.rows


def test_without_label_or_patient_column(tmp_path):
  path = _write(tmp_path, RSNA_HEADER + 'p1,101,L,CC,50,not-a-label\n')
  spec = _rsna_spec(path, label_column=None, patient_column=None)

  table = labels.read_label_table(spec)

  assert table.lookup('101') == labels.LabelRow(None, None, {})


def test_key_without_row(tmp_path):
  path = _write(tmp_path, 'image_id,label\na,1\n')
  table = labels.read_label_table(labels.LabelSpec(path, 'image_id'))
  assert table.lookup('b') == rejects.NO_LABEL_ROW
  assert table.lookup('') == rejects.NO_LABEL_ROW


def test_missing_file_names_the_file(tmp_path):
  path = str(tmp_path / 'absent.csv')
  with pytest.raises(ValueError, match='absent.csv'):
    labels.read_label_table(labels.LabelSpec(path, 'image_id'))


def test_missing_columns_name_the_file_and_columns(tmp_path):
  path = _write(tmp_path, 'patient_id,image_id,cancer\np1,a,1\n')
  spec = labels.LabelSpec(path, 'image_id', extra_columns=('age',))
  with pytest.raises(ValueError, match=r"labels.csv.*\['label', 'age'\]"):
    labels.read_label_table(spec)


@pytest.mark.parametrize('text, match', [
    ('', 'empty'),
    ('\ufeff', 'empty'),
    ('image_id,label\n', 'no rows'),
    ('image_id,label\r\n\r\n,\r\n', 'no rows'),
    (b'image_id,label\na,1\nb\xe9,0\n', 'not UTF-8'),
    ('image_id,label,label\na,1,1\n', 'more than once'),
])
def test_unusable_files(tmp_path, text, match):
  path = _write(tmp_path, text)
  with pytest.raises(ValueError, match=match) as raised:
    labels.read_label_table(labels.LabelSpec(path, 'image_id'))
  assert 'labels.csv' in str(raised.value)


def test_open_fn_may_return_bytes_or_text(tmp_path):
  contents = 'image_id,label\na,1\n'
  opened = []

  def open_bytes(path, mode):
    opened.append((path, mode))
    return io.BytesIO(contents.encode('utf-8'))

  spec = labels.LabelSpec('gs://bucket/labels.csv', 'image_id')
  from_bytes = labels.read_label_table(spec, open_fn=open_bytes)
  from_text = labels.read_label_table(
      spec, open_fn=lambda path, mode: io.StringIO('\ufeff' + contents))

  assert opened == [('gs://bucket/labels.csv', 'rb')]
  assert from_bytes == from_text
  assert from_bytes.lookup('a').label == 1


def test_rsna_sized_csv(tmp_path):
  lines = [RSNA_HEADER]
  lines.extend(f'{i // 4},{1000000 + i},{"LR"[i % 2]},CC,{40 + i % 50},'
               f'{i % 2}\n' for i in range(54000))
  path = _write(tmp_path, ''.join(lines))
  spec = _rsna_spec(path, extra_columns=('laterality', 'age'))

  table = labels.read_label_table(spec)

  assert table.num_rows == len(table.rows) == 54000
  assert table.lookup('1053999') == labels.LabelRow(
      '13499', 1, {'laterality': b'R', 'age': 89})


def test_summarize_join(tmp_path):
  path = _write(tmp_path, 'image_id,label\n'
                'a,1\n'
                'b,0\n'
                'b,1\n'
                'c,x\n'
                ',1\n'
                'd,0\n')
  table = labels.read_label_table(labels.LabelSpec(path, 'image_id'))

  summary = labels.summarize_join(table, ['a', 'b', 'b', 'c', 'zzz', 'a'])

  assert summary == {'csv_rows': 6, 'matched': 3, 'rows_without_file': 2,
                     'duplicate_keys': 1, 'invalid': 1}


@pytest.mark.parametrize('kwargs, match', [
    ({'key_column': ''}, 'key_column'),
    ({'key_column': ' image_id'}, 'key_column'),
    ({'csv_path': ''}, 'csv_path'),
    ({'label_column': ''}, 'label_column'),
    ({'patient_column': 3}, 'patient_column'),
    ({'extra_columns': 'age'}, 'sequence'),
    ({'extra_columns': ('age', '')}, 'extra_columns'),
    ({'key_source': 'file_name'}, 'key_source'),
    ({'key_source': 'ReferencedImageSequence'}, 'sequence'),
    ({'key_source': 'PixelData'}, 'binary'),
    ({'key_source': 'MediaStorageSOPInstanceUID'}, 'file meta'),
    ({'label_column': 'image_id'}, 'distinct'),
    ({'patient_column': 'label'}, 'distinct'),
    ({'extra_columns': ('age', 'age')}, 'distinct'),
    ({'extra_columns': ('label',), 'label_column': 'cancer'}, 'collides'),
    ({'extra_columns': ('image/encoded',)}, 'collides'),
    ({'extra_columns': ('dicom/modality',)}, 'collides'),
    ({'extra_columns': ('patient/key',)}, 'collides'),
])
def test_spec_refuses_wrong_values(kwargs, match):
  kwargs = {'csv_path': 'labels.csv', 'key_column': 'image_id', **kwargs}
  with pytest.raises(ValueError, match=match):
    labels.LabelSpec(**kwargs)


def test_spec_accepts_dicom_key_source_and_list_of_extras():
  spec = labels.LabelSpec('labels.csv', 'sop_uid', key_source='SOPInstanceUID',
                          patient_column='patient_id',
                          extra_columns=['age', 'view'])
  assert spec.extra_columns == ('age', 'view')
  assert spec.columns == ('sop_uid', 'label', 'patient_id', 'age', 'view')


@pytest.mark.parametrize('path, key', [
    ('10006/462822612.dcm', '462822612'),
    ('gs://bucket/train/10006/462822612.DCM', '462822612'),
    ('a/scan.v2.dicom', 'scan.v2'),
    ('a/1.2.840.113619.2.55.3.4', '1.2.840.113619.2.55.3.4'),
    ('a\\b\\IM0001', 'IM0001'),
    ('a/.dcm', '.dcm'),
])
def test_join_key_from_file_stem(path, key):
  spec = labels.LabelSpec('labels.csv', 'image_id')
  assert labels.join_key(spec, path) == key


def test_join_key_from_dicom_attribute():
  spec = labels.LabelSpec('labels.csv', 'sop_uid', key_source='SOPInstanceUID')
  ds = Dataset()
  ds.SOPInstanceUID = '1.2.3.4'

  assert labels.join_key(spec, 'a/IM1.dcm', ds) == '1.2.3.4'
  assert labels.join_key(spec, 'a/IM1.dcm', Dataset()) is None
