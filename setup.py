"""image-example-gen: TFX ExampleGens for DICOM files and image folders.

Installs the package `image_example_gen` from `components/`. Requirements are
ranges, for users who add it to their own TFX 1.16 project; `requirements.lock`
pins the exact set this repository is tested with.
"""

import setuptools

setuptools.setup(
    name='image-example-gen',
    version='0.1.0',
    description='TFX ExampleGen components for DICOM files and image folders.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9,<3.11',
    package_dir={'': 'components'},
    packages=setuptools.find_packages('components'),
    install_requires=[
        'tfx>=1.16,<1.17',
        'tensorflow>=2.16,<2.17',
        'tf-keras>=2.16,<2.17',
        'tensorflow-data-validation>=1.16,<1.17',
        'apache-beam>=2.59,<3',
        'numpy>=1.22,<2',
        'dill>=0.3.1',
        'pillow>=10',
        # libjpeg-turbo for validating JPEGs (DCT-scaled decode).
        'simplejpeg>=1.7,<2',
        # CRC32C of the TFRecord framing, so workers need no TensorFlow.
        'google-crc32c>=1.5,<2',
        'matplotlib>=3.7',
        'pydicom>=3.0,<4',
        # Non-GPL pixel-data plugins for pydicom's `pixels` API.
        'pylibjpeg>=2.0,<3',
        'pylibjpeg-openjpeg>=2.3,<2.5',
        'pylibjpeg-rle>=2.0,<3',
        'python-gdcm>=3.0.24,<4',
        'pyjpegls>=1.4,<1.5',
        # JPEG Lossless, 3.5x faster than GDCM (MIT; IJG and OpenJPEG inside).
        'dicomsdl>=0.109,<0.110',
    ],
    extras_require={
        'kfp': ['tfx[kfp]>=1.16,<1.17'],
        'samples': ['scikit-learn>=1.3'],
    },
    entry_points={
        'console_scripts': [
            'image-example-gen=image_example_gen.__main__:main',
            'image-example-gen-samples=image_example_gen.sample_data:main',
            'image-example-gen-report=image_example_gen.report.__main__:main',
        ],
    },
)
