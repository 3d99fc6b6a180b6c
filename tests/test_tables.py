"""Tests of tables, table_keys and table_values: reading, keys, typing, rows."""

import json

import pytest

from image_example_gen import rejects
from image_example_gen import table_keys
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
    ({'group_column': 'file_name'}, 'more than once'),
    ({'label_separator': ''}, 'label_separator'),
])
def test_spec_is_checked(kwargs, match):
  kwargs = {'path': 'metadata.csv', 'key_column': 'file_name', **kwargs}
  with pytest.raises(ValueError, match=match):
    tables.TableSpec(**kwargs)
