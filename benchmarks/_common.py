"""Helpers shared by the ingestion benchmarks.

Each benchmark times the component's executor (`Do` only: interpreter
start-up, TFX import and component construction excluded) in a fresh child
process per Beam configuration, so that the peak memory of one configuration
is not polluted by another. The child samples the resident set size (RSS) of
its whole process tree, Beam's multi-processing workers included, and prints
one JSON line that the parent reads.

Every timing has a wall time and the CPU time of the process tree: on a
shared machine the wall time depends on the load, images per CPU-second
much less. A run over a few images measures the fixed cost of a run (Beam
pipeline construction, worker start-up: each multi-processing worker imports
TensorFlow), so that the marginal rate of the large runs can be given too.
"""

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import psutil

SALT = 'benchmark-salt-not-secret'

# Beam DirectRunner configurations, by the name the tables use.
BEAM_MODES = {
    'in_memory': ['--direct_running_mode=in_memory', '--direct_num_workers=1'],
    'mp1': ['--direct_running_mode=multi_processing',
            '--direct_num_workers=1'],
    'mp2': ['--direct_running_mode=multi_processing',
            '--direct_num_workers=2'],
}

_RESULT_PREFIX = 'BENCHMARK_RESULT '
_SAMPLE_INTERVAL_S = 0.1
_MIB = 2**20


def quiet_environment() -> None:
  """Sets a salt and silences TensorFlow's and Beam's logs.

  Called when this module is imported, which the benchmarks do before
  anything imports TensorFlow.
  """
  os.environ['IMAGE_EXAMPLE_GEN_SALT'] = SALT
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  os.environ.setdefault('PYTHONWARNINGS', 'ignore')
  warnings.simplefilter('ignore')
  logging.getLogger().setLevel(logging.WARNING)


quiet_environment()


def load_average() -> str:
  """The 1/5/15-minute load averages and the number of cores, as text."""
  one, five, fifteen = os.getloadavg()
  return (f'load average {one:.2f} / {five:.2f} / {fifteen:.2f} '
          f'(1/5/15 min) on {os.cpu_count()} cores')


def _descendants(process: psutil.Process) -> List[psutil.Process]:
  try:
    return process.children(recursive=True)
  except psutil.NoSuchProcess:
    return []


def tree_rss(process: psutil.Process) -> int:
  """Bytes resident in `process` and all its descendants (a sum of RSS).

  Pages shared between processes (libraries loaded by each Beam worker) are
  counted once per process, so this is an upper bound on the memory used.
  """
  total = 0
  for proc in [process] + _descendants(process):
    try:
      total += proc.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      pass
  return total


def tree_cpu_seconds(process: psutil.Process) -> float:
  """User + system CPU seconds of this process (all its threads), its reaped
  children and its live descendants."""
  times = process.cpu_times()
  total = time.process_time() + times.children_user + times.children_system
  for proc in _descendants(process):
    try:
      times = proc.cpu_times()
      total += times.user + times.system
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      pass
  return total


class PeakTreeRss:
  """Samples the RSS of this process and its descendants in a thread.

  `peak` is the largest sum over the tree (`tree_rss`); `own_peak` the
  largest RSS of this process alone, `worker_peak` the largest RSS of any one
  descendant (a Beam worker).
  """

  def __init__(self, interval_s: float = _SAMPLE_INTERVAL_S):
    self._interval_s = interval_s
    self._process = psutil.Process()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self.peak = 0
    self.own_peak = 0
    self.worker_peak = 0

  def _sample(self) -> None:
    total = 0
    for proc in [self._process] + _descendants(self._process):
      try:
        rss = proc.memory_info().rss
      except (psutil.NoSuchProcess, psutil.AccessDenied):
        continue
      total += rss
      if proc.pid == self._process.pid:
        self.own_peak = max(self.own_peak, rss)
      else:
        self.worker_peak = max(self.worker_peak, rss)
    self.peak = max(self.peak, total)

  def _run(self) -> None:
    while not self._stop.is_set():
      self._sample()
      self._stop.wait(self._interval_s)

  def __enter__(self) -> 'PeakTreeRss':
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    self._thread.join()
    self._sample()


@dataclasses.dataclass(frozen=True)
class Timing:
  """Wall and CPU seconds of one timed piece of work.

  Attributes:
    wall: elapsed seconds.
    cpu: user + system CPU seconds of the process tree (all cores).
    own_cpu: those of the timing process alone (the launcher, which runs
      Beam's runner; the rest is its workers').
  """
  wall: float
  cpu: float
  own_cpu: float = 0.0


def timed(fn: Callable[[], Any]) -> Timing:
  """Runs `fn` (in this process); its wall time and the CPU time of this
  process tree."""
  process = psutil.Process()
  cpu = tree_cpu_seconds(process)
  own = sum(process.cpu_times()[:2])
  start = time.perf_counter()
  fn()
  wall = time.perf_counter() - start
  return Timing(wall, tree_cpu_seconds(process) - cpu,
                sum(process.cpu_times()[:2]) - own)


def run_executor(component: Any, out_dir: pathlib.Path,
                 beam_pipeline_args: Sequence[str]) -> Timing:
  """Runs the component's executor in-process, as TFX's executor tests do.

  Only `Do` is timed: the executor's construction (where TFX builds its
  ephemeral Beam dependency package) is not.

  Raises:
    RuntimeError: a file was rejected, or nothing was written.
  """
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  out_dir.mkdir(parents=True, exist_ok=True)
  examples = standard_artifacts.Examples()
  examples.uri = str(out_dir)
  executor = component.EXECUTOR_SPEC.executor_class(
      base_beam_executor.BaseBeamExecutor.Context(
          beam_pipeline_args=list(beam_pipeline_args)))
  exec_properties = dict(component.exec_properties)
  timing = timed(lambda: executor.Do({}, {'examples': [examples]},
                                     exec_properties))
  if examples.get_int_custom_property('num_rejected_files'):
    raise RuntimeError(f'Files were rejected: the benchmark data should all '
                       f'convert (see {out_dir}/rejects).')
  if not examples.get_int_custom_property('num_examples'):
    raise RuntimeError(f'No Examples written into {out_dir}.')
  return timing


@dataclasses.dataclass(frozen=True)
class ComponentRun:
  """What a child process measured for one Beam configuration.

  Attributes:
    mode: a key of BEAM_MODES.
    n: images of the timed runs.
    runs: the timed runs over the n images.
    small_n: images of the run that measures the fixed cost (0: none).
    small: that run, None without it.
    baseline_rss: tree RSS after the imports, before the first `Do` (bytes).
    peak_rss: the largest tree RSS sampled during all runs (bytes).
    own_peak_rss: the largest RSS of the launching process alone (bytes).
    worker_peak_rss: the largest RSS of any one Beam worker (0 in_memory).
    shards: per split, the number of Split files and their sizes (bytes) of
      the last run.
  """
  mode: str
  n: int
  runs: List[Timing]
  small_n: int
  small: Optional[Timing]
  baseline_rss: int
  peak_rss: int
  own_peak_rss: int = 0
  worker_peak_rss: int = 0
  shards: Optional[Dict[str, List[int]]] = None

  @classmethod
  def from_dict(cls, record: Dict[str, Any]) -> 'ComponentRun':
    record = dict(record)
    record['runs'] = [Timing(**t) for t in record['runs']]
    record['small'] = record['small'] and Timing(**record['small'])
    return cls(**record)

  def median(self) -> Timing:
    return median_timing(self.runs)

  def rate(self) -> float:
    """End-to-end images per second (median run)."""
    return self.n / self.median().wall

  def marginal(self) -> Optional[Timing]:
    """Seconds per image once the fixed cost (the small run) is taken off.

    None without a small run, or when noise made it no cheaper than the
    large runs (N too small).
    """
    median = self.median()
    if (self.small is None or median.wall <= self.small.wall or
        median.cpu <= self.small.cpu):
      return None
    extra = self.n - self.small_n
    return Timing((median.wall - self.small.wall) / extra,
                  (median.cpu - self.small.cpu) / extra,
                  (median.own_cpu - self.small.own_cpu) / extra)


def shard_sizes(examples_uri: pathlib.Path) -> Dict[str, List[int]]:
  """Per split (`Split-<name>`), the sizes of its TFRecord files."""
  return {
      split.name[len('Split-'):]: sorted(
          f.stat().st_size for f in split.iterdir() if f.is_file())
      for split in sorted(examples_uri.glob('Split-*'))
  }


def median_timing(timings: Sequence[Timing]) -> Timing:
  """The timing of median wall time (an upper median for even counts)."""
  ordered = sorted(timings, key=lambda t: t.wall)
  return ordered[len(ordered) // 2]


def child_main(spec: Dict[str, Any],
               make_component: Callable[[Dict[str, Any], str], Any]) -> None:
  """The child's side: times the component, prints one result line.

  Runs `spec['repeats']` times over spec['input_base'] (spec['n'] images)
  and, after the first of them, once over spec['small_input_base'] if set
  (spec['small_n'] images), to measure the fixed cost of a run.

  Args:
    spec: those keys, 'mode' (a BEAM_MODES key), 'out_dir' (a scratch folder)
      and what `make_component` needs.
    make_component: builds the component from `spec` and an input base
      (imports happen here, before anything is timed).
  """
  beam_args = BEAM_MODES[spec['mode']]
  out_dir = pathlib.Path(spec['out_dir'])
  component = make_component(spec, spec['input_base'])
  small_base = spec.get('small_input_base')
  small_component = small_base and make_component(spec, small_base)
  baseline = tree_rss(psutil.Process())
  runs, small, shards = [], None, None
  with PeakTreeRss() as sampler:
    for repeat in range(spec['repeats']):
      runs.append(run_executor(component, out_dir / f'run{repeat}', beam_args))
      shards = shard_sizes(out_dir / f'run{repeat}')
      shutil.rmtree(out_dir / f'run{repeat}')
      if small_component and small is None:
        small = run_executor(small_component, out_dir / 'small', beam_args)
        shutil.rmtree(out_dir / 'small')
  result = ComponentRun(spec['mode'], spec['n'], runs,
                        spec.get('small_n', 0) if small else 0, small,
                        baseline, sampler.peak, sampler.own_peak,
                        sampler.worker_peak, shards)
  print(_RESULT_PREFIX + json.dumps(dataclasses.asdict(result)), flush=True)


def run_child(script: str, spec: Dict[str, Any]) -> ComponentRun:
  """Runs `script --child SPEC` in a fresh interpreter; returns its result."""
  completed = subprocess.run(
      [sys.executable, script, '--child', json.dumps(spec)],
      capture_output=True, text=True, check=False)
  for line in completed.stdout.splitlines():
    if line.startswith(_RESULT_PREFIX):
      return ComponentRun.from_dict(json.loads(line[len(_RESULT_PREFIX):]))
  raise RuntimeError(f'The benchmark child for {spec["mode"]} failed '
                     f'(exit {completed.returncode}):\n'
                     f'{completed.stderr[-4000:]}')


def component_runs(script: str, modes: Sequence[str], spec: Dict[str, Any],
                   workdir: pathlib.Path) -> Dict[str, ComponentRun]:
  """One `run_child` per Beam mode, each with its own scratch folder."""
  return {
      mode: run_child(script, dict(spec, mode=mode,
                                   out_dir=str(workdir / f'out_{mode}')))
      for mode in modes
  }


def print_scaled(scaled: Dict[str, ComponentRun], n: int) -> None:
  """Peak memory and rates of the runs at 10N."""
  for run in scaled.values():
    print(memory_row(run))
  for mode, run in scaled.items():
    print(rate_row(f'component at 10N, {mode}', n, run.runs))


def mib(num_bytes: float) -> str:
  return f'{num_bytes / _MIB:,.0f} MiB'


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
  met = value >= target if higher_is_better else value <= target
  return 'MET' if met else 'MISSED'


RATE_HEADER = (f'{"measurement":<40} {"img/s":>7} {"img/CPU-s":>9} '
               f'{"median s":>8} {"runs s":>17}')


def rate_row(name: str, n: int, timings: Sequence[Timing]) -> str:
  """End-to-end images per wall second and per CPU second, median run."""
  median = median_timing(timings)
  runs = ' '.join(f'{t.wall:.1f}' for t in timings)
  return (f'{name:<40} {n / median.wall:>7.1f} {n / median.cpu:>9.1f} '
          f'{median.wall:>8.2f} {runs:>17}')


MARGINAL_HEADER = (f'{"Beam mode":<10} {"fixed s":>8} {"fixed CPU-s":>11} '
                   f'{"marginal img/s":>14} {"marginal img/CPU-s":>18} '
                   f'{"CPU ms/img: launcher":>21} {"workers":>8}')


def marginal_row(run: ComponentRun) -> str:
  """The fixed cost of a run, and images/s once it is taken off."""
  marginal = run.marginal()
  rates = (f'{1 / marginal.wall:>14.1f} {1 / marginal.cpu:>18.1f} '
           f'{marginal.own_cpu * 1000:>21.3f} '
           f'{(marginal.cpu - marginal.own_cpu) * 1000:>8.3f}'
           if marginal else f'{"-":>14} {"-":>18} {"-":>21} {"-":>8}')
  return (f'{run.mode:<10} {run.small.wall:>8.1f} {run.small.cpu:>11.1f} '
          f'{rates}')


def memory_row(run: ComponentRun) -> str:
  return (f'{run.mode:<10} N={run.n:<6} peak {mib(run.peak_rss):>10}, '
          f'{mib(run.peak_rss - run.baseline_rss):>10} over the '
          f'{mib(run.baseline_rss)} after imports')


def memory_growth(small: ComponentRun, large: ComponentRun) -> float:
  """Growth of the peak over the post-import baseline, large N vs small N."""
  return ((large.peak_rss - large.baseline_rss) /
          max(1, small.peak_rss - small.baseline_rss))


TARGET_HEADER = (f'{"target":<36} {"goal":>7} {"end to end":>13} '
                 f'{"marginal":>13} {"marginal CPU":>13}')


def target_row(name: str, goal: float, *ratios: Optional[float],
               higher_is_better: bool = True) -> str:
  """A row of ratios (None: not applicable), each with MET or MISSED."""
  cells = [f'{"-":>13}' if r is None else
           f'{r:>6.2f} {verdict(r, goal, higher_is_better):>6}' for r in ratios]
  sign = '>=' if higher_is_better else '<='
  return f'{name:<36} {sign}{goal:>5.2f} ' + ' '.join(cells)


def print_targets(floor: Timing, n: int, runs: Dict[str, ComponentRun],
                  scaled: Dict[str, ComponentRun], per_core_target: float,
                  speedup_target: float, flat_target: float) -> None:
  """The issue's targets: per-core ratio, 2-worker speed-up, flat memory.

  Columns: end to end (median runs' images/s); marginal (images/s once the
  fixed cost is taken off); marginal CPU (images per CPU-second, the per-core
  cost whatever the load).
  """
  single, mp1, mp2 = runs['in_memory'], runs['mp1'], runs['mp2']
  single_marginal = single.marginal()
  mp_marginals = (mp1.marginal(), mp2.marginal())
  print(TARGET_HEADER)
  print(target_row(
      'per core: in_memory / floor', per_core_target,
      single.rate() * floor.wall / n,
      single_marginal and floor.wall / n / single_marginal.wall,
      single_marginal and floor.cpu / n / single_marginal.cpu))
  print(target_row(
      '2 workers / 1 worker (mp2 / mp1)', speedup_target,
      mp2.rate() / mp1.rate(),
      all(mp_marginals) and mp_marginals[0].wall / mp_marginals[1].wall or
      None, None))
  for mode, run in scaled.items():
    print(target_row(f'peak memory 10N / N, {mode}', flat_target,
                     memory_growth(runs[mode], run), None, None,
                     higher_is_better=False))



def print_two_workers(floor: Timing, n: int, mp2: ComponentRun,
                      target: float) -> None:
  """2 workers against the single-process floor, and where the CPU goes.

  The row: mp2's images/s over the floor's, end to end and at the margin.
  Then the CPU per image at the margin, the launcher's (Beam's runner) apart
  from its workers', against the floor's: below 1, two cores can give more
  than two loops' worth only if the runner's share is that small.
  """
  marginal = mp2.marginal()
  print(target_row('2 workers: mp2 / floor', target,
                   mp2.rate() * floor.wall / n,
                   marginal and floor.wall / n / marginal.wall, None))
  if marginal:
    floor_cpu = floor.cpu / n
    print(f'CPU per image at the margin, 2 workers: launcher (Beam\'s runner) '
          f'{marginal.own_cpu * 1000:.3f} ms + workers '
          f'{(marginal.cpu - marginal.own_cpu) * 1000:.3f} ms = '
          f'{marginal.cpu * 1000:.3f} ms, against the floor\'s '
          f'{floor_cpu * 1000:.3f} ms (ratio {marginal.cpu / floor_cpu:.2f})')

def argument_parser(description: str, unit: str, n: int, small_n: int,
                    repeats: int, scale_modes: str) -> argparse.ArgumentParser:
  """The options both ingestion benchmarks take, with their defaults."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument('--n', type=int, default=n, help=unit)
  parser.add_argument('--small-n', type=int, default=small_n,
                      help=f'{unit} of the run that measures the fixed cost')
  parser.add_argument('--repeats', type=int, default=repeats)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--scale-check', action='store_true',
                      help='also measure peak memory at 10N')
  parser.add_argument('--scale-modes', default=scale_modes,
                      help='Beam modes run at 10N with --scale-check')
  parser.add_argument('--workdir', help='scratch folder (default: a temp one)')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  return parser
