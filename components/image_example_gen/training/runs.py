"""What a pipeline run did, read back from ML Metadata (MLMD).

For the demo's summary, the README's timings and the end-to-end tests: which
components ran (or were cached) in a pipeline's latest run, how long each
took (MLMD execution timestamps), which artifacts they wrote, what the
ExampleGen converted, the anomalies ExampleValidator found, and the eval
accuracy the Evaluator computed (`summary_lines`: what `pipeline.py`
prints after a run).

Command line, the wall time per component of a pipeline's latest run:

    python -m image_example_gen.training.runs METADATA.sqlite PIPELINE_NAME
"""

import argparse
import dataclasses
import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence

from apache_beam.io.filesystems import FileSystems
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
import tensorflow_model_analysis as tfma

from image_example_gen import rejects
from image_example_gen import storage
from image_example_gen.report import mlmd

# MLMD context types TFX writes (tfx.orchestration.portable.constants).
_PIPELINE_RUN_CONTEXT = 'pipeline_run'
_NODE_CONTEXT = 'node'
_ACCURACY_METRIC = 'sparse_categorical_accuracy'


@dataclasses.dataclass(frozen=True)
class ComponentRun:
  """One component's execution in a pipeline run.

  Attributes:
    component_id: the node id in the pipeline (e.g. 'Trainer').
    state: the MLMD execution state name: COMPLETE, CACHED, FAILED, ...
    wall_time_s: last update minus creation of the execution, in seconds.
    outputs: output key -> the artifacts it produced (for a cached
      execution, those of the execution it reused).
  """
  component_id: str
  state: str
  wall_time_s: float
  outputs: Dict[str, List[metadata_store_pb2.Artifact]]

  def uri(self, key: str) -> str:
    """The URI of the sole artifact of output `key`."""
    (artifact,) = self.outputs[key]
    return artifact.uri


def _latest_run(store: metadata_store.MetadataStore,
                pipeline_name: str) -> metadata_store_pb2.Context:
  """The pipeline's most recent `pipeline_run` context."""
  runs = [
      context for context in store.get_contexts_by_type(_PIPELINE_RUN_CONTEXT)
      if any(parent.name == pipeline_name
             for parent in store.get_parent_contexts_by_context(context.id))
  ]
  if not runs:
    raise ValueError(f'No run of pipeline {pipeline_name!r} in MLMD.')
  return max(runs, key=lambda context: (context.create_time_since_epoch,
                                        context.id))


def _node_id(store: metadata_store.MetadataStore, execution_id: int,
             pipeline_name: str) -> str:
  """The component id, from the execution's `node` context '<pipeline>.<id>'."""
  for context in store.get_contexts_by_execution(execution_id):
    if context.type == _NODE_CONTEXT:
      return context.name[len(pipeline_name) + 1:]
  raise ValueError(f'Execution {execution_id} has no node context.')


def _outputs(
    store: metadata_store.MetadataStore,
    execution: metadata_store_pb2.Execution
) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """Output key -> artifacts, in the order TFX recorded them."""
  events = [
      event for event in store.get_events_by_execution_ids([execution.id])
      if event.type in (metadata_store_pb2.Event.OUTPUT,
                        metadata_store_pb2.Event.DECLARED_OUTPUT)]
  artifacts = {artifact.id: artifact for artifact in
               store.get_artifacts_by_id([e.artifact_id for e in events])}
  outputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    outputs.setdefault(key, []).append(artifacts[event.artifact_id])
  return outputs


def latest_run(store: metadata_store.MetadataStore,
               pipeline_name: str) -> List[ComponentRun]:
  """The components of the pipeline's latest run, in execution order."""
  run = _latest_run(store, pipeline_name)
  executions = sorted(store.get_executions_by_context(run.id),
                      key=lambda e: (e.create_time_since_epoch, e.id))
  return [
      ComponentRun(
          component_id=_node_id(store, execution.id, pipeline_name),
          state=metadata_store_pb2.Execution.State.Name(
              execution.last_known_state),
          wall_time_s=(execution.last_update_time_since_epoch -
                       execution.create_time_since_epoch) / 1000.0,
          outputs=_outputs(store, execution))
      for execution in executions
  ]


def format_wall_times(runs: List[ComponentRun]) -> List[str]:
  """Lines of a table: component, state, wall time; then the total."""
  width = max([len('component')] + [len(r.component_id) for r in runs])
  lines = [f'{"component":<{width}}  {"state":<9} {"wall s":>8}']
  for r in runs:
    lines.append(f'{r.component_id:<{width}}  {r.state:<9} '
                 f'{r.wall_time_s:>8.1f}')
  total = sum(r.wall_time_s for r in runs)
  lines.append(f'{"total":<{width}}  {"":<9} {total:>8.1f}')
  return lines


def eval_accuracy(evaluation_uri: str,
                  metric: str = _ACCURACY_METRIC) -> Optional[float]:
  """The overall (unsliced) `metric` in an Evaluator's output, if computed."""
  result = tfma.load_eval_result(evaluation_uri)
  for slice_key, metrics in result.slicing_metrics:
    if not slice_key:
      value = metrics.get('', {}).get('', {}).get(metric)
      return None if value is None else float(value['doubleValue'])
  return None


def _producer(component_runs: List[ComponentRun],
              key: str) -> ComponentRun:
  """The component of the run that has output `key`."""
  for component_run in component_runs:
    if key in component_run.outputs:
      return component_run
  raise ValueError(f'No component of the run has an output {key!r}.')


def _property(artifact, name: str):
  value = artifact.custom_properties.get(name)
  return None if value is None else getattr(value, value.WhichOneof('value'))


def ingestion_line(examples) -> str:
  """What the ExampleGen made, from its artifact's custom properties."""
  counts = {name: _property(examples, f'num_{name}') or 0 for name in
            ('converted_files', 'examples', 'rejected_files',
             'skipped_files')}
  return (f'{counts["converted_files"]} files -> {counts["examples"]} '
          f'Examples, {counts["rejected_files"]} rejected, '
          f'{counts["skipped_files"]} skipped')


def anomalies(anomalies_uri: str) -> Dict[str, List[str]]:
  """Split -> the features (or data set) ExampleValidator found anomalous."""
  found = {}
  for path in sorted(storage.glob(
      os.path.join(anomalies_uri, 'Split-*', 'SchemaDiff.pb'))):
    split = os.path.basename(os.path.dirname(path))[len('Split-'):]
    with FileSystems.open(path) as f:
      result = anomalies_pb2.Anomalies.FromString(f.read())
    names = sorted(result.anomaly_info)
    if result.HasField('dataset_anomaly_info'):
      names.append('(data set)')
    if names:
      found[split] = names
  return found


def anomalies_line(found: Mapping[str, List[str]]) -> str:
  count = sum(len(names) for names in found.values())
  if not count:
    return '0 anomalies'
  return f'{count} anomalies: ' + '; '.join(
      f'{split}: {", ".join(names)}' for split, names in found.items())


def summary_lines(component_runs: List[ComponentRun]) -> List[str]:
  """Lines saying what a run made, where, its accuracy and timings."""
  example_gen = _producer(component_runs, 'examples')
  (examples,) = example_gen.outputs['examples']
  validator = _producer(component_runs, 'anomalies')
  lines = [
      f'  ingestion   {ingestion_line(examples)}',
      f'  validation  {anomalies_line(anomalies(validator.uri("anomalies")))}',
      f'  examples    {example_gen.uri("examples")}',
      f'  rejects     {example_gen.uri("examples")}/{rejects.REJECTS_DIR}/',
  ]
  for label, key, suffix in (('statistics', 'statistics', ''),
                             ('schema', 'schema', '/schema.pbtxt'),
                             ('anomalies', 'anomalies', ''),
                             ('evaluation', 'evaluation', '')):
    lines.append(f'  {label:<11} {_producer(component_runs, key).uri(key)}'
                 f'{suffix}')
  evaluator = _producer(component_runs, 'evaluation')
  accuracy = eval_accuracy(evaluator.uri('evaluation'))
  (blessing,) = evaluator.outputs['blessing']
  blessed = 'blessed' if _property(blessing, 'blessed') else 'NOT blessed'
  lines.append(f'  eval accuracy {accuracy:.4f} ({blessed})')
  (pushed,) = _producer(component_runs, 'pushed_model').outputs['pushed_model']
  destination = (_property(pushed, 'pushed_destination')
                 if _property(pushed, 'pushed') else 'not pushed')
  lines.append(f'  model       {destination}')
  lines.append('')
  lines.extend('  ' + line for line in format_wall_times(component_runs))
  return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Prints the wall time per component of a pipeline's latest run."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('metadata_path', help='the SQLite MLMD database')
  parser.add_argument('pipeline_name')
  args = parser.parse_args(argv)
  store = mlmd.open_store(args.metadata_path)
  print('\n'.join(format_wall_times(latest_run(store, args.pipeline_name))))
  return 0


if __name__ == '__main__':
  sys.exit(main())
