"""Transform's output without a pipeline, for tests, benchmarks and notebooks.

`write_transform_graph` runs `preprocessing_fn` through tf.Transform's Beam
API and writes what the Transform component writes (the transform graph and
the raw metadata), so that `tft.TFTransformOutput` and the Trainer's input
pipeline can be used on Examples outside TFX.
"""

import functools
import os
from typing import Any, Mapping, Optional

import apache_beam as beam
from tensorflow_data_validation.utils import schema_util
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tfx_bsl.public import tfxio

from image_example_gen.training import preprocessing


def write_transform_graph(file_pattern: str, schema_path: str,
                          output_dir: str, temp_dir: str,
                          custom_config: Optional[Mapping[str, Any]] = None
                         ) -> tft.TFTransformOutput:
  """Writes Transform's output for gzip TFRecords of Examples; returns it.

  Args:
    file_pattern: the Examples (e.g. `<examples uri>/Split-train/*`).
    schema_path: their schema, a text proto (e.g. schemas/*/schema.pbtxt).
    output_dir: where to write (as the Transform component's
      `transform_graph`).
    temp_dir: scratch space for tf.Transform.
    custom_config: the preprocessing_fn's custom_config.
  """
  schema = schema_util.load_schema_text(schema_path)
  source = tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema)
  preprocessing_fn = functools.partial(preprocessing.preprocessing_fn,
                                       custom_config=dict(custom_config or {}))
  with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=temp_dir):
    transform_fn = ((pipeline | source.BeamSource(),
                     source.TensorAdapterConfig())
                    | tft_beam.AnalyzeDataset(preprocessing_fn))
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  metadata_io.write_metadata(
      dataset_metadata.DatasetMetadata(schema),
      os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(output_dir)
