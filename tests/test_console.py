"""Tests for image_example_gen.console: what the user sees on the console."""

import subprocess
import sys
import textwrap
import time

from image_example_gen import console

_SUMMARY = {
    'input_files': 62, 'converted_files': 60, 'rejected_files': 2,
    'skipped_files': 3, 'examples': 60, 'bytes_read': 1000,
    'splits': {'eval': {'examples': 20, 'labels': {'0': 10, '1': 10}},
               'train': {'examples': 40, 'labels': {'0': 20, '1': 19,
                                                    '2': 1}}},
    'rejects': {'decode/truncated': 1, 'read/empty_file': 1},
    'skips': {'hidden_file': 2, 'non_image_file': 1},
    'first_paths': {'truncated': ['dog/7.jpg'], 'empty_file': ['cat/0.jpg'],
                    'hidden_file': ['.DS_Store', 'cat/._1.jpg'],
                    'non_image_file': ['README.md']},
    'duplicates': {'duplicate_images': 2, 'duplicate_groups': 1,
                   'duplicate_images_across_splits': 0},
    'reencoded_files': 4,
    'repaired_files': {'count': 0, 'reasons': {}},
    'metadata': {'metadata_rows': 64, 'metadata_rows_matched': 60,
                 'metadata_rows_without_file': 4,
                 'metadata_rows_without_file_first_keys': ['x.jpg']},
    'deidentification': {'attributes': ['Modality', 'Rows'],
                         'salt': 'secret, from the environment',
                         'burned_in_annotation': 'crop',
                         'cropped_to_regions': 4, 'burned_in_kept': 0,
                         'burned_in_rejected': 3},
    'cropped_to_regions': 4, 'burned_in_kept': 0,
    'another_count': {'a': 3},  # Counts the console knows nothing of.
}


def test_summary_lines_say_what_happened_in_a_few_lines():
  lines = console.summary_lines('MyGen', '/data/pets', '/out/examples/7',
                                _SUMMARY, ['cat', 'dog', 'owl'])
  text = '\n'.join(lines)
  assert lines[0] == ('MyGen: found 65 files in /data/pets belonging to 3 '
                      'classes: 60 converted into 60 Examples, 2 rejected, 3 '
                      'skipped.')
  assert '  classes: cat, dog, owl' in lines
  assert '  examples: train 40, eval 20' in lines  # train first.
  assert '  warning: split eval has no owl' in lines
  assert 'rejected: empty_file 1 (cat/0.jpg), truncated 1 (dog/7.jpg)' in text
  assert ('skipped (not inputs): hidden_file 2 (.DS_Store, cat/._1.jpg), '
          'non_image_file 1 (README.md)') in text
  assert '2 files share their bytes' in text
  assert 're-encoded as PNG: 4 files' in text
  assert 'table: 64 rows, 60 matched a file, 4 without a file (x.jpg)' in text
  assert ('de-identification: 2 allow-listed attributes, keyed hashes (secret '
          'salt); burned-in pixels (crop): 4 cropped_to_regions, 0 '
          'burned_in_kept, 3 burned_in_rejected') in lines[-3]
  assert '  another_count: a 3' in lines
  assert lines[-1].startswith('  output: /out/examples/7 (')
  assert len(lines) <= 12


def test_classes_are_the_labels_without_a_vocabulary():
  lines = console.summary_lines('DicomExampleGen', '/d', '/o', _SUMMARY)
  assert '  classes: 0, 1, 2' in lines


def test_many_names_are_cut():
  names = [f'class{i:03d}' for i in range(30)]
  assert console._names(names).endswith('class009, ... (20 more)')  # pylint: disable=protected-access


def test_progress_line_and_durations():
  assert console.progress_line('Gen', 250, 1000, 10.0) == (
      'Gen: 250 of 1000 files (25%), 25.0 files/s, about 30s left')
  assert 'still listing' in console.progress_line('Gen', 5, None, 1.0)
  assert console.duration(3725) == '1h02m'
  assert console.duration(185) == '3m05s'


def test_progress_prints_from_counts_at_intervals(capsys):
  counts = iter([(10, 100), (60, 100), (100, 100)] + [(100, 100)] * 100)
  with console.Progress('Gen', lambda: next(counts), first_s=0.05,
                        interval_s=0.05):
    time.sleep(0.4)
  err = capsys.readouterr().err
  assert 'Gen: 10 of 100 files (10%)' in err
  assert 'Gen: 60 of 100 files (60%)' in err


def test_short_runs_print_no_progress(capsys):
  with console.Progress('Gen', lambda: (1, 1), first_s=5.0):
    pass
  assert not capsys.readouterr().err


def test_logger_shows_without_setup_and_once_with_absl_and_root_handlers():
  # A fresh interpreter: what a user's script gets.
  script = textwrap.dedent('''
      import logging
      from absl import logging as absl_logging
      from image_example_gen import console
      absl_logging.set_verbosity(absl_logging.INFO)
      absl_logging.use_absl_handler()
      logging.basicConfig(level=logging.INFO)
      console.logger().info('the summary line')
      logging.getLogger('absl').warning(
          'ArtifactQuery.property_predicate is not supported.')
      import warnings
      warnings.warn('You are using a non-supported Python version (3.10).',
                    FutureWarning)
  ''')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, check=True)
  assert result.stderr.count('the summary line') == 1, result.stderr
  assert 'property_predicate' not in result.stderr
  assert 'non-supported Python version' not in result.stderr


def test_filtered_stderr_drops_known_lines_of_child_processes_too():
  script = textwrap.dedent('''
      import os, subprocess, sys
      from image_example_gen import console
      with console.filtered_stderr():
        os.write(2, b'2026 E cuda_dnn.cc] Unable to register cuDNN factory: x\\n')
        os.write(2, b'a real error\\n')
        subprocess.run([sys.executable, '-c',
                        'import os; os.write(2, b"A marker ID was expected\\\\n");'
                        'os.write(2, b"x.py:246: FutureWarning: You are using '
                        'a non-supported Python version (3.10.13).\\\\n");'
                        'os.write(2, b"  warnings.warn(message, '
                        'FutureWarning)\\\\n");'
                        'os.write(2, b"child error\\\\n")'], check=True)
      os.write(2, b'after\\n')
  ''')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, check=True)
  assert result.stderr.splitlines() == ['a real error', 'child error',
                                        'after'], result.stderr
