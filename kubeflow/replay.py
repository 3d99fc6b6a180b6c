"""Contract replay: runs a compiled KFP pipeline spec's tasks on this machine.

For each task of the spec, in DAG order, this does what the Kubeflow launcher
does and nothing more: it builds the task's `ExecutorInput` (constant
parameters from the spec, input artifacts from the producers' executor
outputs, output artifact URIs and the output file under a local run folder),
substitutes it for the `{{$}}` placeholder, and runs the container's
`pre_cache_check` hook (if any) and then its command with the environment the
pod would have: the image's `ENV` lines (read from the Dockerfile) and the
Kubernetes Secrets the platform spec mounts. The commands themselves are the
spec's, unchanged: TFX's `kubeflow_v2_run_executor` and file-based ExampleGen
driver, run by the `python` of this environment in place of the image's.
Output artifact folders are created first: in a bucket they need not exist,
on a local disk they must.

What a cluster adds and this does not: pulling the image, MLMD, the cache,
retries, resource requests, and (for KFP) moving artifacts between pods.
"""

import collections
import dataclasses
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from kfp.pipeline_spec import pipeline_spec_pb2
import yaml

from google.protobuf import json_format

# Every placeholder the launcher would substitute; only `{{$}}` is supported.
_PLACEHOLDER = re.compile(r'\{\{\$.*?\}\}')
_EXECUTOR_INPUT_PLACEHOLDER = '{{$}}'
_OUTPUT_FILE = 'executor_output.json'
# What python:3.10-slim sets besides the Dockerfile's own ENV.
_BASE_IMAGE_ENV = {'LANG': 'C.UTF-8'}
_DEFAULT_TIMEOUT_S = 600


@dataclasses.dataclass
class TaskRun:
  """One replayed task.

  Attributes:
    name: the task's name in the DAG.
    executor_input: what replaced `{{$}}` in its arguments.
    outputs: output key -> the output artifacts the executor reported.
    log_path: stdout and stderr of its hook and command.
    wall_s: seconds from the first process start to the last one's end.
  """
  name: str
  executor_input: pipeline_spec_pb2.ExecutorInput
  outputs: Dict[str, List[pipeline_spec_pb2.RuntimeArtifact]]
  log_path: pathlib.Path
  wall_s: float


def load_package(path: str) -> Tuple[pipeline_spec_pb2.PipelineSpec,
                                     Dict[str, Any]]:
  """The PipelineSpec of a YAML package and its platform spec ({} if none)."""
  with open(path, encoding='utf-8') as f:
    documents = [d for d in yaml.safe_load_all(f) if d]
  spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
  platform = documents[1] if len(documents) > 1 else {}
  return spec, platform


def deployment_config(
    spec: pipeline_spec_pb2.PipelineSpec
) -> pipeline_spec_pb2.PipelineDeploymentConfig:
  """The spec's deploymentSpec (a Struct in the proto) as its real message."""
  return json_format.ParseDict(
      json_format.MessageToDict(spec.deployment_spec),
      pipeline_spec_pb2.PipelineDeploymentConfig())


def _upstream(task: pipeline_spec_pb2.PipelineTaskSpec) -> List[str]:
  producers = {a.task_output_artifact.producer_task
               for a in task.inputs.artifacts.values()}
  return sorted(set(task.dependent_tasks) | producers - {''})


def task_order(spec: pipeline_spec_pb2.PipelineSpec) -> List[str]:
  """The root DAG's task names, each after its upstream tasks (stable)."""
  tasks = spec.root.dag.tasks
  waiting = {name: set(_upstream(task)) for name, task in tasks.items()}
  order = []
  while waiting:
    ready = sorted(name for name, deps in waiting.items() if not deps)
    if not ready:
      raise ValueError(f'Cycle among tasks {sorted(waiting)}.')
    for name in ready:
      del waiting[name]
      for deps in waiting.values():
        deps.discard(name)
    order.extend(ready)
  return order


def _artifact_name(run_id: str, task: str, key: str) -> str:
  """A resource name like Vertex ML Metadata's, unique within the run."""
  return f'runs/{run_id}/artifacts/{task}.{key}'


def build_executor_input(
    spec: pipeline_spec_pb2.PipelineSpec, task_name: str,
    upstream_outputs: Mapping[str, Mapping[
        str, Sequence[pipeline_spec_pb2.RuntimeArtifact]]],
    run_dir: pathlib.Path, run_id: str) -> pipeline_spec_pb2.ExecutorInput:
  """The ExecutorInput the launcher would pass to `task_name`.

  Args:
    spec: the compiled pipeline.
    task_name: a task of the root DAG.
    upstream_outputs: task name -> output key -> artifacts it reported.
    run_dir: the run's root; the task writes under `run_dir/task_name/`.
    run_id: the run's id, part of the artifact names.

  Returns:
    Inputs (parameters, upstream artifacts) and outputs (artifact URIs, the
    output file) of the task.
  """
  task = spec.root.dag.tasks[task_name]
  component = spec.components[task.component_ref.name]
  result = pipeline_spec_pb2.ExecutorInput()
  for name, parameter in task.inputs.parameters.items():
    if parameter.WhichOneof('kind') != 'runtime_value':
      raise NotImplementedError(
          f'{task_name}.{name}: only constant parameters are replayed, got '
          f'{parameter.WhichOneof("kind")}.')
    result.inputs.parameter_values[name].CopyFrom(
        parameter.runtime_value.constant)
  for name, artifact_input in task.inputs.artifacts.items():
    producer = artifact_input.task_output_artifact
    if not producer.producer_task:
      raise NotImplementedError(
          f'{task_name}.{name}: only task output artifacts are replayed.')
    artifact_type = component.input_definitions.artifacts[name].artifact_type
    for upstream in upstream_outputs[producer.producer_task][
        producer.output_artifact_key]:
      artifact = result.inputs.artifacts[name].artifacts.add()
      artifact.CopyFrom(upstream)
      artifact.type.CopyFrom(artifact_type)
  task_dir = run_dir / task_name
  for name, definition in component.output_definitions.artifacts.items():
    result.outputs.artifacts[name].artifacts.add(
        name=_artifact_name(run_id, task_name, name),
        type=definition.artifact_type,
        uri=str(task_dir / name))
  if component.output_definitions.parameters:
    raise NotImplementedError(f'{task_name}: output parameters.')
  result.outputs.output_file = str(task_dir / _OUTPUT_FILE)
  return result


def resolve_args(args: Sequence[str],
                 executor_input: pipeline_spec_pb2.ExecutorInput) -> List[str]:
  """`args` with `{{$}}` replaced by the executor input's JSON."""
  executor_input_json = json_format.MessageToJson(executor_input)
  resolved = []
  for arg in args:
    arg = arg.replace(_EXECUTOR_INPUT_PLACEHOLDER, executor_input_json)
    if arg != executor_input_json and _PLACEHOLDER.search(arg):
      raise NotImplementedError(f'Unsupported placeholder in {arg!r}.')
    resolved.append(arg)
  return resolved


def dockerfile_instructions(path: str) -> List[Tuple[str, str]]:
  """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
  instructions = []
  logical = ''
  for line in pathlib.Path(path).read_text(encoding='utf-8').splitlines():
    stripped = line.strip()
    if not stripped or stripped.startswith('#'):
      continue
    if stripped.endswith('\\'):
      logical += stripped[:-1] + ' '
      continue
    logical += stripped
    keyword, _, rest = logical.partition(' ')
    instructions.append((keyword.upper(), rest.strip()))
    logical = ''
  return instructions


def image_env(dockerfile: str) -> Dict[str, str]:
  """The environment the image's ENV instructions set (KEY=VALUE form)."""
  env = dict(_BASE_IMAGE_ENV)
  for keyword, rest in dockerfile_instructions(dockerfile):
    if keyword == 'ENV':
      for pair in shlex.split(rest):
        key, sep, value = pair.partition('=')
        if not sep:
          raise ValueError(f'Use ENV KEY=VALUE, got ENV {rest}.')
        env[key] = value
  return env


def secret_env(platform: Mapping[str, Any], executor_label: str,
               secrets: Mapping[str, Mapping[str, str]]) -> Dict[str, str]:
  """Env vars the platform spec mounts from Kubernetes Secrets.

  Args:
    platform: the package's platform spec ({} if none).
    executor_label: the task's executor.
    secrets: the cluster's Secrets: name -> key -> value.

  Returns:
    Env var -> value; a missing Secret or key fails, as the pod would.
  """
  executor = (platform.get('platforms', {}).get('kubernetes', {})
              .get('deploymentSpec', {}).get('executors', {})
              .get(executor_label, {}))
  env = {}
  for mount in executor.get('secretAsEnv', []):
    secret = secrets[mount['secretName']]
    for key_to_env in mount['keyToEnv']:
      env[key_to_env['envVar']] = secret[key_to_env['secretKey']]
  return env


def _run(command: Sequence[str], env: Mapping[str, str], cwd: pathlib.Path,
         log, timeout_s: int) -> None:
  log.write(f'$ {shlex.join(command)[:2000]}\n')
  log.flush()
  completed = subprocess.run(command, env=dict(env), cwd=cwd, stdout=log,
                             stderr=subprocess.STDOUT, timeout=timeout_s,
                             check=False)
  if completed.returncode:
    raise RuntimeError(f'{command[:3]} exited with {completed.returncode}.')


def _read_outputs(
    output_file: str) -> Dict[str, List[pipeline_spec_pb2.RuntimeArtifact]]:
  executor_output = json_format.Parse(
      pathlib.Path(output_file).read_text(encoding='utf-8'),
      pipeline_spec_pb2.ExecutorOutput())
  return {key: list(artifacts.artifacts)
          for key, artifacts in executor_output.artifacts.items()}


def run_task(spec: pipeline_spec_pb2.PipelineSpec,
             deployment: pipeline_spec_pb2.PipelineDeploymentConfig,
             task_name: str, executor_input: pipeline_spec_pb2.ExecutorInput,
             env: Mapping[str, str],
             timeout_s: int = _DEFAULT_TIMEOUT_S) -> TaskRun:
  """Runs a task's pre_cache_check hook, then its command, like a pod."""
  component = spec.components[spec.root.dag.tasks[task_name].component_ref.name]
  container = deployment.executors[component.executor_label].container
  if not container.command:
    raise NotImplementedError(f'{task_name}: no command (image ENTRYPOINT).')
  task_dir = pathlib.Path(executor_input.outputs.output_file).parent
  work_dir = task_dir / '.workdir'
  work_dir.mkdir(parents=True, exist_ok=True)
  for artifacts in executor_input.outputs.artifacts.values():
    for artifact in artifacts.artifacts:
      if '://' not in artifact.uri:
        pathlib.Path(artifact.uri).mkdir(parents=True, exist_ok=True)
  log_path = task_dir / 'task.log'
  start = time.monotonic()
  with open(log_path, 'w', encoding='utf-8') as log:
    try:
      if container.lifecycle.HasField('pre_cache_check'):
        hook = container.lifecycle.pre_cache_check
        _run(list(hook.command) + resolve_args(hook.args, executor_input),
             env, work_dir, log, timeout_s)
      _run(list(container.command) +
           resolve_args(container.args, executor_input),
           env, work_dir, log, timeout_s)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
      log.flush()
      tail = log_path.read_text(encoding='utf-8')[-4000:]
      raise RuntimeError(f'Task {task_name} failed: {e}\n{tail}') from e
  outputs = _read_outputs(executor_input.outputs.output_file)
  missing = set(component.output_definitions.artifacts) - set(outputs)
  if missing:
    raise RuntimeError(f'Task {task_name} reported no {sorted(missing)}.')
  return TaskRun(task_name, executor_input, outputs, log_path,
                 time.monotonic() - start)


def pod_env(dockerfile: str, home: pathlib.Path,
            python: str = sys.executable) -> Dict[str, str]:
  """A pod's base environment: the image's ENV, `python` first on PATH."""
  env = image_env(dockerfile)
  env['PATH'] = os.pathsep.join([os.path.dirname(python), '/usr/local/bin',
                                 '/usr/bin', '/bin'])
  env['HOME'] = str(home)
  return env


def replay(package: str, run_dir: pathlib.Path, dockerfile: str,
           secrets: Optional[Mapping[str, Mapping[str, str]]] = None,
           run_id: str = 'replay',
           timeout_s: int = _DEFAULT_TIMEOUT_S) -> Dict[str, TaskRun]:
  """Runs every task of a YAML package in DAG order; returns them by name.

  Args:
    package: the compiled .yaml (PipelineSpec and optional platform spec).
    run_dir: a new local folder: every task's artifacts, logs and output file.
    dockerfile: the image definition whose ENV the tasks get.
    secrets: the cluster's Kubernetes Secrets: name -> key -> value.
    run_id: the run's id, part of the artifact names.
    timeout_s: the limit for each process.

  Returns:
    Task name -> its TaskRun, in the order they ran.
  """
  spec, platform = load_package(package)
  deployment = deployment_config(spec)
  base_env = pod_env(dockerfile, run_dir / '.home')
  (run_dir / '.home').mkdir(parents=True, exist_ok=True)
  runs = collections.OrderedDict()
  for task_name in task_order(spec):
    executor_input = build_executor_input(
        spec, task_name, {name: r.outputs for name, r in runs.items()},
        run_dir, run_id)
    label = spec.components[
        spec.root.dag.tasks[task_name].component_ref.name].executor_label
    env = {**base_env, **secret_env(platform, label, secrets or {})}
    runs[task_name] = run_task(spec, deployment, task_name, executor_input,
                               env, timeout_s)
  return runs


def artifact_metadata(artifact: pipeline_spec_pb2.RuntimeArtifact
                     ) -> Dict[str, Any]:
  """An output artifact's metadata (properties) as plain Python values."""
  return json.loads(json_format.MessageToJson(artifact.metadata))
