"""What a Beam worker pays in imports before it converts its first file.

Each row imports, in a fresh interpreter, what a worker process needs up to
that point (cumulatively: Beam's worker, then the modules the converters'
pickled DoFns pull in) and prints the CPU seconds of the imports, their
median over `--repeats` interpreters, and whether TensorFlow and TFX are
loaded by then.

Usage (from the repository root):

    .venv/bin/python benchmarks/worker_startup.py [--repeats 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import List, Sequence, Tuple

_PROBE = '''
import json, sys, time
start = time.process_time()
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps([time.process_time() - start,
                  'tensorflow' in sys.modules, 'tfx' in sys.modules]))
'''

# Cumulative import lists, in the order a worker meets them.
STEPS: Sequence[Tuple[str, List[str]]] = (
    ('Beam SDK worker', ['apache_beam.runners.worker.sdk_worker_main']),
    ('+ image folder converter',
     ['apache_beam.runners.worker.sdk_worker_main',
      'image_example_gen.image_folder.converter']),
    ('+ DICOM converter',
     ['apache_beam.runners.worker.sdk_worker_main',
      'image_example_gen.image_folder.converter',
      'image_example_gen.dicom.converter']),
    ('+ Split writing (records)',
     ['apache_beam.runners.worker.sdk_worker_main',
      'image_example_gen.image_folder.converter',
      'image_example_gen.dicom.converter', 'image_example_gen.records']),
    ('(reference) TensorFlow alone', ['tensorflow']),
    ('(reference) TFX alone', ['tfx.v1']),
)


def probe(modules: Sequence[str]) -> Tuple[float, bool, bool]:
  """CPU seconds to import `modules` in a fresh interpreter, TF?, TFX?"""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_USE_LEGACY_KERAS='1')
  out = subprocess.run([sys.executable, '-c', _PROBE, *modules], env=env,
                       capture_output=True, text=True, check=True).stdout
  seconds, tf_loaded, tfx_loaded = json.loads(out.strip().splitlines()[-1])
  return seconds, tf_loaded, tfx_loaded


def main(argv: List[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args(argv)
  print(f'Worker start-up imports, median of {args.repeats} interpreters; '
        f'load average {os.getloadavg()[0]:.2f}')
  print(f'{"imports":<34} {"CPU-s":>6}  TensorFlow  TFX')
  for name, modules in STEPS:
    results = [probe(modules) for _ in range(args.repeats)]
    seconds = statistics.median(r[0] for r in results)
    _, tf_loaded, tfx_loaded = results[0]
    print(f'{name:<34} {seconds:>6.2f}  {"yes" if tf_loaded else "no":<10}  '
          f'{"yes" if tfx_loaded else "no"}')


if __name__ == '__main__':
  main(sys.argv[1:])
