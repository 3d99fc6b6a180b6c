"""Tests for image_example_gen.listing: every entry accounted for, once."""

import os

import pytest

from image_example_gen import listing


@pytest.fixture
def tree(tmp_path):
  base, outside = tmp_path / 'base', tmp_path / 'outside'
  (base / 'a' / 'b').mkdir(parents=True)
  (base / 'scan.dcm').mkdir()
  outside.mkdir()
  (base / 'a' / 'b' / 'real.jpg').write_bytes(b'12345')
  (base / 'scan.dcm' / 'inner.dcm').write_bytes(b'1')
  (outside / 'linked.jpg').write_bytes(b'123')
  os.symlink('../..', base / 'a' / 'b' / 'loop')          # a link to a parent
  os.symlink(str(outside), base / 'a' / 'out')             # followed once
  os.symlink(str(outside), base / 'out_again')             # same real folder
  os.symlink('nowhere.jpg', base / 'a' / 'broken.jpg')
  os.symlink('b/real.jpg', base / 'a' / 'alias.jpg')       # a link to a file
  os.mkfifo(base / 'a' / 'pipe.jpg')
  return base


def _listed(base, pattern='**'):
  return {f.rel_path: (f.size, f.problem)
          for f in listing.list_files(str(base), pattern)}


def test_every_entry_once_with_its_problem(tree):
  assert _listed(tree) == {
      'a/alias.jpg': (5, ''),
      'a/b/real.jpg': (5, ''),
      'a/broken.jpg': (0, 'broken symbolic link'),
      'a/out/linked.jpg': (3, ''),
      'a/pipe.jpg': (0, 'not a regular file: a FIFO'),
      'scan.dcm/inner.dcm': (1, ''),
  }


def test_patterns_are_beams_globs(tree):
  assert set(_listed(tree, 'a/*')) == {'a/alias.jpg', 'a/broken.jpg',
                                       'a/pipe.jpg'}
  assert set(_listed(tree, 'a/**/*.jpg')) == {'a/b/real.jpg',
                                              'a/out/linked.jpg'}
  assert not _listed(tree, 'missing/**')


def test_a_folder_that_cannot_be_listed_is_one_entry(tree, monkeypatch):
  real_scandir = os.scandir

  def scandir(path):
    if str(path).endswith('scan.dcm'):
      raise PermissionError(13, 'Permission denied')
    return real_scandir(path)

  monkeypatch.setattr(listing.os, 'scandir', scandir)
  assert _listed(tree)['scan.dcm'] == (
      0, 'cannot list folder: Permission denied')


def test_fixed_prefix():
  assert listing.fixed_prefix('**') == ''
  assert listing.fixed_prefix('train/**') == 'train/'
  assert listing.fixed_prefix('a/b/*.png') == 'a/b/'
  assert listing.fixed_prefix('a/*/c/**') == 'a/'
