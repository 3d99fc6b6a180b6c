"""Tests for image_example_gen.selection: which matched files are junk."""

import pytest

from image_example_gen import rejects
from image_example_gen import selection


@pytest.mark.parametrize('rel_path, reason', [
    ('cats/a.jpg', None),
    ('train/cats/sub/a.b.jpg', None),
    ('cats/._a.jpg', rejects.HIDDEN_FILE),
    ('.DS_Store', rejects.HIDDEN_FILE),
    ('cats/.DS_Store', rejects.HIDDEN_FILE),
    ('.ipynb_checkpoints/cats/a-checkpoint.jpg', rejects.HIDDEN_FILE),
    ('cats/.cache/a.jpg', rejects.HIDDEN_FILE),
    ('cats/Thumbs.db', rejects.SYSTEM_FILE),
    ('cats/THUMBS.DB', rejects.SYSTEM_FILE),
    ('desktop.ini', rejects.SYSTEM_FILE),
    ('__MACOSX/cats/a.jpg', rejects.SYSTEM_FILE),
    ('$RECYCLE.BIN/a.jpg', rejects.SYSTEM_FILE),
    ('cats/Icon\r', rejects.SYSTEM_FILE),
    ('README.md', None),  # Decided by its bytes, in the worker.
])
def test_hidden_and_system_files_by_path(rel_path, reason):
  assert selection.Selection().path_skip(rel_path) == reason


def test_ignore_patterns_match_names_or_whole_paths():
  rules = selection.Selection(ignore_patterns=('*.xml', 'masks',
                                               'train/extra/*'))
  assert rules.path_skip('cats/a.xml') == rejects.IGNORE_PATTERN
  assert rules.path_skip('cats/masks/a.png') == rejects.IGNORE_PATTERN
  assert rules.path_skip('masks') == rejects.IGNORE_PATTERN
  assert rules.path_skip('train/extra/deep/a.jpg') == rejects.IGNORE_PATTERN
  assert rules.path_skip('val/extra/a.jpg') is None
  assert rules.path_skip('cats/masks.jpg') is None
  # Hidden files are hidden whatever the patterns say.
  assert rules.path_skip('cats/.a.xml') == rejects.HIDDEN_FILE


def test_allowed_extensions_are_case_insensitive_with_or_without_dot():
  rules = selection.Selection(allowed_extensions=('JPG', '.png'))
  assert rules.allowed_extensions == ('.jpg', '.png')
  assert rules.path_skip('cats/a.JPG') is None
  assert rules.path_skip('cats/a.png') is None
  assert rules.path_skip('cats/a.jpeg') == rejects.EXTENSION_NOT_ALLOWED
  assert rules.path_skip('cats/noext') == rejects.EXTENSION_NOT_ALLOWED


@pytest.mark.parametrize('kwargs', [
    {'allowed_extensions': 'jpg'}, {'allowed_extensions': ['.']},
    {'allowed_extensions': ['a/b']}, {'ignore_patterns': '*.txt'},
    {'ignore_patterns': ['']}, {'ignore_patterns': ['/']},
])
def test_bad_rules_are_refused(kwargs):
  with pytest.raises(ValueError):
    selection.Selection(**kwargs)


@pytest.mark.parametrize('rel_path, junk', [
    ('README.md', True), ('cats/notes.TXT', True), ('labels.csv', True),
    ('meta/a.json', True), ('LICENSE', True), ('cats/README', True),
    ('cats/a.jpg', False), ('cats/a', False), ('scan', False),
    ('cats/readme.jpg', False),
])
def test_names_that_say_not_an_image(rel_path, junk):
  assert selection.may_be_junk(rel_path) is junk
