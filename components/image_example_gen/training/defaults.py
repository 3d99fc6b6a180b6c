"""Defaults of the training code, importable without TensorFlow.

Command lines (pipeline.py) show them in `--help` before importing anything
heavy; `preprocessing` and `model` take them from here.
"""

DEFAULT_IMAGE_SIZE = 28
DEFAULT_CHANNELS = 1
DEFAULT_EPOCHS = 12
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 2e-3
# The model's image branch: the small CNN, or a Keras application.
CNN = 'cnn'
BACKBONE_NAMES = tuple(f'efficientnet_b{i}' for i in range(8))
