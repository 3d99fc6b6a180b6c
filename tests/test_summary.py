"""Tests for image_example_gen.summary: mergeable counts in constant memory."""

import pytest

from image_example_gen import summary


def test_sketch_is_exact_below_its_size_and_merges():
  one, two = summary.DistinctSketch(), summary.DistinctSketch()
  for i in range(3000):
    one.add(f'key-{i}'.encode())
  for i in range(2000, 4000):
    two.add(f'key-{i}'.encode())
  one.add(b'key-1')  # Repeats count once.

  assert one.count() == 3000
  one.merge(two)
  assert one.count() == 4000


def test_sketch_estimates_beyond_its_size_in_constant_memory():
  sketch = summary.DistinctSketch(size=1024)
  for i in range(200_000):
    sketch.add(i.to_bytes(4, 'big'))

  assert sketch.count() == pytest.approx(200_000, rel=0.1)
  assert len(sketch._hashes) == 1024  # pylint: disable=protected-access


def test_stats_merge_and_report():
  first, second = summary.IngestStats(), summary.IngestStats()
  first.add_file('train', 10, b'i1', b'p1', [1], 1, '')
  second.add_file('train', 20, b'i2', b'p1', [1, 2], 2, 'missing_delimiter')
  second.add_reject('truncated', ['b/2.jpg'])
  first.add_reject('truncated', ['a/1.jpg'])
  first.add_skip('hidden_file', ['a/.DS_Store'])
  second.add_file('eval', 5, b'i3', b'p2', [0], 1, '', reencoded=True)
  first.tally(['cropped_to_regions/ultrasound_regions'])
  second.tally(['cropped_to_regions/ultrasound_regions',
                'burned_in_rejected/secondary_capture'])

  merged = summary.merge_all([first, second])
  report = merged.to_json(['train', 'eval'])

  assert report['input_files'] == 5  # Skipped files are not inputs.
  assert report['skipped_files'] == 1
  assert report['skips'] == {'hidden_file': 1}
  assert report['first_paths'] == {'truncated': ['a/1.jpg', 'b/2.jpg'],
                                   'hidden_file': ['a/.DS_Store']}
  assert report['reencoded_files'] == 1
  assert report['converted_files'] == 3
  assert report['examples'] == 4
  assert report['splits']['train'] == {
      'examples': 3, 'files': 2, 'images': 2, 'series': 0, 'patients': 1,
      'labels': {'1': 2, '2': 1}}
  assert report['splits']['eval']['examples'] == 1
  assert report['rejects'] == {'decode/truncated': 2}
  assert report['repaired_files'] == {'count': 1,
                                      'reasons': {'missing_delimiter': 1}}
  assert report['tallies'] == {'burned_in_rejected/secondary_capture': 1,
                               'cropped_to_regions/ultrasound_regions': 2}


def test_a_series_counts_its_files_and_skips_are_not_rejects():
  stats = summary.IngestStats()
  stats.add_file('train', 300, b'', b'p1', [1], 1, '', files=3,
                 series_key=b's1')
  stats.add_file('train', 100, b'', b'p1', [0], 1, '', files=2,
                 series_key=b's2')
  stats.add_reject('irregular_spacing', [f'a/{i}.dcm' for i in range(4)])
  stats.add_skip('series_filtered', [f'b/{i}.dcm' for i in range(5)])

  report = stats.to_json(['train'])

  assert report['input_files'] == 3 + 2 + 4  # Skipped files are not inputs.
  assert report['converted_files'] == 5
  assert report['rejected_files'] == 4
  assert report['skipped_files'] == 5
  assert report['series'] == 2
  assert report['splits']['train']['series'] == 2
  assert report['splits']['train']['images'] == 0  # Volumes have no image/key.
  assert report['rejects'] == {'validate/irregular_spacing': 4}
  assert report['skips'] == {'series_filtered': 5}
  assert report['first_paths']['irregular_spacing'] == [
      'a/0.dcm', 'a/1.dcm', 'a/2.dcm']


def test_first_paths_keep_the_first_in_sort_order_whatever_the_merge():
  parts = [summary.IngestStats() for _ in range(3)]
  paths = [f'x/{i:02d}.jpg' for i in range(30)]
  for i, path in enumerate(reversed(paths)):
    parts[i % 3].add_reject('truncated', [path])
  merged = summary.merge_all(parts).to_json([])
  assert merged['first_paths']['truncated'] == paths[:3]
  assert merged['rejected_files'] == 30


def test_split_warnings_name_one_class_and_missing_classes():
  report = {'splits': {
      'train': {'examples': 9, 'labels': {'0': 3, '1': 3, '2': 3}},
      'eval': {'examples': 2, 'labels': {'0': 2}},
      'test': {'examples': 2, 'labels': {'0': 1, '1': 1}},
      'extra': {'examples': 0, 'labels': {}}}}
  assert summary.split_warnings(report, ['cat', 'dog', 'owl']) == [
      'split eval holds one class only (cat)',
      'split test has no owl',
      'split extra is empty']
  assert summary.split_warnings(
      {'splits': {'train': {'examples': 4, 'labels': {'0': 4}}}}) == []
