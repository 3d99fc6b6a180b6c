"""TFRecords of a folder without writing a pipeline: `convert(src, out)`.

    python -m image_example_gen convert SRC OUT [--source dicom] [options]

runs the ExampleGen alone under TFX's LocalDagRunner, with its MLMD in a
temporary SQLite file, and leaves in OUT what the Examples artifact holds:
`Split-<name>/data_tfrecord-*.gz`, `rejects/`, `skipped/`,
`ingest_summary.json` and (image folders) `label_vocabulary.txt`. When the
run fails on `max_reject_fraction`, OUT holds its `rejects/`, `skipped/` and
`ingest_summary.json` instead. Read the records back with
`image_example_gen.read_examples(OUT, 'train')`.
"""

import os
import pathlib
import shutil
import tempfile
from typing import Any, Mapping, Sequence

from tfx import v1 as tfx

from image_example_gen import DicomExampleGen
from image_example_gen import executor_base
from image_example_gen import ImageFolderExampleGen
from image_example_gen import options

# The pipeline root inside OUT while the component runs (same filesystem:
# the outputs are renamed, not copied).
_WORK_DIR = '.convert'
_COMPONENTS = {options.IMAGES: ImageFolderExampleGen,
               options.DICOM: DicomExampleGen}


def _move_contents(folder: pathlib.Path, out: pathlib.Path) -> None:
  for entry in folder.iterdir():
    shutil.move(str(entry), str(out / entry.name))


def convert(src: str, out: str, source: str = options.IMAGES,
            example_gen_args: Mapping[str, Any] = (),
            beam_pipeline_args: Sequence[str] = ()) -> pathlib.Path:
  """Converts the folder `src` into Examples in the new or empty folder `out`.

  Args:
    src: the ExampleGen's input_base.
    out: a local folder, created if missing; must be empty.
    source: `options.IMAGES` (ImageFolderExampleGen) or `options.DICOM`.
    example_gen_args: further keyword arguments of the component.
    beam_pipeline_args: Beam options, e.g.
      ['--direct_running_mode=multi_processing'].

  Returns:
    `out`.

  Raises:
    ValueError: `out` is not empty, or a parameter is wrong.
    RuntimeError: the component failed (the message says where its rejects
      are: in `out`).
  """
  out_path = pathlib.Path(out).resolve()
  if out_path.exists() and any(out_path.iterdir()):
    raise ValueError(f'{out_path} is not empty: give a new or empty folder.')
  out_path.mkdir(parents=True, exist_ok=True)
  component = _COMPONENTS[source](input_base=src, **dict(example_gen_args))
  node = component.id
  work = out_path / _WORK_DIR
  try:
    with tempfile.TemporaryDirectory() as metadata_dir:
      pipeline = tfx.dsl.Pipeline(
          pipeline_name='convert', pipeline_root=str(work),
          components=[component], enable_cache=False,
          metadata_connection_config=(
              tfx.orchestration.metadata.sqlite_metadata_connection_config(
                  os.path.join(metadata_dir, 'metadata.sqlite'))),
          beam_pipeline_args=list(beam_pipeline_args))
      try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
      except RuntimeError as e:
        kept = list((work / node / 'examples').glob(
            f'*{executor_base.FAILED_SUFFIX}'))
        if not kept:
          raise
        _move_contents(kept[0], out_path)
        raise RuntimeError(str(e).replace(str(kept[0]), str(out_path))) from e
    (examples,) = [p for p in (work / node / 'examples').iterdir()
                   if p.name.isdigit()]
    _move_contents(examples, out_path)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return out_path
