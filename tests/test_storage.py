"""The I/O layer on Cloud Storage (a local test server) and on local disk.

One tree, written to disk and uploaded, must list, fold into folders and
resolve spans alike; placeholder objects are not files; the remote listing
holds one page of names at a time.
"""

import os

import pytest
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from image_example_gen import driver
from image_example_gen import listing
from image_example_gen import outputs
from image_example_gen import storage

# Ugly but real names: spaces, non-ASCII, glob characters, a dotted folder.
_FILES = {
    'a/b/1.png': b'12345',
    'a/2.png': b'12',
    'a/2.png.bak': b'1',
    'top.txt': b'',
    'with space/\u00e9t\u00e9.png': b'123',
    'x[1]/3.png': b'1234',
    'scan.dcm/inner.dcm': b'1',
    'span-1/ver-1/a.png': b'1',
    'span-2/ver-1/b.png': b'1',
    'span-2/ver-3/deep/c.png': b'1',
    'span-10/notes.txt': b'1',
}
# Placeholders ("Create folder"): one for the tree itself, one for a folder
# with files, one for a folder without (an empty folder on disk).
_PLACEHOLDERS = ('', 'a/', 'empty/')


@pytest.fixture(scope='module')
def trees(tmp_path_factory, gcs_bucket):
  """The same tree on local disk and on the test server."""
  local = tmp_path_factory.mktemp('storage') / 'tree'
  for rel_path, data in _FILES.items():
    (local / rel_path).parent.mkdir(parents=True, exist_ok=True)
    (local / rel_path).write_bytes(data)
  (local / 'empty').mkdir()
  gcs_bucket.upload(local, 'tree')
  for name in _PLACEHOLDERS:
    gcs_bucket.put(f'tree/{name}')
  gcs_bucket.put('tree/weird/', b'bytes in a folder-named object')
  return str(local), gcs_bucket.uri('tree')


@pytest.fixture
def gcs(gcs_bucket):
  with gcs_bucket.environment():
    yield gcs_bucket


def _listed(base, pattern='**'):
  return {f.rel_path: (f.size, f.problem)
          for f in listing.list_files(base, pattern)}


@pytest.mark.parametrize('pattern', ['**', 'a/*', 'a/**/*.png', '*/*.png',
                                     'x[[]1]/*', 'missing/**'])
def test_remote_listing_is_the_local_listing(trees, gcs, pattern):
  del gcs
  local, remote = trees
  remote_listed = _listed(remote, pattern)
  weird = remote_listed.pop('weird/', None)
  assert remote_listed == _listed(local, pattern)
  if pattern == '**':
    assert weird == (0, 'an object named like a folder (its name ends in "/") '
                     'holds 30 bytes')


def test_remote_listing_holds_one_page_at_a_time(gcs, monkeypatch):
  for i in range(25):
    gcs.put(f'paged/{i:02d}.png', b'1')
  monkeypatch.setattr(listing, 'PAGE_SIZE', 10)
  before = gcs.server.stats()['list_requests']
  files = listing.list_files(gcs.uri('paged'), '**')
  first = next(files)
  assert gcs.server.stats()['list_requests'] == before + 1
  rest = [next(files) for _ in range(10)]
  assert gcs.server.stats()['list_requests'] == before + 2
  rest += list(files)
  assert gcs.server.stats()['list_requests'] == before + 3
  assert [f.rel_path for f in [first] + rest] == [
      f'{i:02d}.png' for i in range(25)]


def test_folders_are_name_prefixes_and_placeholders(trees, gcs):
  del gcs
  local, remote = trees
  expected = ['a', 'empty', 'scan.dcm', 'span-1', 'span-10', 'span-2',
              'with space', 'x[1]']
  assert listing.list_folders(local) == expected
  assert listing.list_folders(remote) == sorted(expected + ['weird'])
  assert listing.list_folders(remote + '/a/') == ['b']
  assert listing.list_folders(remote + '/missing') == []
  assert listing.list_folders(os.path.join(local, 'missing')) == []


def test_write_glob_remove(tmp_path, gcs):
  for base in (str(tmp_path / 'out'), gcs.uri('out')):
    storage.makedirs(os.path.join(base, 'parts'))
    storage.makedirs(os.path.join(base, 'parts'))  # Exists: no error.
    outputs.write_text(os.path.join(base, 'parts', 'a.json'), '{}')
    outputs.write_text(os.path.join(base, 'parts', 'deep', 'b.json'), '[]')
    assert storage.exists(os.path.join(base, 'parts', 'a.json'))
    assert storage.glob(os.path.join(base, 'parts', '*.json')) == [
        os.path.join(base, 'parts', 'a.json')]
    storage.remove_tree(os.path.join(base, 'parts'))
    storage.remove_tree(os.path.join(base, 'parts'))  # Absent: no error.
    assert not storage.glob(os.path.join(base, '**'))


def _split(pattern, name='train'):
  return example_gen_pb2.Input.Split(name=name, pattern=pattern)


@pytest.mark.parametrize('splits, range_config, expected', [
    ([_split('**')], None, (0, None)),
    ([_split('span-{SPAN}/**')], None, (10, None)),
    ([_split('span-{SPAN}/*/*.png')], None, (2, None)),
    ([_split('span-{SPAN}/ver-{VERSION}/**')], None, (2, 3)),
    ([_split('span-{SPAN}/ver-{VERSION}/*.png'),
      _split('span-{SPAN}/ver-{VERSION}/b.png', 'eval')], None, (2, 1)),
    ([_split('span-{SPAN}/ver-{VERSION}/**')], range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=1,
                                                  end_span_number=1)),
     (1, 1)),
])
def test_spans_and_versions_resolve_alike(trees, gcs, splits, range_config,
                                          expected):
  del gcs
  for base in trees:
    assert driver.resolve_span_and_version(base, splits,
                                           range_config) == expected


def test_unmatched_or_disagreeing_spans_are_errors(trees, gcs):
  del gcs
  for base in trees:
    with pytest.raises(ValueError, match='Cannot find matching'):
      driver.resolve_span_and_version(base, [_split('span-{SPAN}/none/*')])
    with pytest.raises(ValueError, match='same for each split'):
      driver.resolve_span_and_version(
          base, [_split('span-{SPAN}/**'), _split('span-{SPAN}/*/*', 'b')])
