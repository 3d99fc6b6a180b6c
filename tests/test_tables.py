"""Tests of tables, table_keys and table_values: reading, keys, typing, rows."""

import datetime
import decimal
import json

import pytest

from image_example_gen import rejects
from image_example_gen import table_keys
from image_example_gen import table_params
from image_example_gen import table_values
from image_example_gen import tables


def _write(tmp_path, text, name='metadata.csv'):
  path = tmp_path / name
  path.write_bytes(text.encode('utf-8') if isinstance(text, str) else text)
  return str(path)


def _open_binary(path):
  return open(path, 'rb')


def _spec(path, **kwargs):
  kwargs.setdefault('key_column', 'file_name')
  return tables.TableSpec(path=path, **kwargs)


def _rows(spec):
  """key -> ParsedRow or RowError, with types over the whole table."""
  records = list(tables.iter_records(spec, _open_binary))
  observation = table_values.TableObservation()
  for line, record in records:
    observation.add(record, spec.candidates(record), 0, line)
  columns = table_values.decide_columns(observation, spec.extra_columns,
                                        spec.column_types)
  result = {}
  for line, record in records:
    key = table_keys.table_key(record.get(spec.key_column), spec.key_source)
    try:
      if tables.MALFORMED in record:
        raise table_values.RowError(record[tables.MALFORMED])
      result[key] = table_values.parse_row(
          record, line, spec.label_column, spec.label_separator,
          spec.integer_labels, spec.group_column, columns)
    except table_values.RowError as e:
      result[key] = e
  return result


def test_csv_columns_are_typed_over_the_whole_table(tmp_path):
  path = _write(tmp_path, '\ufefffile_name,label,age,score,note\r\n'
                ' a.jpg , cat ,41,0.5, fine \r\n'
                'b.jpg,dog,,1,7\r\n\r\n'
                'c.jpg,dog,39,2e1,\r\n')
  spec = _spec(path, extra_columns=('age', 'score', 'note'))

  rows = _rows(spec)

  assert rows['a.jpg'] == table_values.ParsedRow(
      2, ('cat',), None, {'age': 41, 'score': 0.5, 'note': b'fine'})
  assert rows['b.jpg'].extras == {'score': 1.0, 'note': b'7'}
  assert rows['c.jpg'].extras == {'age': 39, 'score': 20.0}


def test_jsonl_values_keep_their_json_types(tmp_path):
  lines = [{'file_name': 'a.png', 'label': ['cat', 'dog'], 'boxes': [1, 2.5],
            'caption': 'two pets', 'n': 3, 'flag': True},
           {'file_name': './b.png', 'label': 'dog', 'boxes': 4,
            'caption': 5, 'n': None}]
  path = _write(tmp_path, '\n'.join(json.dumps(r) for r in lines) + '\n',
                'metadata.jsonl')
  spec = _spec(path, extra_columns=('boxes', 'caption', 'n', 'flag'))

  rows = _rows(spec)

  assert rows['a.png'].labels == ('cat', 'dog')
  assert rows['a.png'].extras == {'boxes': (1.0, 2.5), 'caption': b'two pets',
                                  'n': 3, 'flag': 1}
  assert rows['b.png'].extras == {'boxes': (4.0,), 'caption': b'5'}


def test_label_separator_makes_labels_multi(tmp_path):
  path = _write(tmp_path, 'id,tags\n1,cloudy  primary water\n2,clear\n')
  spec = _spec(path, key_column='id', key_source=table_keys.FILE_STEM,
               label_column='tags', label_separator=' ')

  rows = _rows(spec)

  assert rows['1'].labels == ('cloudy', 'primary', 'water')
  assert rows['2'].labels == ('clear',)


@pytest.mark.parametrize('text, detail', [
    ('file_name,label\na.jpg\n', 'has 1 fields, the header 2'),
    ('file_name,label\na.jpg,\n', "label column 'label' is empty"),
    ('file_name,label,group\na.jpg,cat,\n', "group column 'group' is empty"),
])
def test_bad_rows_name_the_column_and_line(tmp_path, text, detail):
  spec = _spec(_write(tmp_path, text),
               group_column='group' if 'group' in text else None)

  error = _rows(spec)['a.jpg']

  assert isinstance(error, table_values.RowError)
  assert error.reason == rejects.BAD_METADATA_VALUE
  assert detail in error.detail and 'line 2' in error.detail


def test_json_objects_are_bad_values(tmp_path):
  path = _write(tmp_path, json.dumps(
      {'file_name': 'a.png', 'label': 'cat', 'box': {'x': 1}}) + '\n',
                'metadata.jsonl')

  error = _rows(_spec(path, extra_columns=('box',)))['a.png']

  assert isinstance(error, table_values.RowError)
  assert "column 'box' holds a dict" in error.detail


def test_integer_labels_must_be_non_negative_integers(tmp_path):
  path = _write(tmp_path, 'image_id,label\n1,1.0\n2,-1\n3,x\n')
  spec = _spec(path, key_column='image_id', key_source=table_keys.FILE_STEM,
               integer_labels=True)

  rows = _rows(spec)

  assert rows['1'].labels == ('1.0',)
  assert 'not a non-negative int64' in rows['2'].detail
  assert 'not an integer' in rows['3'].detail


@pytest.mark.parametrize('values, class_names, expected', [
    (['dog', 'cat'], None, table_values.Vocabulary(('cat', 'dog'))),
    (['0', '1'], None, table_values.Vocabulary((), integer=True)),
    (['0', '1'], ['cat', 'dog'], table_values.Vocabulary(('cat', 'dog'), True)),
    (['dog'], ['dog', 'cat'], table_values.Vocabulary(('dog', 'cat'))),
    (['1', '2'], ['1', '2', '3'], table_values.Vocabulary(('1', '2', '3'))),
])
def test_vocabulary(values, class_names, expected):
  assert table_values.make_vocabulary(values, class_names, False) == expected


def test_labels_resolve_to_indices_or_unknown_class():
  vocabulary = table_values.Vocabulary(('cat', 'dog'))

  assert table_values.resolve_labels(vocabulary, vocabulary.index,
                                     ('dog', 'cat'), 'line 7') == (
                                         (1, 0), ('dog', 'cat'))
  with pytest.raises(table_values.RowError) as raised:
    table_values.resolve_labels(vocabulary, vocabulary.index, ('bird',),
                                'line 7')
  assert raised.value.reason == rejects.UNKNOWN_CLASS
  assert 'line 7' in raised.value.detail
  named = table_values.Vocabulary(('cat', 'dog'), integer=True)
  assert table_values.resolve_labels(named, {}, ('1',), 'line 1') == (
      (1,), ('dog',))


@pytest.mark.parametrize('rel_path, source, folder, key', [
    ('cats/1.jpg', table_keys.RELATIVE_PATH, '', 'cats/1.jpg'),
    ('sub/cats/1.jpg', table_keys.RELATIVE_PATH, 'sub/', 'sub/cats/1.jpg'),
    ('other/1.jpg', table_keys.RELATIVE_PATH, 'sub/', None),
    ('cats/1.jpg', table_keys.FILE_STEM, '', '1'),
    ('train/cats/1.jpg', table_keys.FILE_STEM, 'train/', 'train/1'),
    ('a/1.2.840.113619.2.55.3.4', table_keys.FILE_STEM, '',
     '1.2.840.113619.2.55.3.4'),
    ('a/archive.tar.gz', table_keys.FILE_STEM, '', 'archive.tar'),
    ('p01/s1/3.dcm', r'^([^/]+)/', '', 'p01'),
    ('3.dcm', r'^([^/]+)/', '', None),
    ('train/Abyssinian_12.jpg', r'([A-Za-z_]+)_\d+\.jpg$', 'train/',
     'train/Abyssinian'),
])
def test_file_keys(rel_path, source, folder, key):
  assert table_keys.file_key(rel_path, source, folder) == key


@pytest.mark.parametrize('cell, leaves', [
    ('a.jpg', False), ('./a/b.jpg', False), ('a..b.jpg', False),
    ('../a.jpg', True), ('a/../../b.jpg', True), ('a/../b.jpg', True),
    ('/data/a.jpg', True), ('\\\\server\\a.jpg', True),
    ('gs://bucket/a.jpg', True), ('C:\\images\\a.jpg', True),
    ('file:a.jpg', True), (' ../a.jpg', True), (7, False),
])
def test_keys_that_leave_the_folder(cell, leaves):
  assert table_keys.leaves_folder(cell) == leaves


@pytest.mark.parametrize('value, keywords, match', [
    ('relative_path', False, None), ('file_stem', True, None),
    (r'^([^/]+)/', False, None), ('SOPInstanceUID', True, None),
    ('SOPInstanceUID', False, 'one group'), (r'^[^/]+/', True, 'one group'),
    (r'(a)(b)', False, 'has 2'), ('(', False, 'not a regular expression'),
    ('', False, 'non-empty'), (None, True, 'non-empty'),
])
def test_key_sources(value, keywords, match):
  if match is None:
    table_keys.check_key_source(value, keywords)
  else:
    with pytest.raises(ValueError, match=match):
      table_keys.check_key_source(value, keywords)


def test_table_keys_are_normalized_like_file_keys():
  assert table_keys.table_key(' ./cats/1.jpg ', table_keys.RELATIVE_PATH) == (
      'cats/1.jpg')
  assert table_keys.table_key('cats\\1.jpg', table_keys.RELATIVE_PATH) == (
      'cats/1.jpg')
  assert table_keys.table_key(' 1459541791\x00', table_keys.FILE_STEM) == (
      '1459541791')
  assert table_keys.table_key(1459541791, table_keys.FILE_STEM) == '1459541791'
  assert table_keys.table_key('', table_keys.FILE_STEM) is None
  assert table_keys.table_key(None, table_keys.FILE_STEM) is None


def test_check_table_fails_naming_the_file_and_its_columns(tmp_path):
  path = _write(tmp_path, 'name,label\na.jpg,cat\n')
  with pytest.raises(ValueError, match=r"metadata.csv.*\['file_name'\].*"
                     r"\['name', 'label'\]"):
    tables.check_table(_spec(path), _open_binary)
  with pytest.raises(ValueError, match='has no rows'):
    tables.check_table(_spec(_write(tmp_path, 'file_name,label\n')),
                       _open_binary)
  with pytest.raises(ValueError, match='not UTF-8'):
    tables.check_table(_spec(_write(tmp_path, b'file_name,label\n\xff,a\n')),
                       _open_binary)


def test_a_default_label_column_is_optional_a_named_one_is_not(tmp_path):
  path = _write(tmp_path, 'file_name,text\na.jpg,a cat\n')

  assert tables.check_table(_spec(path, label_optional=True),
                            _open_binary).label_column is None
  with pytest.raises(ValueError, match=r"missing column\(s\) \['label'\]"):
    tables.check_table(_spec(path), _open_binary)


def test_parquet_tables(tmp_path):
  pa = pytest.importorskip('pyarrow')
  pq = pytest.importorskip('pyarrow.parquet')
  path = str(tmp_path / 'metadata.parquet')
  pq.write_table(pa.table({'file_name': ['a.png', 'b.png'],
                           'label': ['cat', 'dog'], 'score': [0.5, None]}),
                 path)
  spec = _spec(path, extra_columns=('score',))

  assert tables.check_table(spec, _open_binary) == spec
  rows = _rows(spec)
  assert rows['a.png'].extras == {'score': 0.5}
  assert rows['b.png'].extras == {}


@pytest.mark.parametrize('kwargs, match', [
    ({'path': 'metadata.txt'}, 'extension'),
    ({'extra_columns': 'age'}, 'sequence'),
    ({'extra_columns': ('label',), 'label_column': None}, 'collides'),
    ({'extra_columns': ('image/x',)}, 'collides'),
    ({'label_column': 'file_name'}, 'more than once'),
    ({'label_separator': ''}, 'label_separator'),
])
def test_spec_is_checked(kwargs, match):
  kwargs = {'path': 'metadata.csv', 'key_column': 'file_name', **kwargs}
  with pytest.raises(ValueError, match=match):
    tables.TableSpec(**kwargs)


@pytest.mark.parametrize('value', ['', ' NA ', 'N/A', 'n/a', 'NaN', 'nan',
                                   'null', 'None', '#N/A', 'NULL', None,
                                   float('nan'), b'NA'])
def test_missing_value_tokens_are_missing(value):
  assert table_values.is_missing(value)
  assert table_values.value_type(value) is None


@pytest.mark.parametrize('value', ['0', 'na', 'none', 'missing', '-', 0, 0.0,
                                   False, 'nan nan'])
def test_other_values_are_values(value):
  assert not table_values.is_missing(value)


def test_missing_tokens_never_make_a_column_text(tmp_path):
  path = _write(tmp_path, 'file_name,label,score,n\n'
                'a.jpg,cat,0.5,1\nb.jpg,dog,n/a,NA\nc.jpg,cat,NaN,\n'
                'd.jpg,dog,#N/A,null\ne.jpg,cat,2,3\n')
  spec = _spec(path, extra_columns=None)

  rows = _rows(spec)

  assert rows['a.jpg'].extras == {'score': 0.5, 'n': 1}
  assert rows['b.jpg'].extras == {}
  assert rows['d.jpg'].extras == {}
  assert rows['e.jpg'].extras == {'score': 2.0, 'n': 3}


@pytest.mark.parametrize('kind, values, expected', [
    ('int', ['3', '3.0', '1e1', '-2', True, 7, 7.0], [3, 3, 10, -2, 1, 7, 7]),
    ('float', ['3', '2.5', '1e-3', 4, 0.25], [3.0, 2.5, 0.001, 4.0, 0.25]),
    ('bytes', ['3', 'x y', 4, 2.5, True], [b'3', b'x y', b'4', b'2.5',
                                          b'true']),
])
def test_declared_types_parse_values(tmp_path, kind, values, expected):
  lines = [json.dumps({'file_name': f'{i}.png', 'v': v})
           for i, v in enumerate(values)]
  spec = _spec(_write(tmp_path, '\n'.join(lines) + '\n', 'metadata.jsonl'),
               label_column=None, extra_columns=('v',),
               column_types={'v': kind})

  rows = _rows(spec)

  assert [rows[f'{i}.png'].extras['v'] for i in range(len(values))] == (
      expected)


@pytest.mark.parametrize('kind, value', [
    ('int', '3.5'), ('int', 'three'), ('int', str(2**64)), ('float', 'x'),
    ('float', 'inf'), ('int', '1,000'),
])
def test_values_that_do_not_parse_as_declared_reject_the_row(tmp_path, kind,
                                                             value):
  path = _write(tmp_path, f'file_name,v\na.jpg,1\nb.jpg,"{value}"\n')
  spec = _spec(path, label_column=None, extra_columns=('v',),
               column_types={'v': kind})

  error = _rows(spec)['b.jpg']

  assert isinstance(error, table_values.RowError)
  assert error.reason == rejects.BAD_METADATA_VALUE
  assert error.detail == (f"line 3: column 'v' value {value!r} is not "
                          f"{'an int' if kind == 'int' else 'a float'} "
                          '(column_types)')


def test_every_column_is_exported_by_default_but_nested_and_reserved(
    tmp_path):
  lines = [{'file_name': 'a.png', 'text': 'two birds', 'n': 2,
            'objects': {'bbox': [[0, 0, 1, 1]]}, 'tags': ['x', 'y'],
            'image/id': 'a', 'boxes': [[1, 2]], 'group': 'g1'},
           {'file_name': 'b.png', 'text': 'one bird', 'objects': None,
            'tags': [], 'group': 'g2'}]
  path = _write(tmp_path, '\n'.join(json.dumps(r) for r in lines) + '\n',
                'metadata.jsonl')
  spec = _spec(path, label_column=None, extra_columns=None,
               group_column='group')
  observation = table_values.TableObservation()
  for line, record in tables.iter_records(spec, _open_binary):
    observation.add(record, spec.candidates(record), 0, line)

  columns = table_values.decide_columns(observation, None, {})

  assert {c: str(t) for c, t in columns.types.items()} == {
      'n': 'int', 'tags': 'bytes list', 'text': 'bytes'}
  assert set(columns.left_out) == {'objects', 'boxes', 'image/id'}
  assert observation.rows - observation.columns['n'].values == 1
  assert _rows(spec)['a.png'].extras == {'n': 2, 'tags': (b'x', b'y'),
                                         'text': b'two birds'}


def test_a_word_among_numbers_makes_text_and_is_named(tmp_path):
  path = _write(tmp_path, 'file_name,score\n' + ''.join(
      f'{i}.jpg,{i}\n' for i in range(5)) + '5.jpg,unknown\n6.jpg,?\n')
  spec = _spec(path, label_column=None, extra_columns=('score',))
  observation = table_values.TableObservation()
  for line, record in tables.iter_records(spec, _open_binary):
    observation.add(record, spec.candidates(record), 0, line)
  stats = observation.columns['score']

  assert str(table_values.decide_columns(observation, ('score',), {}).types[
      'score']) == 'bytes'
  assert table_values.numbers_made_text(stats)
  assert stats.first_text == (0, 7, 'unknown')
  assert (stats.numbers, stats.texts) == (5, 2)


@pytest.mark.parametrize('kwargs, match', [
    ({'column_types': {'age': 'integer'}}, 'one of'),
    ({'column_types': ['age']}, 'map column names'),
    ({'column_types': {'file_name': 'int'}}, 'not exported'),
    ({'column_types': {'age': 'int'}, 'extra_columns': ('score',)},
     'not exported'),
    ({'group_column': 'file_name', 'extra_columns': ('file_name',)},
     'more than once'),
])
def test_column_types_are_checked(kwargs, match):
  with pytest.raises(ValueError, match=match):
    tables.TableSpec(path='metadata.csv', key_column='file_name', **kwargs)


def test_label_column_exec_property_tells_default_none_and_named():
  def properties(label_column):
    return table_params.exec_properties(
        None, 'file_name', 'relative_path', label_column, None, None, None,
        keywords=False, export_all=True)

  default = properties(table_params.DEFAULT_LABEL_COLUMN)
  named = properties('label')
  none = properties(None)

  assert (default['label_column'], named['label_column'],
          none['label_column']) == (None, 'label', '')
  assert table_params.table_spec(default, 'm.csv').label_optional
  assert not table_params.table_spec(named, 'm.csv').label_optional
  assert table_params.table_spec(none, 'm.csv').label_column is None


def test_deprecated_names_move_with_a_warning_and_not_twice():
  values = {'metadata_file': None, 'key_column': 'image_id',
            'key_source': 'file_stem', 'group_column': None}
  defaults = dict(values)

  with pytest.warns(DeprecationWarning, match='use metadata_file='):
    table_params.renamed('DicomExampleGen', {'labels_csv': 'a.csv'}, values,
                         defaults)
  assert values['metadata_file'] == 'a.csv'
  with pytest.raises(ValueError, match='pass only group_column'):
    table_params.renamed('DicomExampleGen', {'patient_column': 'p'},
                         dict(values, group_column='q'), defaults)


def test_parquet_dates_and_decimals_are_values(tmp_path):
  pa = pytest.importorskip('pyarrow')
  pq = pytest.importorskip('pyarrow.parquet')
  path = str(tmp_path / 'metadata.parquet')
  pq.write_table(pa.table({
      'file_name': ['a.png', 'b.png'],
      'taken': pa.array([datetime.datetime(2024, 5, 1, 12, 30), None]),
      'day': pa.array([datetime.date(2024, 5, 1), datetime.date(2024, 5, 2)]),
      'price': pa.array([decimal.Decimal('1.50'), decimal.Decimal('2')],
                        pa.decimal128(5, 2))}), path)
  spec = _spec(path, label_column=None, extra_columns=None)

  rows = _rows(spec)

  assert rows['a.png'].extras == {'taken': b'2024-05-01 12:30:00',
                                  'day': b'2024-05-01', 'price': 1.5}
  assert rows['b.png'].extras == {'day': b'2024-05-02', 'price': 2.0}


def test_an_unnamed_index_column_is_left_out(tmp_path):
  path = _write(tmp_path, ',file_name,label,score\n0,a.jpg,cat,1\n'
                '1,b.jpg,dog,2\n')  # pandas' to_csv with its index
  spec = _spec(path, extra_columns=None)
  observation = table_values.TableObservation()
  for line, record in tables.iter_records(spec, _open_binary):
    observation.add(record, spec.candidates(record), 0, line)

  columns = table_values.decide_columns(observation, None, {})

  assert list(columns.types) == ['score']
  assert list(columns.left_out) == ['']
  assert _rows(spec)['a.jpg'].extras == {'score': 1}
