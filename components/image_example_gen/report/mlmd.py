"""Finding a pipeline's latest Examples and statistics in an MLMD database.

TFX records every component run as an MLMD execution in the pipeline's
context (type `pipeline`, named after the pipeline), linked by OUTPUT events
to the artifacts it wrote and by INPUT events to those it read. A cached run
is an execution too, whose outputs are the earlier artifacts. So "the latest
Examples" is the LIVE output of the most recent complete or cached execution
that wrote an `Examples` artifact under the output key `examples` (an
ExampleGen's; Transform's `transformed_examples` are not it).
"""

import os
from typing import List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

PIPELINE_CONTEXT_TYPE = 'pipeline'
EXAMPLES_TYPE = 'Examples'
EXAMPLES_KEY = 'examples'
STATISTICS_TYPE = 'ExampleStatistics'
_DONE = (metadata_store_pb2.Execution.COMPLETE,
         metadata_store_pb2.Execution.CACHED)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """A read-only store on an existing SQLite MLMD database."""
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(f'No MLMD database at {metadata_path}.')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


def _same_uri(a: str, b: str) -> bool:
  return os.path.normpath(a) == os.path.normpath(b)


def _latest_outputs(store: metadata_store.MetadataStore, pipeline_name: str,
                    type_name: str, output_key: Optional[str] = None,
                    input_uri: Optional[str] = None) -> List[str]:
  """URIs of LIVE `type_name` outputs, most recent execution first.

  Only executions of `pipeline_name` that completed (or were cached), and,
  with `input_uri`, that read an artifact at that URI.
  """
  context = store.get_context_by_type_and_name(PIPELINE_CONTEXT_TYPE,
                                               pipeline_name)
  if context is None:
    raise LookupError(f'No pipeline {pipeline_name!r} in the MLMD database.')
  executions = sorted(
      (e for e in store.get_executions_by_context(context.id)
       if e.last_known_state in _DONE),
      key=lambda e: (e.create_time_since_epoch, e.id), reverse=True)
  if not executions:
    return []
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      sorted({e.artifact_id for e in events}))}
  uris = []
  for execution in executions:
    mine = [e for e in events if e.execution_id == execution.id]
    if input_uri is not None and not any(
        e.type == metadata_store_pb2.Event.INPUT and
        _same_uri(artifacts[e.artifact_id].uri, input_uri) for e in mine):
      continue
    for event in mine:
      artifact = artifacts[event.artifact_id]
      if (event.type == metadata_store_pb2.Event.OUTPUT and
          artifact.type == type_name and
          artifact.state == metadata_store_pb2.Artifact.LIVE and
          (output_key is None or
           (event.path.steps and event.path.steps[0].key == output_key))):
        uris.append(artifact.uri)
  return uris


def latest_examples_uri(metadata_path: str, pipeline_name: str) -> str:
  """The URI of the pipeline's latest ExampleGen output.

  Args:
    metadata_path: the pipeline's SQLite MLMD database (LocalDagRunner's).
    pipeline_name: the pipeline's name.

  Raises:
    FileNotFoundError: no database at `metadata_path`.
    LookupError: no such pipeline, or no Examples from it.
  """
  uris = _latest_outputs(open_store(metadata_path), pipeline_name,
                         EXAMPLES_TYPE, output_key=EXAMPLES_KEY)
  if not uris:
    raise LookupError(f'No Examples from pipeline {pipeline_name!r} in '
                      f'{metadata_path}.')
  return uris[0]


def latest_statistics_uri(metadata_path: str, pipeline_name: str,
                          examples_uri: Optional[str] = None) -> Optional[str]:
  """The URI of the pipeline's latest StatisticsGen output, or None.

  Args:
    metadata_path: the pipeline's SQLite MLMD database (LocalDagRunner's).
    pipeline_name: the pipeline's name.
    examples_uri: only statistics computed from the Examples at this URI.

  Raises:
    FileNotFoundError: no database at `metadata_path`.
    LookupError: no such pipeline.
  """
  uris = _latest_outputs(open_store(metadata_path), pipeline_name,
                         STATISTICS_TYPE, input_uri=examples_uri)
  return uris[0] if uris else None
