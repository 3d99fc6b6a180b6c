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
  second.add_reject('truncated')
  first.tally(['cropped_to_regions/ultrasound_regions'])
  second.tally(['cropped_to_regions/ultrasound_regions',
                'burned_in_rejected/secondary_capture'])

  merged = summary.merge_all([first, second])
  report = merged.to_json(['train', 'eval'])

  assert report['input_files'] == 3
  assert report['converted_files'] == 2
  assert report['examples'] == 3
  assert report['splits']['train'] == {
      'examples': 3, 'files': 2, 'images': 2, 'series': 0, 'patients': 1,
      'labels': {'1': 2, '2': 1}}
  assert report['splits']['eval']['examples'] == 0
  assert report['rejects'] == {'decode/truncated': 1}
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
  stats.add_reject('irregular_spacing', files=4)
  stats.add_reject('series_filtered', files=5)

  report = stats.to_json(['train'])

  assert report['input_files'] == 3 + 2 + 4 + 5
  assert report['converted_files'] == 5
  assert report['rejected_files'] == 4
  assert report['skipped_files'] == 5
  assert report['series'] == 2
  assert report['splits']['train']['series'] == 2
  assert report['splits']['train']['images'] == 0  # Volumes have no image/key.
  assert report['rejects'] == {'validate/irregular_spacing': 4}
  assert report['skipped'] == {'skip/series_filtered': 5}
