import re

from setuptools import find_packages, setup

with open("pyiqa/version.py") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="pyiqa-uniqa",
    version=VERSION,
    description="UniQA (unified image quality and aesthetics assessment) in a pyiqa-style framework",
    packages=find_packages(include=["pyiqa", "pyiqa.*", "train_clip", "train_clip.*"]),
    package_data={"pyiqa.protocols": ["*.yml"]},  # the paper's numbers, read by results_table.py
    python_requires=">=3.9",
    license="MIT",
    install_requires=[
        "torch",
        "torchvision",
        "open_clip_torch>=3.3,<4",
        "pyyaml",
        "numpy",
        "scipy",
        "pandas",
        "pillow",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "scikit-image",
        "openpyxl",      # pandas.read_excel: SPAQ, CSIQ and AGIQA annotations ship as XLSX
    ],
    extras_require={
        # generate_descriptions.py talks to OpenAI-compatible MLLM servers through the maintained client
        "data": ["openai>=1.30,<3"],
        "test": ["pytest", "openai>=1.30,<3"],
    },
    entry_points={"console_scripts": ["pyiqa=pyiqa.cli:main", "pyiqa-train=pyiqa.train:cli",
                                    "pyiqa-test=pyiqa.test:cli",
                                    "pyiqa-train-clip=train_clip.trainer:cli"]},
)
