"""Tests for image_example_gen.image_folder.layout."""

import pytest

from image_example_gen import rejects
from image_example_gen.image_folder import layout


@pytest.mark.parametrize('rel_path', ['', '/abs/cats/a.jpg'])
def test_paths_must_be_relative(rel_path):
  with pytest.raises(ValueError, match='relative'):
    layout.class_of(rel_path, has_split_folders=False)


@pytest.mark.parametrize('rel_path, has_split_folders, expected', [
    ('cats/a.jpg', False, 'cats'),
    ('cats/2024/june/a.jpg', False, 'cats'),
    ('a.jpg', False, None),
    ('train/cats/a.jpg', True, 'cats'),
    ('val/dogs/sub/a.png', True, 'dogs'),
    ('train/a.jpg', True, None),
    ('a.jpg', True, None),
])
def test_class_of(rel_path, has_split_folders, expected):
  assert layout.class_of(rel_path, has_split_folders) == expected


def test_split_folders_map_val_to_eval():
  assert dict(layout.SPLIT_FOLDERS) == {
      'train': 'train', 'val': 'eval', 'validation': 'eval', 'eval': 'eval',
      'test': 'test'}
  with pytest.raises(TypeError):
    layout.SPLIT_FOLDERS['dev'] = 'eval'


@pytest.mark.parametrize('names, expected', [
    (['train', 'val', 'test'], ['test', 'train', 'val']),
    (['Train', 'Validation', '.ipynb_checkpoints'], ['Train', 'Validation']),
    (['train'], ['train']),
    (['TEST', 'eval'], ['TEST', 'eval']),
    (['cats', 'dogs'], None),
    (['train', 'test', 'cats'], None),
    (['.git'], None),
    ([], None),
])
def test_detect_split_folders(names, expected):
  assert layout.detect_split_folders(iter(names)) == expected


@pytest.mark.parametrize('names', [
    ['train', 'val', 'validation'], ['Train', 'train'], ['eval', 'val']])
def test_detect_split_folders_rejects_two_folders_for_one_split(names):
  with pytest.raises(ValueError, match='both map to split'):
    layout.detect_split_folders(names)


def test_class_vocabulary_sorts_by_code_point():
  vocabulary = layout.class_vocabulary({'dog', 'cat', 'Zebra', 'ant'})
  assert vocabulary == ['Zebra', 'ant', 'cat', 'dog']


@pytest.mark.parametrize('names, message', [
    ([], 'No classes'),
    ('cats', 'string'),
    (['cat', 'dog', 'cat'], 'repeat'),
    (['cat', ''], 'Invalid class name'),
    (['cat', '.hidden'], 'Invalid class name'),
    (['cat', 'a/b'], 'Invalid class name'),
    (['cat', 'two\nlines'], 'Invalid class name'),
    (['cat', 3], 'Invalid class name'),
])
def test_class_vocabulary_rejects_bad_names(names, message):
  with pytest.raises(ValueError, match=message):
    layout.class_vocabulary(names)


@pytest.mark.parametrize('rel_path, pattern, class_name', [
    ('cat.123.jpg', r'^(cat|dog)\.\d+\.jpg$', 'cat'),        # dogs-vs-cats
    ('Abyssinian_12.jpg', r'([A-Za-z_]+)_\d+\.jpg$', 'Abyssinian'),
    ('american_pit_bull_terrier_7.jpg', r'([A-Za-z_]+)_\d+\.jpg$',
     'american_pit_bull_terrier'),                            # Oxford-IIIT Pet
    ('img/48213_1.jpeg', r'_(\d)\.jpeg$', '1'),                  # <id>_<label>
    ('sub/dog.7.jpg', r'(?:^|/)(cat|dog)\.\d+\.jpg$', 'dog'),
])
def test_name_label(rel_path, pattern, class_name):
  assert layout.name_label(rel_path, pattern) == class_name


@pytest.mark.parametrize('rel_path, pattern, detail', [
    ('bird.1.jpg', r'^(cat|dog)\.\d+\.jpg$', 'does not match'),
    ('cat.jpg', r'^(cat|dog)\.\d+\.jpg$', 'does not match'),
    ('x/1.jpg', r'([A-Za-z]*)\d\.jpg$', 'matches an empty class'),
])
def test_names_without_a_label_are_rejected(rel_path, pattern, detail):
  with pytest.raises(rejects.RejectError) as raised:
    layout.name_label(rel_path, pattern)
  assert raised.value.reason == rejects.NO_LABEL_IN_NAME
  assert detail in raised.value.detail
