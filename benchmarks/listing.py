"""Listing 10^5 objects on Cloud Storage: the components' lister vs Beam's.

Starts the tests' local Cloud Storage JSON API server (tests/gcs_server.py:
gcp-storage-emulator, answering listings in pages of 1000 names as Cloud
Storage does) holding `--objects` objects in folders of 1000, and lists them
through Beam's gs:// filesystem and google-cloud-storage, as a worker does:

* ours: `listing.list_files(input_base, '**')`, the executor's lister (pages
  requested one at a time, with only the name, size and update time of each
  object);
* Beam's: `FileSystems.match([input_base + '/**'])`, a plain match of the
  same prefix.

Speed: each is timed `--repeats` times, alternating, in this process; the
best of each gives objects/s (wall, and per CPU-second of this process: the
server runs in another) and the ratio ours/Beam's. Memory: the peak of the
Python allocations (tracemalloc) while listing every object, and while
listing one folder of 1000: ours must not grow with the number of objects
(one page of names held beyond what it yields), Beam's does.

Usage (from the repository root; gcp-storage-emulator must be installed):

    .venv/bin/python benchmarks/listing.py [--objects 100000] [--repeats 3]
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time
import tracemalloc
from typing import Callable, List, Tuple

_REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / 'tests'))
import gcs_server  # pylint: disable=g-import-not-at-top,wrong-import-position

_BUCKET = 'benchmark'
_PREFIX = 'images/'
_MIB = 2**20


def _ours(input_base: str) -> int:
  from image_example_gen import listing  # pylint: disable=g-import-not-at-top
  return sum(1 for _ in listing.list_files(input_base, '**'))


def _beams(input_base: str) -> int:
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  return len(FileSystems.match([input_base + '/**'])[0].metadata_list)


def _timed(lister: Callable[[str], int],
           input_base: str) -> Tuple[int, float, float]:
  wall, cpu = time.perf_counter(), time.process_time()
  n = lister(input_base)
  return n, time.perf_counter() - wall, time.process_time() - cpu


def _peak_mib(lister: Callable[[str], int], input_base: str) -> float:
  tracemalloc.start()
  try:
    lister(input_base)
    return tracemalloc.get_traced_memory()[1] / _MIB
  finally:
    tracemalloc.stop()


def main(argv: List[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--objects', type=int, default=100_000)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args(argv)
  print(f'Creating {args.objects} objects on the test server...', flush=True)
  start = time.perf_counter()
  server = gcs_server.start(_BUCKET, args.objects, _PREFIX, timeout_s=600)
  try:
    with tempfile.TemporaryDirectory() as tmp:
      os.environ.update(gcs_server.client_environment(
          server.endpoint, pathlib.Path(tmp) / 'credentials.json'))
      print(f'  ready in {time.perf_counter() - start:.1f} s; load average '
            f'{os.getloadavg()[0]:.2f}')
      _report(f'gs://{_BUCKET}/{_PREFIX.rstrip("/")}', args.objects,
              args.repeats, server)
  finally:
    server.stop()


def _report(input_base: str, objects: int, repeats: int, server) -> None:
  listers = {'ours': _ours, "Beam's match": _beams}
  _beams(input_base + '/0000')  # Credentials, clients, imports.
  _ours(input_base + '/0000')
  best = {name: (0, float('inf'), float('inf')) for name in listers}
  for _ in range(repeats):
    for name, lister in listers.items():
      before = server.stats()['list_requests']
      n, wall, cpu = _timed(lister, input_base)
      requests = server.stats()['list_requests'] - before
      if n != objects:
        raise RuntimeError(f'{name} listed {n} of {objects} objects.')
      print(f'  {name:<13} {n} objects in {wall:.2f} s ({cpu:.2f} CPU-s), '
            f'{requests} listing requests')
      best[name] = min(best[name], (n, wall, cpu), key=lambda r: r[1])
  print(f'\nBest of {repeats}, {objects} objects:')
  print(f'{"lister":<13} {"objects/s":>10} {"obj/CPU-s":>10} '
        f'{"peak MiB (all)":>15} {"peak MiB (1000)":>16}')
  for name, lister in listers.items():
    _, wall, cpu = best[name]
    print(f'{name:<13} {objects / wall:>10.0f} {objects / cpu:>10.0f} '
          f'{_peak_mib(lister, input_base):>15.1f} '
          f'{_peak_mib(lister, input_base + "/0000"):>16.1f}')
  ratio = best["Beam's match"][1] / best['ours'][1]
  print(f'\nours / Beam\'s match, objects/s: {ratio:.2f}')


if __name__ == '__main__':
  main(sys.argv[1:])
