"""What both ExampleGen components share: spec parameters and defaults."""

from typing import Any, Dict, List, Optional, Sequence

from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.components.example_gen import utils
from tfx.dsl.components.base import base_component
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from image_example_gen import executor_base
from image_example_gen import limits
from image_example_gen import records
from image_example_gen import rejects
from image_example_gen import selection
from image_example_gen import table_params

DEFAULT_PATTERN = '**'
DEFAULT_MAX_REJECT_FRACTION = rejects.DEFAULT_MAX_REJECT_FRACTION
DEFAULT_MAX_PIXELS = limits.DEFAULT_MAX_PIXELS
DEFAULT_SHARD_SIZE_MB = records.DEFAULT_SHARD_SIZE_MB

SHARED_PARAMETERS = {
    **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
    executor_base.MAX_REJECT_FRACTION_KEY:
        component_spec.ExecutionParameter(type=float),
    executor_base.MAX_PIXELS_KEY: component_spec.ExecutionParameter(type=int),
    executor_base.SHARD_SIZE_MB_KEY:
        component_spec.ExecutionParameter(type=float),
    executor_base.IGNORE_PATTERNS_KEY:
        component_spec.ExecutionParameter(type=List[str], optional=True),
}

# The metadata table's parameters, named alike in both components
# (`table_params`).
TABLE_PARAMETERS = {
    table_params.METADATA_FILE_KEY:
        component_spec.ExecutionParameter(type=str, optional=True),
    table_params.KEY_COLUMN_KEY: component_spec.ExecutionParameter(type=str),
    table_params.KEY_SOURCE_KEY: component_spec.ExecutionParameter(type=str),
    table_params.LABEL_COLUMN_KEY:
        component_spec.ExecutionParameter(type=str, optional=True),
    table_params.GROUP_COLUMN_KEY:
        component_spec.ExecutionParameter(type=str, optional=True),
    table_params.EXTRA_COLUMNS_KEY:
        component_spec.ExecutionParameter(type=List[str], optional=True),
    table_params.COLUMN_TYPES_KEY:
        component_spec.ExecutionParameter(type=Dict[str, str], optional=True),
}


def hash_split_output_config(
    partition_feature_name: str) -> example_gen_pb2.Output:
  """train:eval = 2:1 hash buckets on a feature (TFX's default ratio)."""
  return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
      splits=[example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=2),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)],
      partition_feature_name=partition_feature_name))


def single_split_input_config(
    pattern: str = DEFAULT_PATTERN) -> example_gen_pb2.Input:
  return example_gen_pb2.Input(
      splits=[example_gen_pb2.Input.Split(name='single_split', pattern=pattern)])


def shared_params(max_reject_fraction: float, max_pixels: int,
                  shard_size_mb: float,
                  ignore_patterns: Sequence[str] = ()) -> Dict[str, Any]:
  """The shared parameters, checked (ValueError at construction time)."""
  selection.Selection(ignore_patterns=ignore_patterns)
  if not 0.0 <= max_reject_fraction <= 1.0:
    raise ValueError('max_reject_fraction must be in [0, 1], got '
                     f'{max_reject_fraction}.')
  limits.SizeLimits(max_pixels=max_pixels)
  if (isinstance(shard_size_mb, bool) or
      not isinstance(shard_size_mb, (int, float)) or shard_size_mb <= 0):
    raise ValueError(f'shard_size_mb must be positive, got {shard_size_mb!r}.')
  return {executor_base.MAX_REJECT_FRACTION_KEY: max_reject_fraction,
          executor_base.MAX_PIXELS_KEY: max_pixels,
          executor_base.SHARD_SIZE_MB_KEY: float(shard_size_mb),
          executor_base.IGNORE_PATTERNS_KEY: list(ignore_patterns) or None}


def init_component(
    component: example_gen_component.FileBasedExampleGen,
    input_base: str,
    input_config: example_gen_pb2.Input,
    output_config: Optional[example_gen_pb2.Output],
    range_config: Optional[range_config_pb2.RangeConfig],
    partition_feature_name: str,
    params: Dict[str, Any]) -> None:
  """Builds the component's spec and initialises it as a TFX component.

  FileBasedExampleGen's own __init__ fixes its spec class; ours extend it
  with the component's parameters, so we build the spec here.
  """
  if not input_base:
    raise ValueError('input_base is required.')
  if output_config is None:
    output_config = (
        hash_split_output_config(partition_feature_name)
        if len(input_config.splits) == 1 else
        utils.make_default_output_config(input_config))
  spec = component.SPEC_CLASS(
      input_base=input_base,
      input_config=input_config,
      output_config=output_config,
      range_config=range_config,
      output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
      output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
      examples=types.Channel(type=standard_artifacts.Examples),
      **params)
  base_component.BaseComponent.__init__(component, spec=spec)
