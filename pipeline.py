"""The TFX pipeline: DICOM or image folder to a pushed Keras image classifier.

    ExampleGen (DicomExampleGen | ImageFolderExampleGen)
      -> StatisticsGen (image-aware) -> ImportSchemaGen | SchemaGen
      -> ExampleValidator
      -> Transform (decode, resize, scale; words to ids; not materialized)
      -> Trainer (Keras CNN or EfficientNet) -> Evaluator (accuracy threshold)
      -> Pusher

Sources: `dicom` (DicomExampleGen), `images` (ImageFolderExampleGen on class
folders or a table), `captioned` (ImageFolderExampleGen on a folder with a
Hugging Face metadata.jsonl whose text column the model reads too), `ct`
(DicomExampleGen with `unit='series'`: a volume per CT series, a 3-D CNN).

`create_pipeline` builds it for any runner: `LocalDagRunner` with SQLite
MLMD here, `KubeflowV2DagRunner` in kubeflow/. Transform and Trainer code is
referenced by dotted path into the installed package, so no module file has
to travel with the pipeline. The model's number of classes comes from the
data (the Examples' label vocabulary or summary), never from the schema.

Command line (TF_USE_LEGACY_KERAS=1 is set here when unset; see
image_example_gen/training/model.py for the Keras decision; `--help` lists
every flag with its default):

    python pipeline.py demo [--output-dir ./demo_output]
    python pipeline.py run --source {dicom,images,captioned,ct} --input-base DIR
        [--metadata-file TABLE --key-column C --label-column C ...]
        [--max-reject-fraction 0.1] [--epochs 12 --image-size 28 ...]

`demo` writes the sample data of the four kinds, runs the pipeline on each;
both commands print what each ExampleGen converted, where the model,
statistics, schema, rejects and evaluation are, the number of validation
anomalies, the eval accuracy and each component's wall time.
"""

import argparse
import contextlib
import os
import pathlib
import shlex
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# pylint: disable=g-import-not-at-top,wrong-import-position
from image_example_gen import console
from image_example_gen import options
from image_example_gen.training import defaults
# pylint: enable=g-import-not-at-top,wrong-import-position

DICOM = 'dicom'
IMAGES = 'images'
CAPTIONED = 'captioned'
CT = 'ct'
SOURCES = (DICOM, IMAGES, CAPTIONED, CT)
# The component of each source, as `options` names it.
_COMPONENTS = {DICOM: options.DICOM, IMAGES: options.IMAGES,
               CAPTIONED: options.IMAGES, CT: options.DICOM}
# The metadata.jsonl column of free text the captioned model reads.
CAPTION_FEATURE = 'description'
# The eval accuracy at or above which the Evaluator blesses, by source. The
# captioned sample's images are noisy on purpose and its descriptions name
# some digits only (image_example_gen/sample_data/captioned.py): the demo's
# model scores 0.976 with both, 0.764 on images alone, 0.770 on text alone.
DEFAULT_ACCURACY_THRESHOLDS = {DICOM: 0.9, IMAGES: 0.9, CAPTIONED: 0.9,
                               CT: 0.95}
# Slices of the volumes the model sees (source `ct`).
DEFAULT_VOLUME_DEPTH = 16
DEMO_IMAGES_PER_SOURCE = 1500
DEMO_SAMPLE_SIZE = 32


def _parser() -> argparse.ArgumentParser:
  """The command line; needs no TFX or TensorFlow (fast `--help`)."""
  formatter = options.HelpFormatter
  parser = argparse.ArgumentParser(
      description='Image / DICOM classification pipeline (TFX, local run).',
      formatter_class=formatter)
  commands = parser.add_subparsers(dest='command', required=True)
  demo = commands.add_parser(
      'demo', help='sample data of four kinds, then the pipeline on each',
      formatter_class=formatter)
  demo.add_argument('--output-dir', default='demo_output',
                    help='sample data, pipeline roots, MLMD, models, reports')
  demo.add_argument('--n-images', type=int, default=DEMO_IMAGES_PER_SOURCE,
                    help='images per source')
  run = commands.add_parser('run', help='the pipeline on your data',
                            formatter_class=formatter)
  run.add_argument('--source', choices=SOURCES, required=True,
                   help='dicom: DicomExampleGen; images: ImageFolderExampleGen '
                        '(class folders or a table); captioned: images with '
                        'a text column the model reads too; ct: DicomExampleGen '
                        "with unit='series' (a volume per series) and a 3-D "
                        'model')
  run.add_argument('--input-base', required=True,
                   help='DICOM tree, folder of class folders, or folder with '
                        'a metadata table')
  run.add_argument('--volume-depth', type=int, default=DEFAULT_VOLUME_DEPTH,
                   help='ct: the slices each volume is resampled to')
  run.add_argument('--text-column', default=CAPTION_FEATURE,
                   help='captioned: the table column of free text')
  options.add_example_gen_flags(run)
  run.add_argument('--output-dir', default='pipeline_output',
                   help='pipeline root, MLMD, model, report')
  run.add_argument('--pipeline-name',
                   help='default: image-example-gen-<source>')
  schema = run.add_mutually_exclusive_group()
  schema.add_argument('--schema', default='',
                      help='curated schema; default: schemas/<source>/')
  schema.add_argument('--infer-schema', action='store_true',
                      help='infer the schema with SchemaGen instead')
  run.add_argument('--num-classes', type=int,
                   help='default: from the data (the label vocabulary, or '
                        '1 + the largest label)')
  for command in (demo, run):
    command.add_argument('--image-size', type=int,
                         default=defaults.DEFAULT_IMAGE_SIZE,
                         help='side of the square images the model sees')
    command.add_argument('--channels', type=int, choices=(1, 3),
                         default=defaults.DEFAULT_CHANNELS,
                         help='the model\'s input channels')
    command.add_argument('--epochs', type=int,
                         default=defaults.DEFAULT_EPOCHS,
                         help='training passes over the train split')
    command.add_argument('--batch-size', type=int,
                         default=defaults.DEFAULT_BATCH_SIZE,
                         help='training batch size')
    command.add_argument('--backbone', default=defaults.CNN,
                         choices=(defaults.CNN,) + defaults.BACKBONE_NAMES,
                         help='the image branch of the model')
    command.add_argument('--backbone-weights',
                         help='the backbone\'s Keras .h5 weights file '
                              '(local or gs://); default: random init')
    command.add_argument('--accuracy-threshold', type=float,
                         help='default, by source: '
                              f'{DEFAULT_ACCURACY_THRESHOLDS}')
    command.add_argument(
        '--beam-pipeline-args', default='',
        help="Beam options as one string, e.g. --beam-pipeline-args="
             "'--direct_running_mode=multi_processing --direct_num_workers=2'")
  return parser


if __name__ == '__main__':
  # Answer --help and wrong flags before the imports below (seconds), and
  # keep the known library noise off the console from here on.
  _ARGS = _parser().parse_args()
  console.quiet_entry_point()
  _QUIET = contextlib.ExitStack()
  _QUIET.enter_context(console.filtered_stderr())

# pylint: disable=g-import-not-at-top,wrong-import-position
from ml_metadata.proto import metadata_store_pb2
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import base_node

from image_example_gen.training import model
from image_example_gen.training import preprocessing
from image_example_gen import report
from image_example_gen.report import mlmd
from image_example_gen.training import runs
# pylint: enable=g-import-not-at-top,wrong-import-position

_REPO_ROOT = pathlib.Path(__file__).resolve().parent
# Curated schemas, by source (schemas/<folder>/schema.pbtxt).
SCHEMA_PATHS = {
    DICOM: str(_REPO_ROOT / 'schemas' / 'dicom' / 'schema.pbtxt'),
    IMAGES: str(_REPO_ROOT / 'schemas' / 'image_folder' / 'schema.pbtxt'),
    CAPTIONED: str(_REPO_ROOT / 'schemas' / 'captioned' / 'schema.pbtxt'),
    CT: str(_REPO_ROOT / 'schemas' / 'ct' / 'schema.pbtxt'),
}
PREPROCESSING_FN = 'image_example_gen.training.preprocessing.preprocessing_fn'
RUN_FN = 'image_example_gen.training.model.run_fn'
ACCURACY_METRIC = 'SparseCategoricalAccuracy'


def _example_gen(source: str, input_base: str,
                 example_gen_args: Mapping[str, Any], text_feature: str):
  """The ExampleGen component of `source`."""
  # Imported here: the components are heavy and only one is needed.
  from image_example_gen import DicomExampleGen  # pylint: disable=g-import-not-at-top
  from image_example_gen import ImageFolderExampleGen  # pylint: disable=g-import-not-at-top
  component = (DicomExampleGen if _COMPONENTS[source] == options.DICOM else
               ImageFolderExampleGen)
  # `ct` expects a study-level table keyed by StudyInstanceUID (RSNA 2022's).
  defaults_of_source = {
      CAPTIONED: {'extra_columns': [text_feature]},
      CT: {'unit': 'series', 'key_column': 'StudyInstanceUID',
           'key_source': 'StudyInstanceUID'},
  }.get(source, {})
  return component(input_base=input_base,
                   **{**defaults_of_source, **example_gen_args})


def _eval_config(accuracy_threshold: float) -> tfma.EvalConfig:
  """TFMA: accuracy of the serving signature on raw eval Examples."""
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=model.SERVING_SIGNATURE,
                                  label_key=preprocessing.RAW_LABEL)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(
              class_name=ACCURACY_METRIC,
              threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(
                      lower_bound={'value': accuracy_threshold}))),
      ])])


def training_components(
    examples: tfx.dsl.Channel,
    schema_path: Optional[str],
    serving_model_dir: str,
    training_config: Mapping[str, Any],
    accuracy_threshold: float,
    stats_sample_rate: Optional[float],
) -> List[base_node.BaseNode]:
  """The components after ExampleGen, reading its `examples` channel.

  Args are those of `create_pipeline`; `training_config` is the
  custom_config of Transform and Trainer.
  """
  if schema_path:
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    statistics_gen = tfx.components.StatisticsGen(
        examples=examples, schema=schema_gen.outputs['schema'],
        stats_options=_stats_options(stats_sample_rate))
  else:
    statistics_gen = tfx.components.StatisticsGen(
        examples=examples, stats_options=_stats_options(stats_sample_rate))
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  transform = tfx.components.Transform(
      examples=examples,
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=PREPROCESSING_FN,
      custom_config=dict(training_config),
      materialize=False,
      disable_statistics=True)
  trainer = tfx.components.Trainer(
      run_fn=RUN_FN,
      examples=examples,
      transform_graph=transform.outputs['transform_graph'],
      custom_config=dict(training_config))
  evaluator = tfx.components.Evaluator(
      examples=examples,
      model=trainer.outputs['model'],
      eval_config=_eval_config(accuracy_threshold))
  pusher = tfx.components.Pusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=serving_model_dir)))
  return [schema_gen, statistics_gen, example_validator, transform, trainer,
          evaluator, pusher]


def _stats_options(sample_rate: Optional[float]) -> tfdv.StatsOptions:
  """TFDV options: image stats (format, size) on bytes with image content."""
  return tfdv.StatsOptions(enable_semantic_domain_stats=True,
                           semantic_domain_stats_sample_rate=sample_rate)


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    source: str,
    input_base: str,
    serving_model_dir: str,
    example_gen_args: Optional[Mapping[str, Any]] = None,
    schema_path: Optional[str] = '',
    text_feature: str = CAPTION_FEATURE,
    image_size: int = preprocessing.DEFAULT_IMAGE_SIZE,
    channels: int = preprocessing.DEFAULT_CHANNELS,
    stretch_contrast: bool = True,
    epochs: int = model.DEFAULT_EPOCHS,
    batch_size: int = model.DEFAULT_BATCH_SIZE,
    num_classes: Optional[int] = None,
    volume_depth: int = DEFAULT_VOLUME_DEPTH,
    backbone: str = model.CNN,
    backbone_weights: Optional[str] = None,
    accuracy_threshold: Optional[float] = None,
    stats_sample_rate: Optional[float] = None,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[Sequence[str]] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
  """The image classification pipeline of docs/design.md §1, for any runner.

  Args:
    pipeline_name: the pipeline's name in MLMD and on the orchestrator.
    pipeline_root: where artifacts are written (a local path or a GCS/S3 URI
      the runner can reach).
    source: `dicom` (DicomExampleGen), `images` (ImageFolderExampleGen),
      `captioned` (ImageFolderExampleGen with the metadata.jsonl column
      `description`, which Transform and the model read as text) or `ct`
      (DicomExampleGen with `unit='series'`; Transform stacks each volume to
      `volume_depth` slices and the model is a 3-D CNN).
    input_base: the ExampleGen's input folder.
    serving_model_dir: where Pusher copies a blessed model (a new numbered
      version folder per push), e.g. a TF Serving model base path.
    example_gen_args: further keyword arguments of the ExampleGen, e.g.
      {'metadata_file': ..., 'group_column': 'patient_id'} for DICOM, or
      `output_config` for other splits. Default: none (for `captioned`,
      `extra_columns=[text_feature]`, an `extra_columns` given here must
      list it too; for `ct`, `unit='series'` and a table keyed by
      StudyInstanceUID).
    text_feature: `captioned`: the table's text column that Transform and
      the model read. The curated schema names 'description'; for another
      column pass schema_path=None.
    schema_path: the curated schema, imported with ImportSchemaGen; '' (the
      default) is this repository's `schemas/<source>/schema.pbtxt`, None
      infers one with SchemaGen instead (then pass `num_classes` unless the
      inferred `label` has an int_domain). The path must be readable where
      the component runs (on Kubeflow: in the container image or a bucket).
    image_size: side in px of the square images the model sees.
    channels: 1 (grayscale) or 3 (RGB) input channels of the model.
    stretch_contrast: rescale each image to span [0, 1] before the model
      (see image_example_gen/training/preprocessing.py).
    epochs: training passes over the train split.
    batch_size: training batch size.
    num_classes: the model's number of classes; None takes it from the
      Examples (their label vocabulary, else 1 + their largest label).
    volume_depth: source `ct`: the slices each volume is resampled to.
    backbone: the model's image branch: 'cnn' or a Keras application such
      as 'efficientnet_b0' (then image_size >= 32; see
      image_example_gen/training/model.py).
    backbone_weights: the backbone's weights file (local or gs://), e.g.
      Keras' `efficientnetb0_notop.h5`; None initialises it randomly.
    accuracy_threshold: the eval-split accuracy at or above which the
      Evaluator blesses the model (and Pusher pushes it); None is the
      source's `DEFAULT_ACCURACY_THRESHOLDS`.
    stats_sample_rate: fraction of Examples whose images StatisticsGen
      decodes for image statistics (format, size); None decodes all.
    metadata_connection_config: MLMD connection; None lets the runner choose
      (Kubeflow's own store), pass a SQLite config for LocalDagRunner.
    beam_pipeline_args: Beam options of every Beam-based component, e.g.
      ['--direct_running_mode=multi_processing', '--direct_num_workers=0']
      or Dataflow's; None runs Beam's DirectRunner in process.
    enable_cache: reuse the outputs of a component whose inputs and
      configuration are unchanged (MLMD cache).

  Returns:
    The pipeline, to hand to a runner.
  """
  if source not in SOURCES:
    raise ValueError(f'source must be one of {SOURCES}, got {source!r}.')
  if accuracy_threshold is None:
    accuracy_threshold = DEFAULT_ACCURACY_THRESHOLDS[source]
  if not 0 < accuracy_threshold <= 1:
    raise ValueError(
        f'accuracy_threshold must be in (0, 1], got {accuracy_threshold}.')
  training_config = {
      preprocessing.IMAGE_SIZE_KEY: image_size,
      preprocessing.CHANNELS_KEY: channels,
      preprocessing.STRETCH_CONTRAST_KEY: stretch_contrast,
      model.EPOCHS_KEY: epochs,
      model.BATCH_SIZE_KEY: batch_size,
  }
  if num_classes is not None:
    training_config[model.NUM_CLASSES_KEY] = num_classes
  if backbone != model.CNN:
    training_config[model.BACKBONE_KEY] = backbone
  if backbone_weights:
    training_config[model.BACKBONE_WEIGHTS_KEY] = backbone_weights
  if source == CAPTIONED:
    if schema_path == '' and text_feature != CAPTION_FEATURE:
      raise ValueError(
          f'The curated captioned schema has the text column '
          f'{CAPTION_FEATURE!r}, not {text_feature!r}: pass schema_path=None '
          '(pipeline.py --infer-schema) to infer one.')
    training_config[preprocessing.TEXT_FEATURE_KEY] = text_feature
  if source == CT:
    training_config[preprocessing.VOLUME_DEPTH_KEY] = volume_depth
  preprocessing.ImageConfig.from_custom_config(training_config)  # Checks.
  model.Backbone.from_custom_config(training_config)
  example_gen = _example_gen(source, input_base, example_gen_args or {},
                             text_feature)
  components = [example_gen] + training_components(
      examples=example_gen.outputs['examples'],
      schema_path=SCHEMA_PATHS[source] if schema_path == '' else schema_path,
      serving_model_dir=serving_model_dir,
      training_config=training_config,
      accuracy_threshold=accuracy_threshold,
      stats_sample_rate=stats_sample_rate)
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args or []))


# ---------------------------------------------------------------------------
# Local runs and the command line.

# The RSNA-like sample's CSV, as DicomExampleGen reads it.
DEMO_DICOM_ARGS = {'group_column': 'patient_id',
                   'extra_columns': ('laterality', 'view', 'age')}
# The CT sample: studies, and slices of their thin series.
DEMO_CT_STUDIES = 150
DEMO_CT_SLICES = 12
DEMO_CT_ARGS = {'group_column': 'patient_id'}


def run_local(pipeline: tfx.dsl.Pipeline) -> None:
  """Runs `pipeline` with LocalDagRunner (components in this process)."""
  tfx.orchestration.LocalDagRunner().run(pipeline)


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
  """MLMD in a SQLite file, created if missing."""
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(path)


def _run_and_report(pipeline: tfx.dsl.Pipeline, metadata_path: str,
                    report_dir: pathlib.Path) -> None:
  """Runs the pipeline locally, prints its summary, writes the data report."""
  run_local(pipeline)
  name = pipeline.pipeline_info.pipeline_name
  print(f'\nPipeline {name}:')
  print('\n'.join(runs.summary_lines(runs.latest_run(
      mlmd.open_store(metadata_path), name))))
  examples_uri = report.latest_examples_uri(metadata_path, name)
  paths = report.write_report(
      examples_uri, str(report_dir / name),
      report.latest_statistics_uri(metadata_path, name, examples_uri))
  print(f'  data report:    {paths.html}\n  contact sheet:  {paths.contact_sheet}')


def _local_pipeline(output_dir: pathlib.Path, name: str, source: str,
                    input_base: str, **kwargs) -> tfx.dsl.Pipeline:
  """create_pipeline with everything under `output_dir` and SQLite MLMD."""
  return create_pipeline(
      pipeline_name=name,
      pipeline_root=str(output_dir / 'pipelines' / name),
      source=source,
      input_base=input_base,
      serving_model_dir=str(output_dir / 'serving_model' / name),
      metadata_connection_config=sqlite_config(
          str(output_dir / 'metadata.sqlite')),
      **kwargs)


def _demo_data(data_dir: pathlib.Path,
               n_images: int) -> Dict[str, Tuple[str, Dict[str, Any]]]:
  """Writes (or reuses) the samples; (input_base, example_gen_args) each."""
  from image_example_gen import sample_data  # pylint: disable=g-import-not-at-top
  dicom_dir, images_dir = data_dir / DICOM, data_dir / IMAGES
  captioned_dir = data_dir / CAPTIONED
  ct_dir = data_dir / CT
  if not dicom_dir.exists():
    print(f'Writing {n_images} DICOM files to {dicom_dir} ...')
    sample_data.make_dicom_sample(dicom_dir, n_images, size=DEMO_SAMPLE_SIZE)
  if not images_dir.exists():
    print(f'Writing {n_images} images to {images_dir} ...')
    sample_data.make_image_folder(images_dir, n_images,
                                  size=DEMO_SAMPLE_SIZE)
  if not captioned_dir.exists():
    print(f'Writing {n_images} captioned images to {captioned_dir} ...')
    sample_data.make_captioned_images(captioned_dir, n_images,
                                      size=DEMO_SAMPLE_SIZE)
  if not ct_dir.exists():
    print(f'Writing {DEMO_CT_STUDIES} CT studies to {ct_dir} ...')
    sample_data.make_ct_sample(ct_dir, DEMO_CT_STUDIES, size=DEMO_SAMPLE_SIZE,
                               slices=DEMO_CT_SLICES)
  return {
      DICOM: (str(dicom_dir / 'train_images'),
              dict(DEMO_DICOM_ARGS,
                   metadata_file=str(dicom_dir / 'train.csv'))),
      IMAGES: (str(images_dir), {}),
      CAPTIONED: (str(captioned_dir), {}),
      CT: (str(ct_dir / 'train_images'),
           dict(DEMO_CT_ARGS, metadata_file=str(ct_dir / 'train.csv'))),
  }


def _training_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
  return {
      'image_size': args.image_size,
      'channels': args.channels,
      'epochs': args.epochs,
      'batch_size': args.batch_size,
      'backbone': args.backbone,
      'backbone_weights': args.backbone_weights,
      'accuracy_threshold': args.accuracy_threshold,
      'beam_pipeline_args': shlex.split(args.beam_pipeline_args),
  }


def _demo(args: argparse.Namespace) -> None:
  start = time.monotonic()
  output_dir = pathlib.Path(args.output_dir).resolve()
  inputs = _demo_data(output_dir / 'data', args.n_images)
  for source in SOURCES:
    input_base, example_gen_args = inputs[source]
    pipeline = _local_pipeline(
        output_dir, f'image-example-gen-{source}', source, input_base,
        example_gen_args=example_gen_args, **_training_kwargs(args))
    _run_and_report(pipeline, str(output_dir / 'metadata.sqlite'),
                    output_dir / 'report')
  print(f'\nDemo done in {time.monotonic() - start:.0f} s; everything is '
        f'under {output_dir}.')


def _run(args: argparse.Namespace) -> None:
  output_dir = pathlib.Path(args.output_dir).resolve()
  example_gen_args = options.example_gen_args(args, _COMPONENTS[args.source])
  if args.source == CAPTIONED and 'extra_columns' in example_gen_args:
    example_gen_args['extra_columns'] = sorted(
        set(example_gen_args['extra_columns']) | {args.text_column})
  pipeline = _local_pipeline(
      output_dir, args.pipeline_name or f'image-example-gen-{args.source}',
      args.source, args.input_base, example_gen_args=example_gen_args,
      schema_path=None if args.infer_schema else args.schema,
      text_feature=args.text_column, num_classes=args.num_classes,
      volume_depth=args.volume_depth, **_training_kwargs(args))
  _run_and_report(pipeline, str(output_dir / 'metadata.sqlite'),
                  output_dir / 'report')


def main(argv: Optional[Sequence[str]] = None,
         args: Optional[argparse.Namespace] = None) -> int:
  """Runs `demo` or `run`; returns the exit status."""
  args = args or _parser().parse_args(argv)
  try:
    if args.command == 'demo':
      _demo(args)
    else:
      _run(args)
  except (RuntimeError, ValueError) as e:
    # The components' errors say what to do; their tracebacks are noise here.
    console.logger().error('\nFailed: %s', e)
    return 1
  return 0


if __name__ == '__main__':
  with _QUIET:
    sys.exit(main(args=_ARGS))
