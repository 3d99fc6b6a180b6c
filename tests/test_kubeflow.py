"""Kubeflow deployment (kubeflow/): compiled packages, image, contract replay.

No cluster or Docker engine runs here, so the deployment is proven as far as
this machine allows: the compiled packages are checked with KFP's own parsers
and against the installed environment, the Dockerfile is checked against the
lock, and the contract replay runs every task of a compiled package exactly
as the Kubeflow launcher would (kubeflow/replay.py), from ExampleGen to Pusher.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import sys

from kfp import components as kfp_components
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
from tfx.dsl.components.base import base_executor
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
from tfx.utils import import_utils
import yaml

from google.protobuf import json_format

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
KUBEFLOW_DIR = REPO_ROOT / 'kubeflow'
DOCKERFILE = KUBEFLOW_DIR / 'Dockerfile'
LOCK = REPO_ROOT / 'requirements.lock'
IMAGE = 'registry.example.com/ml/image-example-gen:1.0'
BUCKET = 'gs://ieg-test-bucket'
SALT_SECRET = 'ieg-salt'
SALT = 'replay-salt-from-a-kubernetes-secret'
BEAM_ARGS = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
DRIVER_COMMAND = [
    'python', '-m',
    'tfx.orchestration.kubeflow.v2.file_based_example_gen.driver']
EXAMPLE_GENS = {'images': 'ImageFolderExampleGen', 'dicom': 'DicomExampleGen'}
TRAINING_TASKS = {'ImportSchemaGen', 'StatisticsGen', 'ExampleValidator',
                  'Transform', 'Trainer', 'Evaluator', 'Pusher'}
# Absolute paths and URIs anywhere in a package's text.
_ABSOLUTE_PATH = re.compile(r'(?<![\w:/.~-])/[\w.-]+(?:/[\w.-]+)+')
_URI = re.compile(r'\b([a-z][a-z0-9+.-]*)://')


def _load(name: str):
  """A kubeflow/ module by path (kubeflow/ is not an installed package)."""
  module_name = f'kubeflow_{name}'
  spec = importlib.util.spec_from_file_location(
      module_name, KUBEFLOW_DIR / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope='module')
def kfp_compile():
  return _load('compile')


@pytest.fixture(scope='module')
def replay_lib():
  return _load('replay')


def _bucket_args(source: str, output: pathlib.Path):
  args = ['--source', source, '--image', IMAGE,
          '--pipeline-root', f'{BUCKET}/pipeline_root',
          '--input-base', f'{BUCKET}/{source}',
          '--beam-pipeline-args', ' '.join(BEAM_ARGS),
          '--output', str(output)]
  if source == 'dicom':
    args += ['--metadata-file', f'{BUCKET}/dicom/labels.csv',
             '--group-column', 'patient_id',
             '--extra-columns', 'laterality,view']
  return args


@pytest.fixture(scope='module')
def packages(kfp_compile, tmp_path_factory):
  """source -> compiled YAML for a gs:// deployment; 'vertex' -> JSON."""
  out = tmp_path_factory.mktemp('kubeflow_packages')
  result = {}
  for source in EXAMPLE_GENS:
    result[source] = pathlib.Path(kfp_compile.main(
        _bucket_args(source, out / f'{source}.yaml') +
        ['--salt-secret', f'{SALT_SECRET}:salt']))
  result['vertex'] = pathlib.Path(
      kfp_compile.main(_bucket_args('images', out / 'images.json')))
  return result


def _documents(path: pathlib.Path):
  with open(path, encoding='utf-8') as f:
    return [d for d in yaml.safe_load_all(f) if d]


def _strings(value):
  """Every string (keys included) in a parsed YAML or JSON document."""
  if isinstance(value, str):
    yield value
  elif isinstance(value, dict):
    for key, item in value.items():
      yield key
      yield from _strings(item)
  elif isinstance(value, list):
    for item in value:
      yield from _strings(item)


def _text(path: pathlib.Path) -> str:
  """A package's strings, one a line (YAML folds long ones in the file)."""
  return '\n'.join(s for d in _documents(path) for s in _strings(d))


def _spec(path: pathlib.Path) -> pipeline_spec_pb2.PipelineSpec:
  return json_format.ParseDict(_documents(path)[0],
                               pipeline_spec_pb2.PipelineSpec())


def _executors(spec: pipeline_spec_pb2.PipelineSpec):
  """Task name -> its PipelineContainerSpec."""
  deployment = json_format.ParseDict(
      json_format.MessageToDict(spec.deployment_spec),
      pipeline_spec_pb2.PipelineDeploymentConfig())
  return {name: deployment.executors[
      spec.components[task.component_ref.name].executor_label].container
          for name, task in spec.root.dag.tasks.items()}


def _parameter(spec, task: str, name: str) -> str:
  return spec.root.dag.tasks[task].inputs.parameters[
      name].runtime_value.constant.string_value


def _flag_value(args, flag: str) -> str:
  return args[list(args).index(flag) + 1]


@pytest.mark.parametrize('source', list(EXAMPLE_GENS))
def test_yaml_is_a_pipeline_spec_that_kfp_loads(packages, source):
  spec = _spec(packages[source])  # Strict: unknown fields fail.
  component = kfp_components.load_component_from_file(str(packages[source]))
  graph = component.component_spec.implementation.graph
  assert component.name == f'image-example-gen-{source}'
  assert set(graph.root.dag.tasks) == {EXAMPLE_GENS[source]} | TRAINING_TASKS
  assert spec.schema_version == '2.1.0'
  assert spec.default_pipeline_root == f'{BUCKET}/pipeline_root'


@pytest.mark.parametrize('source', list(EXAMPLE_GENS))
def test_every_task_runs_the_image_with_tfx_entry_points(packages, source):
  executors = _executors(_spec(packages[source]))
  assert set(executors) == {EXAMPLE_GENS[source]} | TRAINING_TASKS
  for container in executors.values():
    assert container.image == IMAGE
    assert list(container.command) == list(
        kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD)
    assert list(container.args[-len(BEAM_ARGS) - 2:]) == [
        f'--sdk_container_image={IMAGE}', '--sdk_location=container'
    ] + BEAM_ARGS
  hook = executors[EXAMPLE_GENS[source]].lifecycle.pre_cache_check
  assert list(hook.command) == DRIVER_COMMAND
  for command in (DRIVER_COMMAND, kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD):
    assert importlib.util.find_spec(command[2]) is not None


@pytest.mark.parametrize('source', list(EXAMPLE_GENS))
def test_every_executor_class_path_imports(packages, source):
  executors = _executors(_spec(packages[source]))
  for task, container in executors.items():
    executor_class = import_utils.import_class_by_path(
        _flag_value(container.args, '--executor_class_path'))
    assert issubclass(executor_class, base_executor.BaseExecutor), task
  example_gen_path = _flag_value(executors[EXAMPLE_GENS[source]].args,
                                 '--executor_class_path')
  folder = 'image_folder' if source == 'images' else 'dicom'
  assert example_gen_path == f'image_example_gen.{folder}.executor.Executor'


def test_user_code_is_imported_by_dotted_path_not_shipped(kfp_compile,
                                                          packages):
  pipeline = kfp_compile.pipeline
  spec = _spec(packages['images'])
  for task, name, expected in (
      ('Transform', 'preprocessing_fn', pipeline.PREPROCESSING_FN),
      ('Trainer', 'run_fn', pipeline.RUN_FN)):
    dotted = _parameter(spec, task, name)
    assert dotted == expected
    module, function = dotted.rsplit('.', 1)
    assert callable(getattr(importlib.import_module(module), function))
  for source in EXAMPLE_GENS:
    text = _text(packages[source])
    for marker in ('module_file', 'module_path', '.whl', 'tfx_ephemeral',
                   'extra_package', 'setup_file', 'requirements_file'):
      assert marker not in text, (source, marker)


@pytest.mark.parametrize('source', list(EXAMPLE_GENS) + ['vertex'])
def test_no_path_of_the_compiling_machine(kfp_compile, packages, source):
  text = _text(packages[source])
  for local in (str(REPO_ROOT), os.getcwd(), str(packages[source].parent),
                os.path.expanduser('~')):
    assert local not in text
  image_dir = kfp_compile.IMAGE_SCHEMA_DIR + '/'
  paths = set(_ABSOLUTE_PATH.findall(text))
  assert paths and all(p.startswith(image_dir) for p in paths), paths
  assert set(_URI.findall(text)) == {'gs'}


@pytest.mark.parametrize('source,folder',
                         [('images', 'image_folder'), ('dicom', 'dicom')])
def test_schema_is_read_from_the_image(kfp_compile, replay_lib, packages,
                                       source, folder):
  schema_file = _parameter(_spec(packages[source]), 'ImportSchemaGen',
                           'schema_file')
  assert schema_file == f'{kfp_compile.IMAGE_SCHEMA_DIR}/{folder}/schema.pbtxt'
  instructions = replay_lib.dockerfile_instructions(str(DOCKERFILE))
  workdir = [rest for keyword, rest in instructions if keyword == 'WORKDIR']
  assert ['schemas/ schemas/'] == [
      rest for keyword, rest in instructions
      if keyword == 'COPY' and rest.startswith('schemas')]
  in_image = pathlib.PurePosixPath(workdir[-1]) / 'schemas'
  relative = pathlib.PurePosixPath(schema_file).relative_to(in_image)
  assert (REPO_ROOT / 'schemas' / relative).is_file()


@pytest.mark.parametrize('source', list(EXAMPLE_GENS))
def test_salt_secret_is_mounted_into_the_example_gen_only(packages, source):
  platform = _documents(packages[source])[1]
  executors = platform['platforms']['kubernetes']['deploymentSpec'][
      'executors']
  assert executors == {f'{EXAMPLE_GENS[source]}_executor': {'secretAsEnv': [{
      'secretName': SALT_SECRET,
      'keyToEnv': [{'secretKey': 'salt',
                    'envVar': 'IMAGE_EXAMPLE_GEN_SALT'}]}]}}


@pytest.mark.parametrize('source', list(EXAMPLE_GENS))
def test_example_gen_is_not_cached(packages, source):
  tasks = _spec(packages[source]).root.dag.tasks
  for name, task in tasks.items():
    assert task.caching_options.enable_cache == (name != EXAMPLE_GENS[source])


@pytest.mark.parametrize('args,expected', [
    ('--runner=DataflowRunner', [f'--sdk_container_image={IMAGE}',
                                 '--sdk_location=container',
                                 '--runner=DataflowRunner']),
    ('--sdk_container_image=other:1', ['--sdk_container_image=other:1']),
    ('--setup_file ./setup.py', ['--setup_file', './setup.py']),
])
def test_beam_workers_run_the_image_by_default(kfp_compile, args, expected):
  assert kfp_compile.beam_pipeline_args(IMAGE, args) == expected


def test_infer_schema_compiles_schema_gen(kfp_compile, tmp_path):
  package = pathlib.Path(kfp_compile.main(
      _bucket_args('images', tmp_path / 'p.yaml') + ['--infer-schema']))
  tasks = set(_spec(package).root.dag.tasks)
  assert tasks == {'ImageFolderExampleGen', 'SchemaGen'} | TRAINING_TASKS - {
      'ImportSchemaGen'}
  assert kfp_compile.IMAGE_SCHEMA_DIR not in _text(package)


def test_vertex_json_is_a_pipeline_job(packages):
  job = json_format.Parse(packages['vertex'].read_text(encoding='utf-8'),
                          pipeline_spec_pb2.PipelineJob())
  assert job.runtime_config.gcs_output_directory == f'{BUCKET}/pipeline_root'
  spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                               pipeline_spec_pb2.PipelineSpec())
  assert set(spec.root.dag.tasks) == {'ImageFolderExampleGen'} | TRAINING_TASKS
  assert {c.image for c in _executors(spec).values()} == {IMAGE}
  assert 'secret' not in _text(packages['vertex']).lower()


@pytest.mark.parametrize('change,message', [
    ({'--input-base': '/data/images'}, '--allow-local-paths'),
    ({'--pipeline-root': 's3://bucket/root'}, 'cannot read s3://'),
    ({'--pipeline-root': 'minio://mlpipeline/v2'}, 'cannot read minio://'),
    ({'--metadata-file': '/data/labels.csv'}, '--allow-local-paths'),
])
def test_compile_refuses_what_pods_cannot_run(kfp_compile, tmp_path, change,
                                               message):
  args = _bucket_args('images', tmp_path / 'p.yaml')
  for flag, value in change.items():
    args += [flag, value]
  with pytest.raises(ValueError, match=re.escape(message)):
    kfp_compile.main(args)
  assert not (tmp_path / 'p.yaml').exists()


def test_compile_refuses_a_kubernetes_secret_for_vertex(kfp_compile, tmp_path):
  with pytest.raises(ValueError, match='Vertex'):
    kfp_compile.main(_bucket_args('images', tmp_path / 'p.json') +
                     ['--salt-secret', SALT_SECRET])


def test_flags_default_to_environment(kfp_compile, monkeypatch):
  env = {'PIPELINE_SOURCE': 'dicom', 'PIPELINE_IMAGE': IMAGE,
         'PIPELINE_ROOT': f'{BUCKET}/root', 'PIPELINE_INPUT_BASE': BUCKET,
         'PIPELINE_BEAM_ARGS': ' '.join(BEAM_ARGS),
         'PIPELINE_SALT_SECRET': SALT_SECRET, 'PIPELINE_OUTPUT': 'p.yaml'}
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  args = kfp_compile.parse_args([])
  assert (args.source, args.image, args.pipeline_root, args.input_base,
          args.salt_secret, args.output) == (
              'dicom', IMAGE, f'{BUCKET}/root', BUCKET, SALT_SECRET, 'p.yaml')
  assert kfp_compile.parse_args(['--source', 'images']).source == 'images'
  monkeypatch.delenv('PIPELINE_IMAGE')
  with pytest.raises(SystemExit):
    kfp_compile.parse_args([])


def _lock_pins():
  pins = {}
  for line in LOCK.read_text(encoding='utf-8').splitlines():
    match = re.match(r'([A-Za-z0-9_.-]+)==(\S+)', line)
    if match:
      pins[match.group(1).lower()] = match.group(2)
  return pins


def test_dockerfile_installs_the_lock_then_the_distribution(replay_lib):
  instructions = replay_lib.dockerfile_instructions(str(DOCKERFILE))
  base = re.fullmatch(r'python:(\d+)\.(\d+)-slim', instructions[0][1])
  assert instructions[0][0] == 'FROM' and base
  assert (int(base.group(1)), int(base.group(2))) == sys.version_info[:2]
  assert sys.version_info[:2] == (3, 10)
  runs = [rest for keyword, rest in instructions if keyword == 'RUN']
  copies = [rest.split() for keyword, rest in instructions
            if keyword == 'COPY' and not rest.startswith('--from')]
  lock_run = next(i for i, r in enumerate(runs)
                  if 'pip install --no-deps -r requirements.lock' in r)
  package_run = next(i for i, r in enumerate(runs)
                     if re.search(r'pip install --no-deps .*\s\.(\s|$)', r))
  assert lock_run < package_run
  assert ['requirements.lock', './'] in copies
  sources = {src.rstrip('/') for copy in copies for src in copy[:-1]}
  assert {'requirements.lock', 'setup.py', 'README.md', 'components',
          'schemas'} <= sources
  ignore = (KUBEFLOW_DIR / 'Dockerfile.dockerignore').read_text(
      encoding='utf-8').splitlines()
  for source in sources:
    assert (REPO_ROOT / source).exists()
    assert f'!{source}' in ignore or f'!{source}/' in ignore, source
  assert replay_lib.image_env(str(DOCKERFILE))['TF_USE_LEGACY_KERAS'] == '1'


def test_lock_pins_what_the_image_and_this_environment_run(replay_lib):
  pins = _lock_pins()
  assert pins['tfx'] == '1.16.0'
  for package in ('tfx', 'tensorflow', 'apache-beam', 'kfp', 'tf-keras'):
    assert importlib.metadata.version(package) == pins[package], package
  beam_images = [rest for keyword, rest in
                 replay_lib.dockerfile_instructions(str(DOCKERFILE))
                 if keyword == 'COPY' and rest.startswith('--from')]
  python = '%d.%d' % sys.version_info[:2]
  assert beam_images == [
      f'--from=apache/beam_python{python}_sdk:{pins["apache-beam"]} '
      '/opt/apache/beam /opt/apache/beam']


def test_dockerfile_has_a_compiler_for_locked_sdists(replay_lib):
  """Packages this environment built from source need one in the image too."""
  built_here = []
  for dist in importlib.metadata.distributions():
    wheel = dist.read_text('WHEEL') or ''
    tags = re.findall(r'^Tag: (\S+)$', wheel, re.M)
    if tags and all(t.endswith('-linux_x86_64') for t in tags):
      built_here.append(dist.metadata['Name'])
  lock_run = next(rest for keyword, rest in
                  replay_lib.dockerfile_instructions(str(DOCKERFILE))
                  if keyword == 'RUN' and 'requirements.lock' in rest)
  if built_here:
    install = lock_run.index('apt-get install')
    assert 'build-essential' in lock_run[install:lock_run.index(
        'requirements.lock')], built_here


def _classify(model_dir: str, examples) -> float:
  """Accuracy of a pushed model's serving signature on raw tf.Examples."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from image_example_gen.training import model  # pylint: disable=g-import-not-at-top
  serve = tf.saved_model.load(model_dir).signatures[model.SERVING_SIGNATURE]
  probabilities = serve(**{model.SERVING_INPUT: tf.constant(
      [e.SerializeToString() for e in examples])})[model.SERVING_OUTPUT]
  labels = [e.features.feature['label'].int64_list.value[0] for e in examples]
  return float(np.mean(np.argmax(probabilities.numpy(), axis=1) == labels))


@pytest.mark.e2e
def test_contract_replay_from_example_gen_to_pusher(
    kfp_compile, replay_lib, examples_reader, tmp_path):
  from image_example_gen import keys  # pylint: disable=g-import-not-at-top
  from image_example_gen import sample_data  # pylint: disable=g-import-not-at-top
  from image_example_gen.training import runs as runs_lib  # pylint: disable=g-import-not-at-top
  sample = sample_data.make_image_folder(tmp_path / 'images', n_images=100,
                                         size=32)
  serving_dir = tmp_path / 'serving'
  package = kfp_compile.main([
      '--source', 'images', '--image', IMAGE, '--allow-local-paths',
      '--pipeline-root', str(tmp_path / 'root'),
      '--input-base', str(sample.root),
      '--serving-model-dir', str(serving_dir),
      '--schema-dir', str(REPO_ROOT / 'schemas'),
      '--epochs', '2', '--accuracy-threshold', '0.05',
      '--max-reject-fraction', '0.2',
      '--salt-secret', f'{SALT_SECRET}:salt',
      '--beam-pipeline-args', ' '.join(BEAM_ARGS),
      '--output', str(tmp_path / 'pipeline.yaml')])

  runs = replay_lib.replay(package, tmp_path / 'run', str(DOCKERFILE),
                           secrets={SALT_SECRET: {'salt': SALT}})

  assert set(runs) == {'ImageFolderExampleGen'} | TRAINING_TASKS
  assert list(runs)[-1] == 'Pusher'
  example_gen_log = runs['ImageFolderExampleGen'].log_path.read_text(
      encoding='utf-8')
  assert f'$ {" ".join(DRIVER_COMMAND)}' in example_gen_log
  assert 'Calculated fingerprint' in example_gen_log
  examples = examples_reader(
      runs['ImageFolderExampleGen'].outputs['examples'][0].uri)
  # The salt came from the Secret the platform spec mounts.
  assert {e.features.feature['image/key'].bytes_list.value[0].decode()
          for split in examples.values() for e in split} == {
              keys.keyed_hash(image.rel_path, SALT, 'image')
              for image in sample.images}
  blessing = replay_lib.artifact_metadata(
      runs['Evaluator'].outputs['blessing'][0])
  pushed = replay_lib.artifact_metadata(
      runs['Pusher'].outputs['pushed_model'][0])
  assert blessing['blessed'] == 1 and pushed['pushed'] == 1
  assert pathlib.Path(pushed['pushed_destination']).parent == serving_dir
  # The pushed model classifies the eval split as the Evaluator measured,
  # and better than chance.
  accuracy = _classify(pushed['pushed_destination'], examples['eval'])
  evaluated = runs_lib.eval_accuracy(
      runs['Evaluator'].outputs['evaluation'][0].uri)
  assert accuracy == pytest.approx(evaluated, abs=1e-6)
  assert accuracy > 1 / len(sample.class_names)
