"""Compiles pipeline.py's pipeline for Kubeflow Pipelines or Vertex AI.

The same `create_pipeline(...)` that LocalDagRunner runs is compiled with
TFX's `KubeflowV2DagRunner` (KFP pipeline spec schema 2.1) into

  * a `.yaml` PipelineSpec for Kubeflow Pipelines 2.x (upload it in the UI or
    with `kfp.Client().create_run_from_pipeline_package`), or
  * a `.json` PipelineJob for Vertex AI Pipelines.

Every task runs the image built from kubeflow/Dockerfile, which installs this
repository's distribution from requirements.lock: executors, Transform's
`preprocessing_fn` and Trainer's `run_fn` import by dotted path, so no
module-file wheel has to reach the pods. Run from the repository root:

    python kubeflow/compile.py --source images \
        --image REGISTRY/image-example-gen:TAG \
        --pipeline-root gs://BUCKET/pipeline_root \
        --input-base gs://BUCKET/images --output image-example-gen.yaml

Every flag can come from an environment variable instead (`--help` names
them). Paths in the spec must be readable from every pod: `--pipeline-root`,
`--input-base`, `--serving-model-dir` and `--metadata-file` must be URIs of a
filesystem TensorFlow implements here (gs://), or local paths with
`--allow-local-paths` where a volume mounts them in every pod. The curated
schema is read from the image (`--schema-dir`, where the Dockerfile copies
schemas/) or from a bucket. The ExampleGen gets its salt from a Kubernetes
Secret (`--salt-secret`), never from the package.
"""

import argparse
import json
import logging
import os
import pathlib
import posixpath
import shlex
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(_REPO_ROOT))  # pipeline.py is not in the package.

# pylint: disable=g-import-not-at-top,wrong-import-position
import pipeline
import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
import yaml

from image_example_gen import keys
# pylint: enable=g-import-not-at-top,wrong-import-position

# Where kubeflow/Dockerfile copies the repository's schemas/ folder.
IMAGE_SCHEMA_DIR = '/pipeline/schemas'
DEFAULT_SALT_SECRET_KEY = 'salt'
_LOCAL_SCHEMA_DIR = _REPO_ROOT / 'schemas'
# Beam options that say how a runner's workers get the code.
_BEAM_DEPENDENCY_FLAGS = (
    '--sdk_container_image', '--worker_harness_container_image',
    '--sdk_location', '--setup_file', '--extra_package', '--extra_packages',
    '--requirements_file')
_YAML_SUFFIXES = ('.yaml', '.yml')

# Flag -> the environment variable that gives its default.
ENV_VARS = {
    'source': 'PIPELINE_SOURCE',
    'image': 'PIPELINE_IMAGE',
    'pipeline_root': 'PIPELINE_ROOT',
    'input_base': 'PIPELINE_INPUT_BASE',
    'serving_model_dir': 'PIPELINE_SERVING_MODEL_DIR',
    'metadata_file': 'PIPELINE_METADATA_FILE',
    'group_column': 'PIPELINE_GROUP_COLUMN',
    'beam_pipeline_args': 'PIPELINE_BEAM_ARGS',
    'pipeline_name': 'PIPELINE_NAME',
    'schema_dir': 'PIPELINE_SCHEMA_DIR',
    'salt_secret': 'PIPELINE_SALT_SECRET',
    'output': 'PIPELINE_OUTPUT',
}


# Deprecated names of variables, read when the variable is unset, until the
# next release.
_DEPRECATED_ENV_VARS = {'metadata_file': 'PIPELINE_LABELS_CSV',
                        'group_column': 'PIPELINE_PATIENT_COLUMN'}


def _env(flag: str, default: Optional[str] = None) -> Optional[str]:
  return os.environ.get(ENV_VARS[flag], os.environ.get(
      _DEPRECATED_ENV_VARS.get(flag, ENV_VARS[flag]), default))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line; unset flags fall back to ENV_VARS."""
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n', 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='Environment variables: ' + ', '.join(
          f'--{flag.replace("_", "-")}: ${var}'
          for flag, var in ENV_VARS.items()))
  add = parser.add_argument
  add('--source', choices=pipeline.SOURCES, default=_env('source'),
      help='dicom (DicomExampleGen) or images (ImageFolderExampleGen).')
  add('--image', default=_env('image'),
      help='The container image every task runs (kubeflow/Dockerfile).')
  add('--pipeline-root', default=_env('pipeline_root'),
      help='Where the tasks write artifacts, e.g. gs://BUCKET/root.')
  add('--input-base', default=_env('input_base'),
      help='The ExampleGen\'s input folder.')
  add('--serving-model-dir', default=_env('serving_model_dir'),
      help='Where Pusher copies a blessed model. Default: '
      '<pipeline-root>/serving_model/<pipeline-name>.')
  add('--metadata-file', '--labels-csv', dest='metadata_file',
      default=_env('metadata_file'),
      help='The ExampleGen\'s metadata table (--labels-csv: deprecated).')
  add('--group-column', '--patient-column', dest='group_column',
      default=_env('group_column'),
      help='The table\'s group column, for DICOM the patient id '
      '(--patient-column: deprecated).')
  add('--extra-columns', default=None,
      help='Comma-separated table columns to export.')
  add('--beam-pipeline-args', default=_env('beam_pipeline_args', ''),
      help='Beam options of every task, one shell-quoted string, e.g. '
      '"--runner=DataflowRunner --project=P --region=R --temp_location=gs://'
      'B/tmp". Beam workers run --image unless these say otherwise.')
  add('--pipeline-name', default=_env('pipeline_name'),
      help='Default: image-example-gen-<source>.')
  add('--schema-dir', default=_env('schema_dir', IMAGE_SCHEMA_DIR),
      help='Where the tasks find schemas/<source folder>/schema.pbtxt: the '
      f'image\'s copy ({IMAGE_SCHEMA_DIR}) or a bucket.')
  add('--salt-secret', default=_env('salt_secret'),
      help='Kubernetes Secret NAME[:KEY] (KEY default '
      f'"{DEFAULT_SALT_SECRET_KEY}") mounted as ${keys.SALT_ENV_VAR} into '
      'the ExampleGen task (KFP YAML only). Without it identifiers are '
      'hashed with the public default salt.')
  add('--infer-schema', action='store_true',
      help='Infer the schema with SchemaGen instead of --schema-dir\'s.')
  # Training options; unset ones keep create_pipeline's defaults.
  add('--image-size', type=int, default=None)
  add('--channels', type=int, choices=(1, 3), default=None)
  add('--epochs', type=int, default=None)
  add('--batch-size', type=int, default=None)
  add('--accuracy-threshold', type=float, default=None,
      help='Eval accuracy at or above which the model is pushed.')
  add('--num-classes', type=int, default=None,
      help='Default: from the schema\'s label domain.')
  add('--max-reject-fraction', type=float, default=None,
      help='Fail ExampleGen above this fraction of rejected input files.')
  add('--cache-example-gen', action='store_true',
      help='Let KFP cache the ExampleGen task. Off by default: its cache key '
      'does not see files changed under --input-base (kubeflow/README.md).')
  add('--allow-local-paths', action='store_true',
      help='Accept paths without a URI scheme: only where a volume mounts '
      'them at the same path in every pod, or for the local contract replay.')
  add('--output', default=_env('output'),
      help='.yaml (Kubeflow Pipelines) or .json (Vertex AI PipelineJob).')
  args = parser.parse_args(argv)
  missing = [f'--{flag.replace("_", "-")} (or ${ENV_VARS[flag]})'
             for flag in ('source', 'image', 'pipeline_root', 'input_base',
                          'output')
             if not getattr(args, flag)]
  if missing:
    parser.error('missing ' + ', '.join(missing))
  return args


def check_paths(paths: Mapping[str, Optional[str]],
                allow_local: bool) -> None:
  """Refuses paths the pods cannot read (tfx issues 3761, 4583, 6920).

  A path without a URI scheme is only readable where a volume mounts it in
  every pod; a URI must use a filesystem that TensorFlow in this environment
  (the same lock as the image) implements: gs:// here, not s3:// or minio://.
  """
  schemes = tf.io.gfile.get_registered_schemes()
  for name, path in paths.items():
    if not path:
      continue
    scheme, separator, _ = path.partition('://')
    if not separator and not allow_local:
      raise ValueError(
          f'{name}={path} is a local path, which Kubeflow pods cannot read. '
          'Use a bucket URI (gs://...), or pass --allow-local-paths if a '
          'volume mounts it at the same path in every pod.')
    if separator and scheme not in schemes:
      raise ValueError(
          f'{name}={path}: TensorFlow in requirements.lock cannot read '
          f'{scheme}:// (it reads {", ".join(s for s in schemes if s)}). '
          'See kubeflow/README.md, "Buckets".')


def has_scheme(path: str) -> bool:
  """Whether `path` is a URI (gs://...) rather than a local path."""
  return '://' in path


def schema_path(source: str, schema_dir: str) -> str:
  """The curated schema of `source` under `schema_dir` (image or bucket)."""
  relative = pathlib.Path(pipeline.SCHEMA_PATHS[source]).relative_to(
      _LOCAL_SCHEMA_DIR)
  return posixpath.join(schema_dir, relative.as_posix())


def parse_salt_secret(value: str) -> Dict[str, str]:
  """NAME[:KEY] -> {'name': NAME, 'key': KEY}."""
  name, _, key = value.partition(':')
  if not name:
    raise ValueError(f'--salt-secret needs a Secret name, got {value!r}.')
  return {'name': name, 'key': key or DEFAULT_SALT_SECRET_KEY}


def example_gen_args(args: argparse.Namespace) -> Dict[str, Any]:
  """The ExampleGen's keyword arguments given on the command line."""
  result = {}
  if args.metadata_file:
    result['metadata_file'] = args.metadata_file
  if args.group_column:
    result['group_column'] = args.group_column
  if args.extra_columns:
    result['extra_columns'] = args.extra_columns.split(',')
  if args.max_reject_fraction is not None:
    result['max_reject_fraction'] = args.max_reject_fraction
  return result


def beam_pipeline_args(image: str, args: str) -> List[str]:
  """The shell-quoted Beam options `args`, with workers on `image` by default.

  Unless `args` say how workers get the code, Beam workers (Dataflow, Flink,
  ...) run the tasks' own image, which holds this package; the DirectRunner
  ignores these options. It also stops TFX from building and shipping a TFX
  sdist, which would lack this package.
  """
  result = shlex.split(args or '')
  if any(arg.split('=', 1)[0] in _BEAM_DEPENDENCY_FLAGS for arg in result):
    return result
  return [f'--sdk_container_image={image}', '--sdk_location=container'] + result


def build_pipeline(args: argparse.Namespace) -> tfx.dsl.Pipeline:
  """pipeline.create_pipeline with the deployment's locations."""
  name = args.pipeline_name or f'image-example-gen-{args.source}'
  serving_model_dir = args.serving_model_dir or posixpath.join(
      args.pipeline_root, 'serving_model', name)
  check_paths({'--pipeline-root': args.pipeline_root,
               '--input-base': args.input_base,
               '--serving-model-dir': serving_model_dir,
               '--metadata-file': args.metadata_file}, args.allow_local_paths)
  if has_scheme(args.schema_dir):
    check_paths({'--schema-dir': args.schema_dir}, allow_local=False)
  return pipeline.create_pipeline(
      pipeline_name=name,
      pipeline_root=args.pipeline_root,
      source=args.source,
      input_base=args.input_base,
      serving_model_dir=serving_model_dir,
      example_gen_args=example_gen_args(args),
      schema_path=(None if args.infer_schema else
                   schema_path(args.source, args.schema_dir)),
      beam_pipeline_args=beam_pipeline_args(args.image,
                                            args.beam_pipeline_args),
      **{option: getattr(args, option)
         for option in ('image_size', 'channels', 'epochs', 'batch_size',
                        'num_classes', 'accuracy_threshold')
         if getattr(args, option) is not None})


def compile_job(tfx_pipeline: tfx.dsl.Pipeline,
                image: str) -> Dict[str, Any]:
  """The PipelineJob dict (pipelineSpec, runtimeConfig) of `tfx_pipeline`.

  Schema 2.1 passes exec properties as `parameterValues` with their types
  (`--json_serialized_inputs_spec_args`), which is what KFP 2.x backends
  fill in; the spec's `defaultPipelineRoot` is the pipeline root.
  """
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=True))
  job = runner.run(tfx_pipeline, write_out=False)
  job['pipelineSpec']['defaultPipelineRoot'] = (
      tfx_pipeline.pipeline_info.pipeline_root)
  return job


def example_gen_tasks(pipeline_spec: Mapping[str, Any]) -> Dict[str, str]:
  """Task name -> executor label of the tasks that run a file-based ExampleGen.

  They are the tasks with TFX's file-based driver as `preCacheCheck` hook.
  """
  executors = pipeline_spec['deploymentSpec']['executors']
  result = {}
  for name, task in pipeline_spec['root']['dag']['tasks'].items():
    label = pipeline_spec['components'][task['componentRef']['name']][
        'executorLabel']
    if 'preCacheCheck' in executors[label].get('container', {}).get(
        'lifecycle', {}):
      result[name] = label
  return result


def disable_cache(pipeline_spec: Dict[str, Any],
                  task_names: Sequence[str]) -> None:
  """Turns off the KFP cache of `task_names` in the spec (in place)."""
  for name in task_names:
    pipeline_spec['root']['dag']['tasks'][name]['cachingOptions'] = {
        'enableCache': False}


def kubernetes_platform_spec(executor_labels: Sequence[str],
                             secret: Mapping[str, str]) -> Dict[str, Any]:
  """KFP's Kubernetes platform spec mounting the salt Secret as an env var.

  The format kfp-kubernetes' `use_secret_as_env` compiles to; KFP 2.x reads it
  from the second YAML document of the package.
  """
  secret_as_env = [{'secretName': secret['name'],
                    'keyToEnv': [{'secretKey': secret['key'],
                                  'envVar': keys.SALT_ENV_VAR}]}]
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      label: {'secretAsEnv': secret_as_env} for label in executor_labels}}}}}


def write_package(job: Mapping[str, Any], output: str,
                  platform_spec: Optional[Mapping[str, Any]] = None) -> None:
  """Writes the YAML PipelineSpec (+ platform spec) or the JSON PipelineJob."""
  path = pathlib.Path(output)
  path.parent.mkdir(parents=True, exist_ok=True)
  if path.suffix in _YAML_SUFFIXES:
    documents = [job['pipelineSpec']] + ([platform_spec] if platform_spec
                                         else [])
    path.write_text(
        '# Compiled by kubeflow/compile.py from pipeline.py '
        f'({job["pipelineSpec"]["sdkVersion"]}).\n' +
        yaml.safe_dump_all(documents, sort_keys=True), encoding='utf-8')
  else:
    path.write_text(json.dumps(job, indent=2, sort_keys=True),
                    encoding='utf-8')


def main(argv: Optional[Sequence[str]] = None) -> str:
  """Compiles the package named by --output; returns its path."""
  args = parse_args(argv)
  is_yaml = pathlib.Path(args.output).suffix in _YAML_SUFFIXES
  if not is_yaml and not args.output.endswith('.json'):
    raise ValueError(f'--output must end in .yaml or .json: {args.output}')
  if args.salt_secret and not is_yaml:
    raise ValueError(
        '--salt-secret mounts a Kubernetes Secret, which Vertex AI Pipelines '
        '(.json) does not support: see kubeflow/README.md, "Vertex AI".')
  job = compile_job(build_pipeline(args), args.image)
  example_gens = example_gen_tasks(job['pipelineSpec'])
  if not args.cache_example_gen:
    disable_cache(job['pipelineSpec'], sorted(example_gens))
  platform_spec = None
  if args.salt_secret:
    platform_spec = kubernetes_platform_spec(
        sorted(example_gens.values()), parse_salt_secret(args.salt_secret))
  else:
    logging.warning('No --salt-secret: the ExampleGen hashes identifiers '
                    'with the public default salt unless its pod has $%s.',
                    keys.SALT_ENV_VAR)
  write_package(job, args.output, platform_spec)
  print(f'Wrote {args.output}')
  return args.output


if __name__ == '__main__':
  try:
    main()
  except ValueError as e:
    sys.exit(f'error: {e}')
