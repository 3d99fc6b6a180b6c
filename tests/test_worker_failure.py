"""A Beam worker killed mid-conversion: the run fails, nothing is published.

DicomExampleGen runs under LocalDagRunner (SQLite MLMD) with two
multi-processing DirectRunner workers. A thread watches the workers and
SIGKILLs one as soon as it holds an input file open, i.e. while it converts.
The component must fail with a clear error, no Examples artifact may be LIVE
in MLMD, and the rerun (cache on) must write exactly what an undisturbed run
writes.
"""

import json
import os
import signal
import threading
import time

import psutil
import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata

from image_example_gen import DicomExampleGen
from image_example_gen import executor_base
from image_example_gen import sample_data

from ml_metadata.proto import metadata_store_pb2

pytestmark = pytest.mark.e2e

_BEAM_ARGS = ['--direct_running_mode=multi_processing',
              '--direct_num_workers=2']


class _KillWorkerWhileConverting(threading.Thread):
  """SIGKILLs the first Beam worker seen with a file of `folder` open."""

  def __init__(self, folder: str):
    super().__init__(daemon=True)
    self._folder = folder.rstrip('/') + '/'
    self.killed = None
    self._done = threading.Event()

  def run(self):
    me = psutil.Process()
    while not self._done.is_set() and self.killed is None:
      for worker in me.children(recursive=True):
        try:
          command = worker.cmdline()
          if not (command and command[0].endswith('python') and
                  'apache_beam.runners.worker.sdk_worker_main' in command):
            continue
          if any(f.path.startswith(self._folder) for f in worker.open_files()):
            os.kill(worker.pid, signal.SIGKILL)
            self.killed = worker.pid
            return
        except (psutil.NoSuchProcess, psutil.AccessDenied):
          continue
      time.sleep(0.002)

  def stop(self):
    self._done.set()
    self.join()


def _pipeline(root, input_base):
  example_gen = DicomExampleGen(input_base=input_base,
                                max_reject_fraction=0.5)
  return tfx.dsl.Pipeline(
      pipeline_name='worker_failure', pipeline_root=str(root / 'pipeline'),
      components=[example_gen], enable_cache=True,
      beam_pipeline_args=_BEAM_ARGS,
      metadata_connection_config=(
          metadata.sqlite_metadata_connection_config(
              str(root / 'metadata.sqlite'))))


def _executions_and_examples(root):
  """Execution states, oldest first, and (state, uri) of every Examples."""
  with metadata.Metadata(metadata.sqlite_metadata_connection_config(
      str(root / 'metadata.sqlite'))) as m:
    executions = sorted(m.store.get_executions(), key=lambda e: e.id)
    return (
        [metadata_store_pb2.Execution.State.Name(e.last_known_state)
         for e in executions],
        [(metadata_store_pb2.Artifact.State.Name(a.state), a.uri)
         for a in m.store.get_artifacts_by_type('Examples')])


def _contents(uri, examples_reader, serialized):
  """What an Examples artifact holds, independent of sharding and order."""
  with open(os.path.join(uri, executor_base.SUMMARY_FILE)) as f:
    summary = json.load(f)
  return (serialized(examples_reader(uri)),
          sorted(r.to_json() for r in executor_base.read_rejects(uri)),
          {k: v for k, v in summary.items() if k != 'bytes_read'})


def test_killed_worker_fails_the_run_and_the_rerun_is_whole(
    tmp_path, executor_runner, examples_reader, serialized):
  sample = sample_data.make_dicom_sample(tmp_path / 'data', n_images=200,
                                         size=256)
  input_base = str(sample.root / 'train_images')

  killer = _KillWorkerWhileConverting(input_base)
  killer.start()
  with pytest.raises(Exception, match='rerun the pipeline'):
    tfx.orchestration.LocalDagRunner().run(_pipeline(tmp_path, input_base))
  killer.stop()
  assert killer.killed is not None

  states, examples = _executions_and_examples(tmp_path)
  assert states == ['FAILED']
  assert all(state != 'LIVE' for state, _ in examples)

  tfx.orchestration.LocalDagRunner().run(_pipeline(tmp_path, input_base))
  states, examples = _executions_and_examples(tmp_path)
  assert states == ['FAILED', 'COMPLETE']
  (rerun_uri,) = [uri for state, uri in examples if state == 'LIVE']

  undisturbed = executor_runner(
      DicomExampleGen(input_base=input_base, max_reject_fraction=0.5),
      tmp_path / 'undisturbed')
  assert _contents(rerun_uri, examples_reader, serialized) == _contents(
      undisturbed.uri, examples_reader, serialized)
